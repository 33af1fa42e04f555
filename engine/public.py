"""What the public may learn about a letter from its QR code: the minimum (UU 27/2022).

No search: a letter is found only by its 160-bit random code. The look-up is one indexed query
in SQLAlchemy Core (no ORM objects): it runs on every QR scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, aliased

from engine.dates import WIB, format_tanggal
from engine.models import District, Letter, LetterRequest, Village
from engine.nik import mask_nik

# A code is 32 base32 characters; anything else is rejected before touching the database.
CODE_PATTERN = re.compile(r"^[A-Z2-7]{32}$")
PURPOSE_FIELD = "keperluan"  # the field a letter type uses for "what the letter is for"


@dataclass(frozen=True)
class PublicLetter:
    status: str  # "active" | "revoked" | "replaced"
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
    purpose: str | None = None
    replaced_by_code: str | None = None  # the corrected letter, when status == "replaced"
    replaced_by_number: str | None = None
    replaces_number: str | None = None  # this letter corrects that one

    @property
    def revoked_on(self) -> str | None:
        if self.revoked_at is None:
            return None
        return format_tanggal(self.revoked_at.astimezone(WIB).date())


def normalize_code(code: str) -> str | None:
    code = code.strip().upper()
    return code if CODE_PATTERN.match(code) else None


_new = aliased(Letter)
_old = aliased(Letter)
_QUERY = (
    select(
        Letter.status,
        Letter.title,
        Letter.number,
        Letter.issued_at,
        Village.kind,
        Village.name,
        District.name,
        Letter.signer_name,
        Letter.signer_capacity,
        Letter.subject_name,
        Letter.subject_nik,
        Letter.pdf_sha256,
        Letter.revoked_at,
        Letter.revoke_reason,
        LetterRequest.data,
        _new.verify_code,
        _new.number,
        _old.number,
    )
    .join(Village, Village.code == Letter.village_code)
    .join(District, District.code == Village.district_code)
    .join(LetterRequest, LetterRequest.id == Letter.request_id)
    .outerjoin(_new, _new.replaces_letter_id == Letter.id)
    .outerjoin(_old, _old.id == Letter.replaces_letter_id)
    .limit(1)
)


def lookup_public_letter(conn: Connection | Session, code: str) -> PublicLetter | None:
    norm = normalize_code(code)
    if norm is None:
        return None
    row = conn.execute(_QUERY.where(Letter.verify_code == norm)).first()
    if row is None:
        return None
    (status, title, number, issued_at, kind, vname, dname, signer, capacity, subject, nik,
     sha, revoked_at, reason, data, new_code, new_number, old_number) = row  # fmt: skip
    purpose = (data or {}).get(PURPOSE_FIELD)
    return PublicLetter(
        status=status,
        title=title,
        number=number,
        issued_on=format_tanggal(issued_at.astimezone(WIB).date()),
        issued_at=issued_at,
        village=f"{'Desa' if kind == 'desa' else 'Kelurahan'} {vname}",
        district=dname,
        signer_name=signer,
        signer_capacity=capacity,
        subject_name=subject,
        subject_nik_masked=mask_nik(nik),
        pdf_sha256=sha,
        revoked_at=revoked_at,
        revoke_reason=reason,
        purpose=str(purpose) if purpose else None,
        replaced_by_code=new_code if status == "replaced" else None,
        replaced_by_number=new_number if status == "replaced" else None,
        replaces_number=old_number,
    )


def find_public_letter(session: Session, code: str) -> PublicLetter | None:
    return lookup_public_letter(session, code)


def public_pdf(conn: Connection | Session, code: str) -> tuple[str, bytes] | None:
    """(number, signed PDF) for whoever holds the code."""
    norm = normalize_code(code)
    if norm is None:
        return None
    row = conn.execute(select(Letter.number, Letter.pdf).where(Letter.verify_code == norm)).first()
    return (row[0], row[1]) if row else None
