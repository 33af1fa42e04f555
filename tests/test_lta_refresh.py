"""Issue 12 item 3: the archival timestamp renewal (`suratdesa letters lta-refresh` and the
worker's daily job). Letters whose newest document timestamp's TSA certificate expires within
the window get a fresh DSS + document timestamp appended to the stored PDF; both the copy
handed out at issue and the renewed one stay ASLI; a second run does nothing; each run that
stored anything leaves one audit event with the counts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select

from engine.letters.lta_refresh import AUDIT_ACTION, refresh_archives
from engine.people.users import Actor
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, Letter
from engine.trust import lta, pki, signing
from engine.trust.registry import verify_letter
from engine.trust.verification import VALID
from tests.test_issuance import actor, ready_to_sign

SYSTEM = Actor.system("system:uji")


def _issue(services, logins, passphrase, count: int = 1) -> list[int]:
    from tests.letters import GROGOL

    head = actor(services, "head.grogol")
    ids = []
    for request_id, version in ready_to_sign(services, logins, GROGOL, "grogol", count):
        ids.append(
            services.issuer.sign(head, request_id, version=version, passphrase=passphrase).id
        )
    return ids


def _letter(services, letter_id: int) -> tuple[bytes, str]:
    with transaction(services.factory) as session:
        row = session.get(Letter, letter_id)
        return row.pdf, row.pdf_sha256


def _runs(services) -> list[AuditEvent]:
    with transaction(services.factory) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == AUDIT_ACTION))
        return [(e.actor, dict(e.detail)) for e in rows]


def _kinds(pdf: bytes) -> list[str]:
    return [e.sig_object_type for e in PdfFileReader(BytesIO(pdf)).embedded_signatures]


def _longer_lived_tsa(keys, days: int) -> signing.DevTimeStamper:
    """A new TSA certificate under the issuing CA, valid ``days`` (a renewed TSA)."""
    issuing, issuing_key = pki.load_issuing_ca_key(keys)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    usage = dict.fromkeys(
        ["content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"], False,
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TSA Baru Uji")]))
        .issuer_name(issuing.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, **usage), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing_key.public_key()),
            critical=False,
        )
        .sign(issuing_key, hashes.SHA256())
    )
    return signing.DevTimeStamper(cert, key, [issuing, pki.load_root_ca(keys)])


def test_fresh_letters_are_skipped_and_no_event_is_written(services, logins, passphrase):
    (letter_id,) = _issue(services, logins, passphrase)
    pdf, _ = _letter(services, letter_id)
    report = refresh_archives(services.factory, services.settings, actor=SYSTEM)
    assert (report.examined, report.fresh, report.stored, report.failed) == (1, 1, 0, 0)
    assert _letter(services, letter_id)[0] == pdf
    assert _runs(services) == []


def test_a_due_letter_is_renewed_once_and_both_copies_stay_asli(services, logins, passphrase):
    keys = services.settings.keys_dir
    (letter_id,) = _issue(services, logins, passphrase)
    issued, sha = _letter(services, letter_id)
    # The TSA certificate in the letter expires in about ten years; with a window reaching past
    # that, and a renewed TSA whose certificate lasts longer, the letter is due.
    tsa_until = pki.load_tsa_cert(keys).not_valid_after_utc
    window = tsa_until - datetime.now(UTC) + timedelta(days=1)
    renewed_tsa = _longer_lived_tsa(keys, (window + timedelta(days=400)).days)

    report = refresh_archives(
        services.factory, services.settings, actor=SYSTEM, window=window, timestamper=renewed_tsa
    )
    assert (report.examined, report.refreshed, report.failed) == (1, 1, 0), report.errors
    renewed, sha_after = _letter(services, letter_id)
    assert renewed.startswith(issued) and len(renewed) > len(issued)
    assert sha_after == sha  # the registry key is the certified revision's hash
    assert _kinds(renewed) == ["/Sig", "/DocTimeStamp", "/DocTimeStamp"]
    newest = PdfFileReader(BytesIO(renewed)).embedded_signatures[-1]
    assert newest.signer_cert.subject.native["common_name"] == "TSA Baru Uji"
    for copy in (issued, renewed):
        verdict = verify_letter(copy, services.factory, keys)
        assert verdict.status == VALID, verdict.reasons
    assert hashlib.sha256(renewed[: len(issued)]).hexdigest() == hashlib.sha256(issued).hexdigest()

    (event,) = _runs(services)
    assert event[0] == "system:uji"
    assert event[1]["refreshed"] == 1 and event[1]["examined"] == 1

    # Again: the newest timestamp is now under the renewed TSA certificate, which outlasts the
    # window, so nothing is done and nothing is audited.
    again = refresh_archives(
        services.factory, services.settings, actor=SYSTEM, window=window, timestamper=renewed_tsa
    )
    assert (again.fresh, again.stored) == (1, 0)
    assert _letter(services, letter_id)[0] == renewed
    assert len(_runs(services)) == 1


def test_no_gain_when_the_current_tsa_expires_as_soon(services, logins, passphrase):
    """Due, but the TSA in use is the one that is expiring: skipped and reported."""
    keys = services.settings.keys_dir
    (letter_id,) = _issue(services, logins, passphrase)
    pdf, _ = _letter(services, letter_id)
    window = pki.load_tsa_cert(keys).not_valid_after_utc - datetime.now(UTC) + timedelta(days=1)
    report = refresh_archives(services.factory, services.settings, actor=SYSTEM, window=window)
    assert (report.tsa_expiring, report.stored) == (1, 0)
    assert _letter(services, letter_id)[0] == pdf


def test_letters_issued_before_b_lta_are_upgraded_with_limit_and_resume(
    services, logins, passphrase
):
    keys = services.settings.keys_dir
    ids = _issue(services, logins, passphrase, count=3)
    # As issued before this change: the certified revision only (B-T).
    with transaction(services.factory) as session:
        for letter_id in ids:
            row = session.get(Letter, letter_id)
            sig = PdfFileReader(BytesIO(row.pdf)).embedded_signatures[0]
            row.pdf = row.pdf[: int(sig.byte_range[2]) + int(sig.byte_range[3])]
            assert hashlib.sha256(row.pdf).hexdigest() == row.pdf_sha256
    first = refresh_archives(services.factory, services.settings, actor=SYSTEM, limit=2)
    assert (first.upgraded, first.failed) == (2, 0), first.errors
    second = refresh_archives(services.factory, services.settings, actor=SYSTEM)
    assert (second.upgraded, second.fresh) == (1, 2)  # resumed where the limit stopped
    for letter_id in ids:
        pdf, _ = _letter(services, letter_id)
        assert _kinds(pdf) == ["/Sig", "/DocTimeStamp"]
        assert lta.document_timestamp_count(pdf) == 1
        assert verify_letter(pdf, services.factory, keys).status == VALID
    assert [e[1]["upgraded"] for e in _runs(services)] == [2, 1]


@pytest.fixture
def cli(settings, monkeypatch, capsys):
    from suratdesa.cli import main

    monkeypatch.setenv("SURATDESA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SURATDESA_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setattr("getpass.getuser", lambda: "petugas-server")

    def run(*args: str) -> tuple[int, str, str]:
        rc = main(list(args))
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def test_the_command_runs_the_refresh(services, logins, passphrase, cli):
    (letter_id,) = _issue(services, logins, passphrase)
    with transaction(services.factory) as session:  # make it a pre-B-LTA letter
        row = session.get(Letter, letter_id)
        sig = PdfFileReader(BytesIO(row.pdf)).embedded_signatures[0]
        row.pdf = row.pdf[: int(sig.byte_range[2]) + int(sig.byte_range[3])]
    rc, out, err = cli("letters", "lta-refresh")
    assert rc == 0, err
    assert "1 surat diperiksa" in out and "1 ditingkatkan ke B-LTA" in out, out
    (event,) = _runs(services)
    assert event[0] == "cli:petugas-server" and event[1]["upgraded"] == 1
    rc, out, _ = cli("letters", "lta-refresh")
    assert rc == 0 and "1 masih berlaku" in out
