"""Issue 12, revocation data: certificates point at a CRL and an OCSP responder under the
deployment's public URL, the portal serves both (RFC 5280 / RFC 6960), and tools we did not
write use them: `pyhanko sign validate --force-revinfo` and `openssl ocsp` against a live
portal on 127.0.0.1. Revoking later leaves earlier letters genuine; signing after is refused.

Each test runs a fresh regency PKI whose publication URL is the live server's address (the
URL is fixed in the key folder when it is made), and re-keys head.grogol under it."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID
from sqlalchemy import func, select

from engine.bootstrap import DEMO_PASSPHRASE
from engine.config import Settings
from engine.people import signers
from engine.people.users import Actor, get_user
from engine.storage.db import session_factory, transaction
from engine.storage.models import Letter
from engine.trust import pki
from engine.trust.pki import ocsp as ocsp_responder
from tests.conftest import require_tool
from tests.test_tamper import issue_letter

ADMIN = Actor.system("cli:test")


@dataclass
class Portal:
    base: str
    settings: Settings
    keys: Path
    http: httpx.Client

    def head_cert(self) -> x509.Certificate:
        with transaction(session_factory(self.settings.database_url)) as session:
            pem = get_user(session, "head.grogol").signer_cert_pem
        return x509.load_pem_x509_certificate(pem.encode())

    def revoke_head(self, code: str) -> str:
        with transaction(session_factory(self.settings.database_url)) as session:
            user = get_user(session, "head.grogol")
            return signers.revoke_key(session, ADMIN, user, "", code=code)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def portal(settings: Settings, tmp_path: Path) -> Iterator[Portal]:
    import uvicorn

    from suratdesa.web import create_app

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    keys = tmp_path / "keys"
    pki.init_pki(keys, root_dir=tmp_path / "keys-root", public_url=base)
    live = replace(settings, keys_dir=keys, public_url=base)
    with transaction(session_factory(live.database_url)) as session:
        head = get_user(session, "head.grogol")
        signers.renew(session, live, head, DEMO_PASSPHRASE, by=ADMIN)
    ocsp_responder.clear_cache()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(live), host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "live server did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=base, timeout=60) as http:
        yield Portal(base, live, keys, http)
    server.should_exit = True
    thread.join(timeout=10)


def _request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None):
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _post(portal: Portal, der: bytes) -> httpx.Response:
    r = portal.http.post(
        pki.OCSP_PATH, content=der, headers={"Content-Type": "application/ocsp-request"}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
    return r


def _get(portal: Portal, der: bytes, **headers: str) -> httpx.Response:
    encoded = quote(base64.b64encode(der).decode(), safe="")
    return portal.http.get(f"{pki.OCSP_PATH}/{encoded}", headers=headers)


def _signed_by_ca(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
    """The response is signed by the issuing CA's own key (no delegated responder)."""
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    issuer.public_key().verify(
        response.signature,
        response.tbs_response_bytes,
        padding.PKCS1v15(),
        response.signature_hash_algorithm,
    )
    assert (
        response.responder_key_hash
        == x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
        or response.responder_name == issuer.subject
    )
    assert response.this_update_utc < response.next_update_utc


def _pointers(cert: x509.Certificate) -> tuple[list[str], list[str], list[str]]:
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    crl_urls = [name.value for point in cdp for name in point.full_name]
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return crl_urls, [], []
    ocsp_urls = [d.access_location.value for d in aia
                 if d.access_method == AuthorityInformationAccessOID.OCSP]  # fmt: skip
    issuers = [d.access_location.value for d in aia
               if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]  # fmt: skip
    return crl_urls, ocsp_urls, issuers


def test_certificates_issued_now_point_at_the_configured_url(portal: Portal):
    base = portal.base
    assert pki.publication_url(portal.keys) == base == portal.settings.public_url
    signer = portal.head_cert()
    assert _pointers(signer) == (
        [f"{base}/pki/issuing-ca.crl"],
        [f"{base}/pki/ocsp"],
        [f"{base}/pki/issuing-ca.cer"],
    )
    assert _pointers(pki.load_tsa_cert(portal.keys))[:2] == (
        [f"{base}/pki/issuing-ca.crl"],
        [f"{base}/pki/ocsp"],
    )
    # The issuing CA (signed offline by the root) points at the root's CRL; no OCSP for it.
    assert _pointers(pki.load_issuing_ca(portal.keys)) == ([f"{base}/pki/root-ca.crl"], [], [])
    r = portal.http.get("/pki/issuing-ca.cer")
    assert r.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(r.content) == pki.load_issuing_ca(portal.keys)


