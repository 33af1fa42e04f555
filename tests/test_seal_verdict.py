"""The QR and the page (issue 7, build item 2): for a real issued letter of every type, every
forged or re-encoded seal is refused by `suratdesa verify-qr` and shown on /v/ as its own verdict
(SEGEL TIDAK SAH, never under the ASLI banner); a genuine seal stays ASLI; the page and the seal
show each letter type's own public facts."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from engine.config import PROJECT_ROOT
from engine.requests.workflows import WorkflowError, load_workflow
from engine.storage.db import transaction
from engine.storage.models import Letter, Resident
from engine.trust import pki
from engine.trust.seal import (
    P256_ORDER,
    PROTECTED_ES256,
    SealFields,
    key_id,
    make_seal,
    qr_text,
    seal_facts,
)
from suratdesa.cli import main as cli_main
from suratdesa.web import create_app
from tests.letters import GROGOL, Staff, decode_qr

TYPES = {
    "surat-keterangan-umum": lambda n: (
        {"applicant": n[0]},
        {"keperluan": "Persyaratan melamar pekerjaan"},
    ),
    "surat-keterangan-kematian": lambda n: (
        {"deceased": n[0], "reporter": n[2]},
        {"date_of_death": "2026-11-20", "place_of_death": "Rumah", "cause": "Sakit"},
    ),
    "surat-keterangan-kelahiran": lambda n: (
        {"mother": n[1], "father": n[0], "reporter": n[0]},
        {
            "child_name": "Ayu Lestari Wulandari",
            "child_sex": "Perempuan",
            "birth_date": "2026-11-25",
            "birth_place": "Puskesmas Weru",
        },
    ),
}


def issue(client: TestClient, logins, passphrase: str, workflow_id: str, first: int = 0) -> dict:
    staff = Staff(client, logins)
    niks = logins.sample_niks[GROGOL]
    subjects, data = TYPES[workflow_id](niks[first:] + niks[:first])
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {"workflow_id": workflow_id, "subjects": subjects, "data": data},
    )
    assert r.status_code == 201, r.text
    request = staff.walk_to_signing("grogol", r.json())
    signed = staff.sign("head.grogol", request, passphrase)
    assert signed.status_code == 200, signed.text
    letter = signed.json()["letter"]
    pdf = staff.get("operator.grogol", letter["pdf_url"]).content
    (letter["qr"],) = set(decode_qr(pdf))  # what a phone reads from the printed letter
    prefix, letter["code"], letter["seal"] = letter["qr"].rsplit("/", 2)
    assert prefix.endswith("/V")
    return letter


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(settings))


@pytest.fixture
def offline(client, tmp_path) -> tuple[str, str]:
    """The key list and root a phone would have saved from /pki/."""
    keys, root = tmp_path / "seal-keys.cose", tmp_path / "root-ca.pem"
    keys.write_bytes(client.get("/pki/seal-keys.cose").content)
    root.write_bytes(client.get("/pki/root-ca.pem").content)
    return str(keys), str(root)


def verify_qr(capsys, offline, text: str, base: str = "http://testserver") -> tuple[int, str]:
    keys, root = offline
    capsys.readouterr()
    rc = cli_main(["verify-qr", text, "--keys", keys, "--root", root, "--base-url", base])
    return rc, capsys.readouterr().out


# --------------------------------------------------------------------------- forgeries


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=")


def _unb32(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


def _parts(seal: str) -> list:
    return list(cbor2.loads(_unb32(seal)).value)


def _tagged(parts: list) -> str:
    return _b32(cbor2.dumps(cbor2.CBORTag(18, parts), canonical=True))


def _sign_with(key: ec.EllipticCurvePrivateKey, payload: bytes, kid: bytes) -> str:
    """A well-formed, canonical COSE_Sign1 seal over ``payload`` signed by ``key``."""
    signed = cbor2.dumps(["Signature1", PROTECTED_ES256, b"", payload])
    r, s = decode_dss_signature(key.sign(signed, ec.ECDSA(hashes.SHA256())))
    s = min(s, P256_ORDER - s)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return _tagged([PROTECTED_ES256, {4: kid}, payload, raw])


def forgeries(seal: str, keys_dir: Path) -> dict[str, str]:
    """Every way to change a genuine seal that must not verify."""
    protected, unprotected, payload, sig = _parts(seal)
    data = _unb32(seal)
    i = len(seal) // 2
    stranger = ec.generate_private_key(ec.SECP256R1())
    ours = pki.load_seal_key(keys_dir)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    high_s = r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big")
    fields = list(cbor2.loads(payload))
    changed_fact = list(fields)
    changed_fact[4] = [[label, value + "X"] for label, value in fields[4]]
    return {
        "broken": seal[:i] + ("B" if seal[i] != "B" else "C") + seal[i + 1 :],
        # valid COSE by a key we did not make: its own kid, and ours copied
        "re-signed": _sign_with(stranger, payload, key_id(stranger.public_key())),
        "re-signed under our kid": _sign_with(stranger, payload, key_id(ours.public_key())),
        "changed fact": _sign_with(stranger, cbor2.dumps(changed_fact), unprotected[4]),
        "emptied": _tagged([protected, dict(unprotected), b"", b""]),
        "empty payload": _tagged([protected, dict(unprotected), b"", bytes(sig)]),
        "lowercase": seal.lower(),
        "padded": base64.b32encode(data).decode() if len(seal) % 8 else seal + "========",
        "untagged": _b32(cbor2.dumps([protected, dict(unprotected), payload, sig])),
        "trailing bytes": _b32(data + b"\x00"),
        "high-S": _tagged([protected, dict(unprotected), payload, high_s]),
        # the same array with a non-minimal length header (0x98 0x04 instead of 0x84)
        "non-canonical CBOR": _b32(data[:1] + b"\x98\x04" + data[2:]),
        "other protected header": _tagged(
            [cbor2.dumps({1: -7, 3: 0}), dict(unprotected), payload, sig]
        ),
    }


# Why each is refused: the engine names the reason, the CLI and the page show it.
REASONS = {
    "broken": "tidak sah",
    "re-signed": "Kunci segel tidak dikenal",
    "re-signed under our kid": "Tanda tangan segel tidak sah",
    "changed fact": "Tanda tangan segel tidak sah",
    "emptied": "Tanda tangan segel rusak",
    "empty payload": "Tanda tangan segel tidak sah",
    "lowercase": "bukan base32",
    "padded": "bukan base32",
    "untagged": "tag 18",
    "trailing bytes": "kanonik",
    "high-S": "Tanda tangan segel tidak dalam bentuk",
    "non-canonical CBOR": "kanonik",
    "other protected header": "Header segel",
    "seal of letter B": "milik surat lain",
}


def assert_seal_verdict_page(client: TestClient, code: str, seal: str, what: str) -> None:
    r = client.get(f"/v/{code}/{seal}")
    assert r.status_code == 200, (what, r.status_code)
    assert "SEGEL TIDAK SAH" in r.text, what
    assert REASONS.get(what, "") in r.text, (what, r.text)
    assert "asli" not in r.text.lower(), what  # no ASLI banner, nor the word, anywhere
    assert 'class="verdict ok"' not in r.text, what
    j = client.get(f"/api/public/letters/{code}", params={"seal": seal}).json()
    assert j["status"] == "seal_invalid" and not j["seal"]["valid"], (what, j)
    assert "number" not in j, what


@pytest.mark.parametrize("workflow_id", sorted(TYPES))
def test_every_forged_seal_is_refused_by_the_cli_and_is_its_own_verdict_on_the_page(
    client, logins, passphrase, settings, offline, capsys, workflow_id
):
    a = issue(client, logins, passphrase, workflow_id)
    b = issue(client, logins, passphrase, "surat-keterangan-umum", 3)  # another real letter
    base = a["qr"][: -len(a["code"]) - len(a["seal"]) - 4]
    assert base == "HTTP://TESTSERVER"

    # The genuine seal: SEGEL SAH offline, ASLI on the page, the facts in both.
    rc, out = verify_qr(capsys, offline, a["qr"])
    assert rc == 0 and "SEGEL SAH" in out and a["number"] in out, out
    page = client.get(f"/v/{a['code']}/{a['seal']}")
    assert page.status_code == 200 and 'class="verdict ok"' in page.text
    assert "ASLI" in page.text and "cocok dengan registri" in page.text
    rc, out = verify_qr(capsys, offline, b["qr"])
    assert rc == 0, out

    cases = forgeries(a["seal"], settings.keys_dir)
    cases["seal of letter B"] = b["seal"]
    for what, seal in cases.items():
        assert seal != a["seal"], what
        rc, out = verify_qr(capsys, offline, f"{base}/V/{a['code']}/{seal}")
        assert rc == 1 and "SEGEL TIDAK SAH" in out and "SEGEL SAH" not in out, (what, out)
        assert REASONS[what] in out, (what, out)
        assert_seal_verdict_page(client, a["code"], seal, what)
    # and A's genuine seal under B's code
    rc, out = verify_qr(capsys, offline, f"{base}/V/{b['code']}/{a['seal']}")
    assert rc == 1 and "milik surat lain" in out, out
    assert_seal_verdict_page(client, b["code"], a["seal"], "A's seal under B's code")

    # The QR under another base URL, a path prefix, or changed around the code: refused
    # offline. (A phone opening a foreign URL never reaches this portal: the CLI and the
    # phone app are what must refuse it.)
    path = f"/V/{a['code']}/{a['seal']}"
    for text in (
        "HTTPS://SURAT-SUKOHARJO.EXAMPLE" + path,
        "HTTPS://TESTSERVER" + path,
        "HTTP://TESTSERVER.EVIL.EXAMPLE" + path,
        "HTTP://TESTSERVER/PALSU" + path,
        a["qr"] + "?X=1",
        a["qr"] + "/",
        f"{base}/V/{a['code'].lower()}/{a['seal']}",
    ):
        rc, out = verify_qr(capsys, offline, text)
        assert rc == 1 and "SEGEL SAH" not in out, (text, out)
    # while scheme and host are compared case-insensitively with the configured URL
    rc, out = verify_qr(capsys, offline, a["qr"], base="HTTP://TestServer/")
    assert rc == 0, out


def test_make_seal_always_emits_low_s(settings):
    key = pki.load_seal_key(settings.keys_dir)
    from datetime import date

    for n in range(40):
        fields = SealFields("470/001/X/XI/2026", date(2026, 11, 1), (("Nama", f"N{n}"),), b"d" * 16)
        fields = SealFields(**{**fields.__dict__, "code": "A" * 32})
        sig = _parts(make_seal(key, fields))[3]
        assert int.from_bytes(sig[32:], "big") <= P256_ORDER // 2


# --------------------------------------------------------------------------- facts


def test_birth_letter_page_and_seal_name_the_child_and_the_birth_date(
    client, logins, passphrase, offline, capsys, services
):
    letter = issue(client, logins, passphrase, "surat-keterangan-kelahiran")
    mother_nik = TYPES["surat-keterangan-kelahiran"](logins.sample_niks[GROGOL][:4])[0]["mother"]
    with transaction(services.factory) as session:
        mother = session.scalar(select(Resident.name).where(Resident.nik == mother_nik))
    rc, out = verify_qr(capsys, offline, letter["qr"])
    assert rc == 0, out
    assert "Nama anak" in out and "Ayu Lestari Wulandari" in out
    assert "Tanggal lahir" in out and "25 November 2026" in out
    assert mother not in out
    for url in (f"/v/{letter['code']}", f"/v/{letter['code']}/{letter['seal']}"):
        page = client.get(url).text
        assert "Nama anak" in page and "Ayu Lestari Wulandari" in page
        assert "Tanggal lahir" in page and "25 November 2026" in page
        assert mother not in page
    j = client.get(f"/api/public/letters/{letter['code']}", params={"seal": letter["seal"]}).json()
    assert (
        j["seal"]["valid"]
        and {"label": "Nama anak", "value": "Ayu Lestari Wulandari"} in j["facts"]
    )


def test_death_letter_page_shows_the_deceased_and_the_date_of_death(
    client, logins, passphrase, offline, capsys, services
):
    letter = issue(client, logins, passphrase, "surat-keterangan-kematian")
    deceased_nik = logins.sample_niks[GROGOL][0]
    with transaction(services.factory) as session:
        deceased = session.scalar(select(Resident.name).where(Resident.nik == deceased_nik))
    page = client.get(f"/v/{letter['code']}").text
    assert "Tanggal meninggal" in page and "20 November 2026" in page and deceased in page
    rc, out = verify_qr(capsys, offline, letter["qr"])
    assert rc == 0 and "20 November 2026" in out and deceased[:30] in out, out


def test_general_letter_shows_name_and_purpose(client, logins, passphrase):
    letter = issue(client, logins, passphrase, "surat-keterangan-umum")
    page = client.get(f"/v/{letter['code']}").text
    assert "Keperluan" in page and "Persyaratan melamar pekerjaan" in page


def test_a_registry_that_disagrees_with_a_genuine_seal_is_not_hidden(
    client, logins, passphrase, services
):
    letter = issue(client, logins, passphrase, "surat-keterangan-kelahiran")
    with transaction(services.factory) as session:
        session.execute(
            update(Letter)
            .where(Letter.verify_code == letter["code"])
            .values(public_facts=[{"label": "Nama anak", "value": "Nama Lain"}])
        )
    r = client.get(f"/v/{letter['code']}/{letter['seal']}")
    assert "SEGEL TIDAK SAH" in r.text and "tidak cocok" in r.text and "ASLI" not in r.text


def test_a_letter_issued_before_facts_were_stored_keeps_todays_page_and_its_v1_seal(
    client, logins, passphrase, services, settings, offline, capsys
):
    letter = issue(client, logins, passphrase, "surat-keterangan-umum")
    with transaction(services.factory) as session:
        row = session.scalar(select(Letter).where(Letter.verify_code == letter["code"]))
        row.public_facts = None
        number, name, issued = row.number, row.subject_name, row.issued_at
    page = client.get(f"/v/{letter['code']}").text
    assert "ASLI" in page and name in page and "NIK" in page and "Keperluan" in page
    # A version 1 seal (as letters carried before): the portal binds it through the registry.
    from engine.dates import WIB

    ymd = int(issued.astimezone(WIB).strftime("%Y%m%d"))
    payload = cbor2.dumps([1, number, ymd, name[:40], b"d" * 16], canonical=True)
    ours = pki.load_seal_key(settings.keys_dir)
    v1 = _sign_with(ours, payload, key_id(ours.public_key()))
    r = client.get(f"/v/{letter['code']}/{v1}")
    assert 'class="verdict ok"' in r.text and "cocok dengan registri" in r.text
    # Offline it cannot be tied to its code: refused there.
    rc, out = verify_qr(capsys, offline, f"HTTP://TESTSERVER/V/{letter['code']}/{v1}")
    assert rc == 1 and "versi lama" in out, out


def test_the_seal_stays_within_a_printable_qr_with_three_long_facts():
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    key = ec.generate_private_key(ec.SECP256R1())
    from datetime import date

    facts = [
        ("Nama lengkap anak", "Raden Mas Bagus Tri Wahyu Kusumaningrat Hadiningrat"),
        ("Tanggal lahir anak", "30 September 2026"),
        ("Tempat lahir anak", "Rumah Sakit Umum Daerah Ir. Soekarno Sukoharjo"),
    ]
    fields = SealFields(
        "474.11/1234/33.11.01.2001/XII/2026", date(2026, 9, 30), seal_facts(facts), b"d" * 16
    )
    fields = SealFields(**{**fields.__dict__, "code": "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"})
    text = qr_text(
        "https://verifikasi-surat.sukoharjokab.go.id", fields.code, make_seal(key, fields)
    )
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    assert qr.version <= 15, qr.version
    cut = seal_facts(facts)
    assert sum(len(k.encode()) + len(v.encode()) for k, v in cut) <= 110
    assert cut[1] == facts[1]  # short values are never cut
    assert all(v.endswith("…") for _, v in (cut[0], cut[2]))


# --------------------------------------------------------------------------- code box


def test_a_code_typed_from_the_paper_opens_its_page(client, logins, passphrase):
    letter = issue(client, logins, passphrase, "surat-keterangan-umum")
    code = letter["code"]
    assert 'action="/v"' in client.get("/verify").text  # the box is on the portal
    spaced = " ".join(code[i : i + 4] for i in range(0, 32, 4)).lower()
    dashed = "-".join(code[i : i + 4] for i in range(0, 32, 4))
    for typed in (code, spaced, dashed, f"  {code.lower()}  ", letter["verify_url"]):
        r = client.get("/v", params={"kode": typed}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/v/{code}", typed
    assert "ASLI" in client.get("/v", params={"kode": spaced}).text
    bad = client.get("/v", params={"kode": "BUKAN KODE"})
    assert bad.status_code == 400 and "KODE TIDAK DIKENALI" in bad.text
    assert client.get("/v").status_code == 200
    # The code is printed on the letter, in the URL under the QR.
    assert code in letter["verify_url"]


# --------------------------------------------------------------------------- workflow YAML


def _copy_workflow(tmp_path: Path, name: str) -> Path:
    shutil.copytree(PROJECT_ROOT / "workflows" / "templates", tmp_path / "templates")
    path = tmp_path / name
    shutil.copyfile(PROJECT_ROOT / "workflows" / name, path)
    return path


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("field:nama_bayi", "isian 'nama_bayi' tidak ada"),
        ("subject:bidan.name", "subjek 'bidan' tidak ada"),
        ("subject:mother.alamat", "data subjek 'alamat' tidak dikenal"),
        ("nama_anak", "'from' harus field:"),
    ],
)
def test_a_public_fact_naming_an_unknown_source_fails_with_file_and_line(tmp_path, source, reason):
    path = _copy_workflow(tmp_path, "surat-keterangan-kelahiran.yaml")
    lines = path.read_text().splitlines()
    (line,) = [i for i, text in enumerate(lines, 1) if "from: field:child_name" in text]
    lines[line - 1] = lines[line - 1].replace("field:child_name", source)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(WorkflowError) as e:
        load_workflow(path)
    assert str(e.value).startswith(f"{path}:{line}: "), str(e.value)
    assert reason in str(e.value)


def test_too_many_public_facts_fail_with_file_and_line(tmp_path):
    path = _copy_workflow(tmp_path, "surat-keterangan-umum.yaml")
    text = path.read_text()
    extra = "".join(f"  - {{label: Data {i}, from: field:keterangan}}\n" for i in range(3))
    text = text.replace("  - {label: Keperluan, from: field:keperluan}\n",
                        "  - {label: Keperluan, from: field:keperluan}\n" + extra)  # fmt: skip
    path.write_text(text)
    line = text.splitlines().index("public_facts:") + 1
    with pytest.raises(WorkflowError, match="paling banyak 3") as e:
        load_workflow(path)
    assert str(e.value).startswith(f"{path}:{line}: ")
