"""What the public may learn about a letter from its QR code: the minimum (UU 27/2022)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.dates import WIB, format_tanggal
from engine.models import Letter
from engine.nik import mask_nik

# A code is 32 base32 characters; anything else is rejected before touching the database.
CODE_PATTERN = re.compile(r"^[A-Z2-7]{32}$")


@dataclass(frozen=True)
class PublicLetter:
    status: str  # "active" | "revoked"
    title: str
    number: str
    issued_on: str  # Indonesian date
    issued_at: datetime
    village: str  # "Desa Grogol"
    district: str
    signer_name: str
    signer_capacity: str
    subject_name: str
    subject_nik_masked: str
    pdf_sha256: str
    revoked_at: datetime | None
    revoke_reason: str | None


def find_public_letter(session: Session, code: str) -> PublicLetter | None:
    code = code.strip().upper()
    if not CODE_PATTERN.match(code):
        return None
    letter = session.scalar(select(Letter).where(Letter.verify_code == code))
    if letter is None:
        return None
    village = letter.village
    return PublicLetter(
        status=letter.status,
        title=letter.title,
        number=letter.number,
        issued_on=format_tanggal(letter.issued_at.astimezone(WIB).date()),
        issued_at=letter.issued_at,
        village=f"{village.kind_label.title()} {village.name}",
        district=village.district.name,
        signer_name=letter.signer_name,
        signer_capacity=letter.signer_capacity,
        subject_name=letter.subject_name,
        subject_nik_masked=mask_nik(letter.subject_nik),
        pdf_sha256=letter.pdf_sha256,
        revoked_at=letter.revoked_at,
        revoke_reason=letter.revoke_reason,
    )