def test_a_folder_without_publication_url_issues_certificates_without_pointers(keys_dir):
    assert pki.publication_url(keys_dir) is None
    cert = x509.load_pem_x509_certificate(
        pki.issue_signer(
            keys_dir,
            username="u",
            full_name="Tanpa Alamat",
            title="Kepala Desa",
            village="Desa Contoh",
            passphrase="kata-sandi-panjang",
        ).cert_pem
    )
    for kind in (x509.CRLDistributionPoints, x509.AuthorityInformationAccess):
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_class(kind)


def test_ocsp_good_then_revoked_over_post_and_get(portal: Portal):
    issuer = pki.load_issuing_ca(portal.keys)
    cert = portal.head_cert()

    nonce = b"surat-desa-nonce-0123"
    good = ocsp.load_der_ocsp_response(_post(portal, _request(cert, issuer, nonce)).content)
    _signed_by_ca(good, issuer)
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert good.serial_number == cert.serial_number
    assert good.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce

    plain = _request(cert, issuer)
    r = _get(portal, plain)
    assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
    cache = r.headers["cache-control"]
    assert "public" in cache and 0 < int(cache.split("max-age=")[1].split(",")[0]) <= 300
    got = ocsp.load_der_ocsp_response(r.content)
    _signed_by_ca(got, issuer)
    assert got.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert _get(portal, plain, **{"If-None-Match": r.headers["etag"]}).status_code == 304
    # Served from the short cache: the same signed bytes.
    assert _get(portal, plain).content == r.content

    serial = portal.revoke_head("kunci-bocor")
    assert serial == format(cert.serial_number, "x")
    for answer in (_get(portal, plain).content, _post(portal, plain).content):
        revoked = ocsp.load_der_ocsp_response(answer)
        _signed_by_ca(revoked, issuer)
        assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
        assert revoked.revocation_reason == x509.ReasonFlags.key_compromise
        assert revoked.revocation_time_utc <= revoked.this_update_utc


