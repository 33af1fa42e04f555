"""Issue 12, signer lifecycle from the CLI: issue, renew (old certificate left to expire or
revoked as superseded) and revoke with a reason chosen in Bahasa Indonesia that becomes an
RFC 5280 reason code in the CRL and the OCSP answer. Every step is an engine write with its
audit event; the CLI only parses. A letter signed before a revocation keeps its verdict."""

from __future__ import annotations

import io
import sys
from datetime import timedelta

import pytest
from cryptography import x509
from sqlalchemy import select

from engine.people import signers
from engine.people.users import get_user
from engine.storage.db import session_factory, transaction
from engine.storage.models import AuditEvent, RevokedCertificate, SignerCertificate
from engine.timeutil import now_utc
from engine.trust.verification import (
    CryptoOk,
    RegistryEntry,
    SignatureDetail,
    with_registry,
)
from suratdesa.cli import main


@pytest.fixture
def cli(settings, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SURATDESA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SURATDESA_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("SURATDESA_AUDIT_DIR", str(tmp_path / "audit"))
    monkeypatch.setattr("getpass.getuser", lambda: "petugas-server")

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        rc = main(list(args))
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def session(settings):
    return transaction(session_factory(settings.database_url))


def events(settings, action: str) -> list[AuditEvent]:
    with session(settings) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def serial_of(settings, username: str) -> str | None:
    with session(settings) as s:
        return get_user(s, username).signer_serial


def status_in_registry(settings, serial: str) -> str:
    with session(settings) as s:
        return next(e.status for e in signers.registry(s) if e.serial == serial)


def test_renew_leaves_the_old_certificate_to_expire(cli, settings):
    old = serial_of(settings, "head.kenep")
    issued_before = len(events(settings, "signer.issue"))
    rc, out, err = cli(
        "keys", "renew-signer", "head.kenep", "--passphrase-stdin", stdin="kunci-lurah-baru\n"
    )
    assert rc == 0, err
    new = serial_of(settings, "head.kenep")
    assert new != old and f"Sertifikat baru {new}" in out and "dibiarkan berakhir" in out
    assert status_in_registry(settings, old) == "diganti"
    assert status_in_registry(settings, new) == "aktif"
    with session(settings) as s:
        assert s.get(RevokedCertificate, old) is None
        assert s.get(SignerCertificate, new).user_id == get_user(s, "head.kenep").id
    (renewed,) = events(settings, "signer.renew")
    assert renewed.detail["old_serial"] == old and renewed.detail["new_serial"] == new
    assert renewed.detail["old_certificate"] == "left_to_expire"
    issued = events(settings, "signer.issue")
    assert len(issued) == issued_before + 1 and issued[-1].detail["serial"] == new
    assert renewed.id == issued[-1].id + 1  # one transaction: the issue, then the renewal


def test_renew_can_revoke_the_old_one_as_superseded(cli, settings):
    old = serial_of(settings, "head.kenep")
    rc, out, err = cli(
        "keys", "renew-signer", "head.kenep", "--revoke-old", "--reason", "Laptop lama dijual",
        "--passphrase-stdin", stdin="kunci-lurah-baru\n",
    )  # fmt: skip
    assert rc == 0, err
    assert "dicabut (diganti)" in out
    with session(settings) as s:
        row = s.get(RevokedCertificate, old)
        assert signers.reason_of(row.reason) == ("diganti", "Laptop lama dijual")
        crl = x509.load_der_x509_crl(signers.current_crl(s, settings.keys_dir).der)
        status = signers.certificate_status(s, settings.keys_dir, int(old, 16))
    entry = crl.get_revoked_certificate_by_serial_number(int(old, 16))
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.superseded == status.reason
    (revoked,) = events(settings, "signer.revoke")
    assert revoked.detail["reason_code"] == "diganti"
    assert revoked.detail["crl_reason"] == "superseded"
    assert events(settings, "signer.renew")[0].detail["old_certificate"] == "revoked"


def test_revoke_when_the_head_leaves_office(cli, settings):
    serial = serial_of(settings, "head.kenep")
    rc, out, err = cli("keys", "revoke-signer", "head.kenep", "--reason-code", "berhenti-menjabat")
    assert rc == 0, err
    assert f"Sertifikat {serial} milik head.kenep dicabut (Berhenti menjabat" in out
    assert "tetap sah" in out
    (ev,) = events(settings, "signer.revoke")
    assert ev.detail["crl_reason"] == "cessation_of_operation"
    assert ev.reason.startswith("Berhenti menjabat")
    with session(settings) as s:
        user = get_user(s, "head.kenep")
        assert user.signer_p12 is None and user.signer_hsm_label is None
        assert not signers.has_live_key(s, user)
        status = signers.certificate_status(s, settings.keys_dir, int(serial, 16))
        message = signers.no_key_message(s, user)
    assert status.issued and status.revoked_at is not None
    assert status.reason == x509.ReasonFlags.cessation_of_operation
    assert message.startswith("Sertifikat penandatangan Anda dicabut pada ")
    assert "Berhenti menjabat" in message
    # The same certificate cannot be revoked twice.
    rc, _out, err = cli("keys", "revoke-signer", serial, "--serial", "--reason", "lagi")
    assert rc == 1 and "sudah dicabut" in err


def test_revoking_the_current_serial_drops_the_key_too(cli, settings):
    serial = serial_of(settings, "sekdes.grogol")
    rc, _out, err = cli("keys", "revoke-signer", serial, "--serial", "--reason-code", "kunci-bocor")
    assert rc == 0, err
    with session(settings) as s:
        user = get_user(s, "sekdes.grogol")
        assert user.signer_p12 is None and not signers.has_live_key(s, user)


def test_revoke_refuses_what_it_cannot_record(cli, settings):
    rc, _out, err = cli("keys", "revoke-signer", "head.kenep")  # "lainnya" needs a note
    assert rc == 1 and "Alasan wajib diisi" in err
    with pytest.raises(SystemExit):
        cli("keys", "revoke-signer", "head.kenep", "--reason-code", "dipecat")
    assert events(settings, "signer.revoke") == []
    # A renewal needs a certificate to renew.
    with session(settings) as s:
        signers.revoke_key(s, signers_actor(), get_user(s, "kasi.grogol"), "x")
        get_user(s, "kasi.grogol").signer_serial = None
    rc, _out, err = cli(
        "keys", "renew-signer", "kasi.grogol", "--passphrase-stdin", stdin="kunci-kasi-baru\n"
    )
    assert rc == 1 and "belum memiliki sertifikat" in err


def signers_actor():
    from engine.people.users import Actor

    return Actor.system("cli:test")


def test_unknown_stored_reasons_read_as_other():
    assert signers.reason_of("Kartu hilang") == ("lainnya", "Kartu hilang")
    assert signers.reason_of("kunci-bocor: dicuri") == ("kunci-bocor", "dicuri")
    assert signers.reason_of("Catatan: bukan kode") == ("lainnya", "Catatan: bukan kode")
    assert signers.crl_reason(None) == x509.ReasonFlags.unspecified


# --------------------------------------------------------------------------- the verdict


def _signed(at) -> CryptoOk:
    detail = SignatureDetail(
        field_name="Signature1", kind="signature", signer_cn="Kepala", issuer="CA",
        signing_time=at, timestamp_time=at, tsa_name="TSA", timestamp_trusted=True,
        coverage="ENTIRE_FILE", modification_level="NONE", docmdp_level="NO_CHANGES",
        intact=True, trusted=True, bottom_line=True, serial="abc",
    )  # fmt: skip
    return CryptoOk([detail], "00" * 32)


def _registry(_sha: str) -> RegistryEntry:
    return RegistryEntry(status="active", number="470/1/2026", verify_code="K")


def test_one_verdict_for_revocation_before_and_after_signing():
    signed_at = now_utc() - timedelta(days=30)
    later = signers_revocation(signed_at + timedelta(days=1))
    verdict = with_registry(_signed(signed_at), _registry, lambda serial: later)
    assert verdict.valid and verdict.status == "VALID"
    assert verdict.signatures[0].revocation.startswith(
        "ditandatangani sebelum sertifikat dicabut pada "
    )
    earlier = signers_revocation(signed_at - timedelta(days=1))
    verdict = with_registry(_signed(signed_at), _registry, lambda serial: earlier)
    assert not verdict.valid and verdict.status == "INVALID"
    assert "dicabut sebelum surat ditandatangani" in verdict.reasons[0]


def signers_revocation(at):
    from engine.trust.verification import CertRevocation

    return CertRevocation(at, "kunci-bocor: x")


# --------------------------------------------------------------------------- the admin pages


@pytest.fixture
def web(settings):
    from fastapi.testclient import TestClient

    from suratdesa.web import create_app

    app = create_app(settings)
    return app, TestClient(app)


def admin_post(app, path: str, **data: str):
    from tests.test_staff_app import P, csrf_of, sign_in

    client = sign_in(app, "admin")
    csrf = csrf_of(client.get(f"{P}/admin/pengguna").text)
    return client.post(f"{P}/admin/pengguna{path}", data={"csrf": csrf, **data})


def user_id(settings, username: str) -> int:
    with session(settings) as s:
        return get_user(s, username).id


def checked(client, pdf: bytes) -> dict:
    r = client.post("/api/public/verify", content=pdf, headers={"content-type": "application/pdf"})
    assert r.status_code == 200, r.text
    return r.json()


def qr_page(client, letter: dict) -> str:
    from urllib.parse import urlsplit

    r = client.get(urlsplit(letter["verify_url"]).path)
    assert r.status_code == 200, r.text
    return r.text


def scanned(client, letter: dict) -> str:
    """The verdict word on the page the letter's QR code opens."""
    import re

    return re.search(r'id="verdict"><strong>([^<]+)</strong>', qr_page(client, letter)).group(1)


def signer_note(client, letter: dict) -> str | None:
    """What the QR page says of a signing certificate revoked after the letter, if anything."""
    import re

    found = re.search(r'<p class="note" id="signer-revoked">([^<]+)</p>', qr_page(client, letter))
    return found.group(1) if found else None


NEW_PASSPHRASE = "kunci-kades-2027"


def test_admin_renews_a_head_and_both_letters_survive_a_later_revocation(
    web, settings, logins, passphrase
):
    from tests.test_tamper import issue_letter

    app, client = web
    before = issue_letter(client, logins, passphrase)
    head = user_id(settings, "head.grogol")
    old = serial_of(settings, "head.grogol")
    # The head types a new passphrase at the admin's desk; the old certificate is revoked as
    # superseded ("diganti"), with the admin's note.
    r = admin_post(
        app, f"/{head}/perbarui", passphrase=NEW_PASSPHRASE, old="cabut", reason="Ganti laptop"
    )
    assert r.status_code == 303, r.text
    new = serial_of(settings, "head.grogol")
    assert new != old and status_in_registry(settings, new) == "aktif"
    assert status_in_registry(settings, old) == "dicabut"
    (renewed,) = events(settings, "signer.renew")
    assert (renewed.actor, renewed.reason) == ("admin", "Ganti laptop")
    assert renewed.detail == {
        "user_id": head, "username": "head.grogol", "old_serial": old, "new_serial": new,
        "old_certificate": "revoked",
    }  # fmt: skip
    (superseded,) = events(settings, "signer.revoke")
    assert superseded.actor == "admin" and superseded.detail["crl_reason"] == "superseded"
    # The head signs the next letter with the new certificate (and its new passphrase).
    after = issue_letter(client, logins, NEW_PASSPHRASE)
    first, second = checked(client, before["pdf"]), checked(client, after["pdf"])
    assert int(first["signatures"][0]["serial"], 16) == int(old, 16)
    assert int(second["signatures"][0]["serial"], 16) == int(new, 16)
    # The letter signed before the renewal is still genuine: signed before its certificate
    # was revoked, as the portal says.
    assert first["status"] == "VALID", first["reasons"]
    assert first["signatures"][0]["revocation"].startswith(
        "ditandatangani sebelum sertifikat dicabut pada "
    )
    assert second["status"] == "VALID" and second["signatures"][0]["revocation"].startswith(
        "tidak dicabut"
    )
    # The QR page says it too, for the letter whose certificate was revoked only.
    note = signer_note(client, before)
    assert note is not None and "setelah surat ini ditandatangani" in note, note
    assert "tetap sah" in note
    assert signer_note(client, after) is None
    # The head leaves office: the admin revokes the new certificate too.
    r = admin_post(app, f"/{head}/cabut", code="berhenti-menjabat", reason="Masa jabatan habis")
    assert r.status_code == 303, r.text
    assert events(settings, "signer.revoke")[-1].detail["crl_reason"] == "cessation_of_operation"
    for letter in (before, after):
        verdict = checked(client, letter["pdf"])
        assert verdict["status"] == "VALID", verdict["reasons"]
        assert verdict["signatures"][0]["revocation"].startswith(
            "ditandatangani sebelum sertifikat dicabut pada "
        )
        assert scanned(client, letter) == "ASLI"
        assert "tetap sah" in (signer_note(client, letter) or "")
        code = letter["verify_url"].rsplit("/", 1)[1]
        public = client.get(f"/api/public/letters/{code}").json()
        assert public["status"] == "active" and public["signer"]["certificate_revoked_at"]
    # The verify page says it to a person too.
    r = client.post("/verify", files={"file": ("surat.pdf", after["pdf"], "application/pdf")})
    assert r.status_code == 200 and "<strong>ASLI</strong>" in r.text
    assert "ditandatangani sebelum sertifikat dicabut pada " in r.text


def test_admin_renewal_can_leave_the_old_certificate_to_expire(web, settings):
    app, _client = web
    head = user_id(settings, "head.kenep")
    old = serial_of(settings, "head.kenep")
    from tests.test_staff_app import P, sign_in

    listed = sign_in(app, "admin").get(f"{P}/admin/pengguna?desa=33.11.04.1001").text
    assert f'action="{P}/admin/pengguna/{head}/perbarui"' in listed
    operator = user_id(settings, "operator.kenep")
    assert f"/{operator}/perbarui" not in listed  # an operator holds no certificate
    r = admin_post(
        app, f"/{head}/perbarui", passphrase=NEW_PASSPHRASE, old="biarkan", reason="Rutin"
    )
    assert r.status_code == 303, r.text
    new = serial_of(settings, "head.kenep")
    assert new != old
    assert (status_in_registry(settings, old), status_in_registry(settings, new)) == (
        "diganti",
        "aktif",
    )
    (renewed,) = events(settings, "signer.renew")
    assert renewed.detail["old_certificate"] == "left_to_expire"
    assert events(settings, "signer.revoke") == []


def test_admin_renewal_refusals_change_nothing(web, settings):
    app, _client = web
    head = user_id(settings, "head.kenep")
    old = serial_of(settings, "head.kenep")
    r = admin_post(app, f"/{head}/perbarui", passphrase="pendek", old="cabut", reason="x")
    assert r.status_code == 422 and "Minimal 8 karakter" in r.text
    operator = user_id(settings, "operator.kenep")
    r = admin_post(app, f"/{operator}/perbarui", passphrase=NEW_PASSPHRASE, reason="x")
    assert r.status_code == 422 and "belum memiliki sertifikat" in r.text
    assert serial_of(settings, "head.kenep") == old
    assert events(settings, "signer.renew") == [] and events(settings, "signer.revoke") == []


def test_only_the_regency_admin_renews_or_revokes_in_the_engine(settings):
    from engine.errors import Forbidden
    from engine.people.users import Actor

    with session(settings) as s:
        head = get_user(s, "head.grogol")
        by = Actor.of(head)
        with pytest.raises(Forbidden):
            signers.renew(s, settings, head, NEW_PASSPHRASE, by=by)
        with pytest.raises(Forbidden):
            signers.revoke_live_key(s, by, head, "", code="kunci-bocor")


def test_migration_0024_gives_old_letters_the_certificate_they_were_signed_with(tmp_path):
    """The newest certificate issued to the signer before the letter; none before: NULL."""
    import sqlite3

    from engine.storage.migrate import upgrade
    from tests.letters import GROGOL
    from tests.test_numbering_mode import _insert

    path = tmp_path / "old.db"
    upgrade(f"sqlite:///{path}", "0023")
    con = sqlite3.connect(path)
    _insert(con, "districts", code="33.11.01")
    _insert(con, "villages", code=GROGOL, district_code="33.11.01")
    _insert(con, "users", id=1, village_code=GROGOL)
    for serial, issued in (("a1", "2025-01-01"), ("b2", "2026-06-01")):
        _insert(
            con, "signer_certificates", serial=serial, user_id=1, village_code=GROGOL,
            issued_at=f"{issued} 00:00:00.000000",
        )  # fmt: skip
    for n, issued in enumerate(("2024-12-31", "2025-12-01", "2026-07-01"), 1):
        _insert(con, "requests", id=n, village_code=GROGOL, created_by_id=1)
        _insert(
            con, "letters", id=n, request_id=n, village_code=GROGOL, signer_id=1, seq=n,
            number=f"470/{n}", verify_code=f"C{n}", pdf_sha256=f"h{n}",
            issued_at=f"{issued} 08:00:00.000000",
        )  # fmt: skip
    con.commit()
    con.close()
    upgrade(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    got = con.execute("SELECT seq, signer_serial FROM letters ORDER BY seq").fetchall()
    con.close()
    assert got == [(1, None), (2, "a1"), (3, "b2")]
