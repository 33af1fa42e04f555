"""What the public may learn about a letter from its QR code: the minimum (UU 27/2022).

No search: a letter is found only by its 160-bit random code. ``scan`` is what every QR scan
costs: one indexed statement that also reads the client's shared rate-limit count.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

from sqlalchemy import Connection, bindparam, literal, select
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session, aliased

from engine.dates import WIB, format_tanggal
from engine.errors import SuratDesaError
from engine.people.nik import mask_nik
from engine.storage.models import (
    District,
    Letter,
    LetterRequest,
    RateLimitCounter,
    RevokedCertificate,
    Village,
)
from engine.trust.seal import SealRecord

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
    # The letter type's public facts as issued ({"label", "value"}); None for letters issued
    # before they were stored: the page then shows the subject's name and masked NIK.
    facts: tuple[dict[str, str], ...] | None = None
    # When the certificate the letter was signed with was revoked, if it was. A letter is
    # stored only while its certificate is unrevoked (engine.letters.signer_check), so this
    # comes after the letter: the letter stays genuine, and the page says so.
    signer_revoked_at: datetime | None = None

    @property
    def issued_on_date(self) -> date:
        return self.issued_at.astimezone(WIB).date()

    def seal_record(self) -> SealRecord:
        """What a seal printed under this letter's code must state."""
        return SealRecord(self.number, self.issued_on_date, self.facts, self.subject_name)

    @property
    def revoked_on(self) -> str | None:
        if self.revoked_at is None:
            return None
        return format_tanggal(self.revoked_at.astimezone(WIB).date())

    @property
    def signer_revoked_on(self) -> str | None:
        if self.signer_revoked_at is None:
            return None
        return format_tanggal(self.signer_revoked_at.astimezone(WIB).date())


def normalize_code(code: str) -> str | None:
    code = code.strip().upper()
    return code if CODE_PATTERN.match(code) else None


_new = aliased(Letter)
_old = aliased(Letter)
_cert = RevokedCertificate.__table__.alias("signer_cert")
_COLUMNS = (
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
    LetterRequest.data[PURPOSE_FIELD].as_string(),
    _new.verify_code,
    _new.number,
    _old.number,
    Letter.public_facts,
    _cert.c.revoked_at,
)
_QUERY = (
    select(*_COLUMNS)
    .join(Village, Village.code == Letter.village_code)
    .join(District, District.code == Village.district_code)
    .join(LetterRequest, LetterRequest.id == Letter.request_id)
    .outerjoin(_new, _new.replaces_letter_id == Letter.id)
    .outerjoin(_old, _old.id == Letter.replaces_letter_id)
    .outerjoin(_cert, _cert.c.serial == Letter.signer_serial)
    .limit(1)
)
_rl = RateLimitCounter.__table__.c
_one = select(literal(1).label("one")).subquery("one")


# Built once with bound parameters: SQLAlchemy's compiled cache then serves every scan (building
# the statement per request cost more than running it).
_SCAN = (
    select(
        select(_rl["count"])
        .where(
            _rl.bucket == bindparam("bucket"),
            _rl.client == bindparam("client"),
            _rl.window == bindparam("window"),
        )
        .scalar_subquery(),
        *_COLUMNS,
    )
    .select_from(_one)
    .outerjoin(Letter, Letter.verify_code == bindparam("code"))
    .outerjoin(Village, Village.code == Letter.village_code)
    .outerjoin(District, District.code == Village.district_code)
    .outerjoin(LetterRequest, LetterRequest.id == Letter.request_id)
    .outerjoin(_new, _new.replaces_letter_id == Letter.id)
    .outerjoin(_old, _old.id == Letter.replaces_letter_id)
    .outerjoin(_cert, _cert.c.serial == Letter.signer_serial)
    .limit(1)
)
"""One row whether or not the letter exists: the shared rate-limit count, then the letter's
columns (NULL when there is no such letter). Outer joins only; the foreign keys make them
inner joins for an existing letter."""


class StaleConnection(SuratDesaError):
    """The pooled connection was dead; it is discarded, and the caller may retry once."""


