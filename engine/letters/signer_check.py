"""The last look at the signer before a letter is stored: the certificate the letter was signed
with must not be revoked. Issuing opens the key, renders and signs outside any transaction,
and only then stores; the regency admin may revoke the certificate meanwhile. The check runs
inside the short write that stores the letter, after locking the signer's account row (the row
a revocation of their current certificate updates, engine.people.signers), so a revocation is
either committed before the check, and seen, or waits until the letter is stored: a letter
stored is one signed before its certificate was revoked."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.dates import format_wib
from engine.errors import Forbidden
from engine.people.signers import REVOCATION_REASONS, reason_of
from engine.storage.models import RevokedCertificate, User


class SignerRevoked(Forbidden):
    """The signing certificate was revoked before the letter could be stored."""


def serial_of(cert) -> str:
    """A certificate's serial as the registry keeps it (lowercase hex)."""
    return format(cert.serial_number, "x")


def check_not_revoked(session: Session, user_id: int, serial: str) -> None:
    """Refuse (SignerRevoked, nothing stored) when ``serial`` is revoked."""
    session.execute(select(User.id).where(User.id == user_id).with_for_update())
    row = session.get(RevokedCertificate, serial)
    if row is None:
        return
    code = reason_of(row.reason)[0]
    label = REVOCATION_REASONS.get(code, REVOCATION_REASONS["lainnya"])[0]
    raise SignerRevoked(
        f"Sertifikat penandatangan yang dipakai dicabut pada {format_wib(row.revoked_at)} "
        f"({label}) sebelum surat disimpan. Surat tidak diterbitkan dan nomornya tidak "
        "terpakai. Minta admin kabupaten menerbitkan sertifikat baru."
    )