def test_ocsp_unknown_unauthorized_and_malformed(portal: Portal, tmp_path: Path):
    issuer = pki.load_issuing_ca(portal.keys)
    template = _request(portal.head_cert(), issuer)
    request = ocsp.load_der_ocsp_request(template)
    never_issued = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, 0x5EED1234, hashes.SHA1()
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    unknown = ocsp.load_der_ocsp_response(_post(portal, never_issued).content)
    _signed_by_ca(unknown, issuer)
    assert unknown.certificate_status == ocsp.OCSPCertStatus.UNKNOWN

    other = tmp_path / "other-pki"
    pki.init_pki(other, root_dir=tmp_path / "other-root")
    foreign = pki.issue_signer(
        other, username="x", full_name="Orang Lain", title="Kepala Desa", village="Desa Lain",
        passphrase="kata-sandi-panjang",
    )  # fmt: skip
    foreign_request = _request(
        x509.load_pem_x509_certificate(foreign.cert_pem), pki.load_issuing_ca(other)
    )
    refused = ocsp.load_der_ocsp_response(_post(portal, foreign_request).content)
    assert refused.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED

    garbage = ocsp.load_der_ocsp_response(_post(portal, b"\x30\x03bad").content)
    assert garbage.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    r = portal.http.get(f"{pki.OCSP_PATH}/not!base64")
    assert ocsp.load_der_ocsp_response(r.content).response_status == (
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    assert r.headers["cache-control"] == "no-store"


def test_crl_at_the_distribution_point_lists_a_revoked_serial(portal: Portal):
    issuer = pki.load_issuing_ca(portal.keys)
    cert = portal.head_cert()
    crl_url = _pointers(cert)[0][0]
    r = portal.http.get(crl_url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-crl"
    first = x509.load_der_x509_crl(r.content)
    assert first.is_signature_valid(issuer.public_key())
    assert first.get_revoked_certificate_by_serial_number(cert.serial_number) is None
    age = int(r.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert 0 < age <= (first.next_update_utc - first.last_update_utc).total_seconds()
    assert portal.http.get(crl_url, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert portal.http.get(crl_url).content == r.content  # not re-signed while unchanged

    portal.revoke_head("berhenti-menjabat")
    after = x509.load_der_x509_crl(portal.http.get(crl_url).content)
    assert after.is_signature_valid(issuer.public_key())
    entry = after.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.cessation_of_operation
    number = after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    root_crl = portal.http.get("/pki/root-ca.crl")
    assert root_crl.headers["content-type"] == "application/pkix-crl"
    parsed = x509.load_der_x509_crl(root_crl.content)
    assert parsed.is_signature_valid(pki.load_root_ca(portal.keys).public_key())
    assert len(list(parsed)) == 0


def test_openssl_ocsp_agrees(portal: Portal, tmp_path: Path):
    openssl = require_tool("openssl")
    issuer_pem = tmp_path / "issuing.pem"
    issuer_pem.write_bytes(
        pki.load_issuing_ca(portal.keys).public_bytes(serialization.Encoding.PEM)
    )
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(pki.load_root_ca(portal.keys).public_bytes(serialization.Encoding.PEM))
    cert_pem = tmp_path / "signer.pem"
    cert_pem.write_bytes(portal.head_cert().public_bytes(serialization.Encoding.PEM))
    command = [openssl, "ocsp", "-issuer", str(issuer_pem), "-cert", str(cert_pem),
               "-url", f"{portal.base}/pki/ocsp", "-CAfile", str(root_pem)]  # fmt: skip

    def run() -> str:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "Response verify OK" in done.stderr + done.stdout, done.stderr
        return done.stdout

    assert f"{cert_pem}: good" in run()
    portal.revoke_head("kunci-bocor")
    out = run()
    assert f"{cert_pem}: revoked" in out and "Reason: keyCompromise" in out, out


def _pyhanko_validate(pdf: bytes, root: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "surat.pdf"
    path.write_bytes(pdf)
    # pyhanko-cli (the test extra) installs its command beside the Python running the tests.
    pyhanko = str(Path(sys.executable).parent / "pyhanko")
    if not Path(pyhanko).exists():
        pyhanko = require_tool("pyhanko")
    return subprocess.run(
        [pyhanko, "sign", "validate", "--force-revinfo", "--pretty-print",
         "--trust-replace", "--trust", str(root), str(path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_pyhanko_validates_a_fresh_letter_with_revocation_checking(
    portal: Portal, logins, tmp_path: Path
):
    root = tmp_path / "root.pem"
    root.write_bytes(pki.load_root_ca(portal.keys).public_bytes(serialization.Encoding.PEM))
    letter = issue_letter(portal.http, logins, DEMO_PASSPHRASE)
    done = _pyhanko_validate(letter["pdf"], root, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = done.stdout
    assert "The signer's certificate is trusted." in report, report
    assert "The TSA certificate is trusted." in report and "judged VALID" in report, report

    # Revoked afterwards: the letter signed before stays genuine on the portal, with the note.
    portal.revoke_head("berhenti-menjabat")
    verdict = portal.http.post(
        "/api/public/verify", content=letter["pdf"], headers={"content-type": "application/pdf"}
    ).json()
    assert verdict["status"] == "VALID", verdict
    note = verdict["signatures"][0]["revocation"]
    assert note.startswith("ditandatangani sebelum sertifikat dicabut pada "), note
    page = portal.http.post(
        "/verify", files={"file": ("surat.pdf", letter["pdf"], "application/pdf")}
    ).text
    assert "ASLI" in page and "ditandatangani sebelum sertifikat dicabut pada" in page
    after = _pyhanko_validate(letter["pdf"], root, tmp_path)
    # pyHanko, asked about now, fetches our revocation data again and sees the revocation:
    # the run before did consult it (and found the certificate good).
    assert after.returncode != 0 and "The signer's certificate is revoked." in after.stdout


def test_signing_after_revocation_is_refused_and_issues_nothing(portal: Portal, logins):
    from tests.letters import GROGOL, Staff

    staff = Staff(portal.http, logins)
    nik = logins.sample_niks[GROGOL][0]
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {"workflow_id": "surat-keterangan-umum", "subjects": {"applicant": nik},
         "data": {"keperluan": "Persyaratan melamar pekerjaan"}},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    request = staff.walk_to_signing("grogol", r.json())
    with transaction(session_factory(portal.settings.database_url)) as session:
        letters = session.scalar(select(func.count()).select_from(Letter))
    portal.revoke_head("kunci-bocor")
    refused = staff.sign("head.grogol", request, DEMO_PASSPHRASE)
    assert refused.status_code == 403, refused.text
    assert "sertifikat" in refused.json()["detail"].lower()
    with transaction(session_factory(portal.settings.database_url)) as session:
        assert session.scalar(select(func.count()).select_from(Letter)) == letters
        assert signers.no_key_message(session, get_user(session, "head.grogol")).startswith(
            "Sertifikat penandatangan Anda dicabut pada "
        )


def test_ocsp_is_rate_limited_like_the_qr_page(settings: Settings, one_rate_window):
    from fastapi.testclient import TestClient

    from suratdesa.web import create_app

    client = TestClient(create_app(replace(settings, rate_v_per_minute=3)))
    with transaction(session_factory(settings.database_url)) as session:
        pem = get_user(session, "head.grogol").signer_cert_pem
    der = _request(
        x509.load_pem_x509_certificate(pem.encode()), pki.load_issuing_ca(settings.keys_dir)
    )
    answers = [
        client.post(
            pki.OCSP_PATH, content=der, headers={"Content-Type": "application/ocsp-request"}
        )
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert ocsp.load_der_ocsp_response(answers[0].content).certificate_status == (
        ocsp.OCSPCertStatus.GOOD
    )
    limited = answers[-1]
    assert limited.headers["content-type"] == "application/ocsp-response"
    assert limited.headers["retry-after"] == "60"
    assert ocsp.load_der_ocsp_response(limited.content).response_status == (
        ocsp.OCSPResponseStatus.TRY_LATER
    )


def test_the_ceremony_puts_the_root_crl_in_place(tmp_path: Path, capsys):
    """docs/pki.md with a public URL: the root signs the issuing CA (pointing at the root CRL)
    and the CRL; `keys install` installs both; the yearly `keys root crl` + `keys install-crl`
    replaces it; a CRL from another root is refused."""
    from suratdesa.cli import main

    url = "https://surat.sukoharjo.example"
    usb, server, transfer = tmp_path / "usb-root", tmp_path / "server", tmp_path / "transfer"
    transfer.mkdir()
    assert main(["keys", "root", "init", "--dir", str(usb)]) == 0
    assert main(["keys", "request", "--keys-dir", str(server), "--public-url", url]) == 0
    csr = transfer / "issuing-ca.csr.pem"
    csr.write_bytes((server / "issuing-ca.csr.pem").read_bytes())
    assert main(["keys", "root", "sign", "--dir", str(usb), "--public-url", url, str(csr)]) == 0
    assert (transfer / "root-ca.crl").exists()
    assert (
        main(["keys", "install", "--keys-dir", str(server), str(transfer / "issuing-ca.chain.pem")])
        == 0
    )
    assert "root CRL    : installed" in capsys.readouterr().out
    assert _pointers(pki.load_issuing_ca(server)) == ([f"{url}/pki/root-ca.crl"], [], [])
    assert _pointers(pki.load_tsa_cert(server))[1] == [f"{url}/pki/ocsp"]
    first = pki.root_crl(server)
    assert first.is_signature_valid(pki.load_root_ca(server).public_key())

    yearly = transfer / "yearly.crl"
    assert main(["keys", "root", "crl", "--dir", str(usb), "--out", str(yearly)]) == 0
    assert main(["keys", "install-crl", "--keys-dir", str(server), str(yearly)]) == 0
    assert pki.root_crl(server).last_update_utc >= first.last_update_utc

    other = tmp_path / "other-root"
    assert main(["keys", "root", "init", "--dir", str(other)]) == 0
    assert main(["keys", "root", "crl", "--dir", str(other)]) == 0
    capsys.readouterr()
    assert main(["keys", "install-crl", "--keys-dir", str(server), str(other / "root-ca.crl")]) == 1
    assert "not signed by this server's root CA" in capsys.readouterr().err
