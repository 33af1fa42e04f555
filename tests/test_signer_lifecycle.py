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
