"""The archive of issued letters: search by number, name, NIK, type and date range, paged by
keyset on (issued_at, id) so page 1000 costs what page 1 costs (no OFFSET scan)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from engine.dates import WIB
from engine.models import Letter

PAGE_SIZE = 50


@dataclass(frozen=True)
class ArchiveQuery:
    village_code: str | None  # None: all villages (regency admin)
    number: str = ""
    name: str = ""
    nik: str = ""
    workflow_id: str = ""
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class ArchiveRow:
    id: int
    request_id: int
    number: str
    title: str
    subject_name: str
    subject_nik: str
    village_code: str
    issued_at: datetime
    status: str
    handed_over_at: datetime | None


@dataclass(frozen=True)
class ArchivePage:
    rows: list[ArchiveRow]
    next_cursor: str | None


_COLUMNS = (
    Letter.id,
    Letter.request_id,
    Letter.number,
    Letter.title,
    Letter.subject_name,
    Letter.subject_nik,
    Letter.village_code,
    Letter.issued_at,
    Letter.status,
    Letter.handed_over_at,
)


def _filtered(q: ArchiveQuery) -> Select:
    query = select(*_COLUMNS)
    if q.village_code is not None:
        query = query.where(Letter.village_code == q.village_code)
    if q.number.strip():
        query = query.where(Letter.number == q.number.strip())
    if q.nik.strip():
        query = query.where(Letter.subject_nik == q.nik.strip())
    if q.name.strip():
        pattern = "%" + q.name.strip().replace("\\", "").replace("%", "").replace("_", "") + "%"
        query = query.where(Letter.subject_name.ilike(pattern))
    if q.workflow_id:
        query = query.where(Letter.workflow_id == q.workflow_id)
    if q.date_from:
        query = query.where(Letter.issued_at >= datetime.combine(q.date_from, time(), WIB))
    if q.date_to:
        end = datetime.combine(q.date_to + timedelta(days=1), time(), WIB)
        query = query.where(Letter.issued_at < end)
    return query


def encode_cursor(row: ArchiveRow) -> str:
    return f"{row.issued_at.isoformat()}_{row.id}"


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        at, _, ident = cursor.rpartition("_")
        return datetime.fromisoformat(at), int(ident)
    except ValueError:
        return None


def search(
    session: Session, q: ArchiveQuery, *, after: str | None = None, limit: int = PAGE_SIZE
) -> ArchivePage:
    query = _filtered(q)
    position = decode_cursor(after) if after else None
    if position is not None:
        at, ident = position
        # A row-value comparison lets the (issued_at, id) index seek straight to the cursor.
        query = query.where(tuple_(Letter.issued_at, Letter.id) < tuple_(at, ident))
    query = query.order_by(Letter.issued_at.desc(), Letter.id.desc()).limit(limit + 1)
    rows = [ArchiveRow(*r) for r in session.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return ArchivePage(rows, encode_cursor(rows[-1]) if more and rows else None)


def export(session: Session, q: ArchiveQuery, *, chunk: int = 1000) -> Iterator[ArchiveRow]:
    """Every matching row, newest first, fetched in keyset chunks."""
    after: str | None = None
    while True:
        page = search(session, q, after=after, limit=chunk)
        yield from page.rows
        if page.next_cursor is None:
            return
        after = page.next_cursor