@lru_cache(maxsize=1)
def _scan_pg() -> tuple[str, dict[str, object]]:
    compiled = _SCAN.compile(dialect=psycopg_dialect())
    return compiled.string, dict(compiled.params)


def scan(
    conn: Connection, code: str, key: tuple[str, str, int]
) -> tuple[PublicLetter | None, int | None]:
    """What a QR scan needs in one statement: the letter (None if unknown or malformed) and
    the shared rate-limit count of ``key`` (None when nothing was read: malformed code)."""
    norm = normalize_code(code)
    if norm is None:
        return None, None
    bucket, client, window = key
    params = {"bucket": bucket, "client": client, "window": window, "code": norm}
    if conn.dialect.name == "postgresql":
        # The driver directly, with SQL compiled once: SQLAlchemy's per-execution work cost
        # as much as the query itself. Same statement, same parameters.
        sql, fixed = _scan_pg()
        driver = conn.connection.driver_connection
        try:
            with driver.cursor() as cur:
                row = cur.execute(sql, {**fixed, **params}).fetchone()
        except Exception as e:
            if driver.broken or driver.closed:  # the server closed it (restart, failover)
                conn.invalidate()
                raise StaleConnection from e
            raise
    else:
        row = conn.execute(_SCAN, params).one()
    shared, *rest = row
    return (_public(tuple(rest)) if rest[0] is not None else None), shared or 0


def lookup_public_letter(conn: Connection | Session, code: str) -> PublicLetter | None:
    norm = normalize_code(code)
    if norm is None:
        return None
    row = conn.execute(_QUERY.where(Letter.verify_code == norm)).first()
    return None if row is None else _public(tuple(row))


def _public(row: tuple) -> PublicLetter:
    (status, title, number, issued_at, kind, vname, dname, signer, capacity, subject, nik,
     sha, revoked_at, reason, purpose, new_code, new_number, old_number, facts,
     signer_revoked_at) = row  # fmt: skip
    return PublicLetter(
        status=status,
        title=title,
        number=number,
        issued_on=format_tanggal(issued_at.astimezone(WIB).date()),
        issued_at=issued_at.astimezone(UTC),
        village=f"{'Desa' if kind == 'desa' else 'Kelurahan'} {vname}",
        district=dname,
        signer_name=signer,
        signer_capacity=capacity,
        subject_name=subject,
        subject_nik_masked=mask_nik(nik),
        pdf_sha256=sha,
        revoked_at=revoked_at.astimezone(UTC) if revoked_at else None,
        revoke_reason=reason,
        purpose=str(purpose) if purpose else None,
        replaced_by_code=new_code if status == "replaced" else None,
        replaced_by_number=new_number if status == "replaced" else None,
        replaces_number=old_number,
        facts=_facts(facts),
        signer_revoked_at=signer_revoked_at.astimezone(UTC) if signer_revoked_at else None,
    )


def _facts(raw: object) -> tuple[dict[str, str], ...] | None:
    if isinstance(raw, str):  # a JSON column read through the driver without type decoding
        raw = json.loads(raw)
    if not isinstance(raw, list):
        return None
    return tuple({"label": str(f["label"]), "value": str(f["value"])} for f in raw)


def find_public_letter(session: Session, code: str) -> PublicLetter | None:
    return lookup_public_letter(session, code)


def pdf_offered(letter: PublicLetter | None, enabled: bool) -> bool:
    """Whether the public page offers the signed PDF: only where the deployment turned it on
    (Settings.public_pdf), and only for a letter still in force."""
    return enabled and letter is not None and letter.status == "active"


def public_pdf(conn: Connection | Session, code: str, *, enabled: bool) -> tuple[str, bytes] | None:
    """(number, signed PDF) for whoever holds the code, or None: when the deployment keeps the
    PDF private (the default: it carries the unmasked NIK, birth date and address), for an
    unknown code, and always for a revoked or replaced letter."""
    if not enabled:
        return None
    norm = normalize_code(code)
    if norm is None:
        return None
    row = conn.execute(
        select(Letter.number, Letter.pdf).where(
            Letter.verify_code == norm, Letter.status == "active"
        )
    ).first()
    return (row[0], row[1]) if row else None
