"""The archive of issued letters: search by any part of the number, part of the name, the NIK's
first digits, type and date range, paged by keyset on (issued_at, id) so page 1000 costs what
page 1 costs (no OFFSET scan).

On PostgreSQL the query stays on indexes: the village's (village_code, issued_at, id) index or
the regency's (issued_at, id) index is read newest first and stops after one page; a NIK prefix
is a range on ix_letters_subject_nik (digits sort alike in every collation); a name part uses
the trigram index."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from engine.dates import WIB
from engine.errors import InvalidInput
from engine.storage.models import Letter
from engine.text import text_problem

PAGE_SIZE = 50
MAX_PAGE = 1000
MAX_ID = 2**31 - 1
# The dates a search may name. Outside them no letter exists, and the far ends (0001-01-01,
# 9999-12-31) overflow when turned into WIB day boundaries.
EARLIEST = date(1900, 1, 1)
LATEST = date(2100, 12, 31)
_TEXT_FIELDS = ("number", "name", "nik", "workflow_id")
# A letter's status as staff read it, in pages and in the CSV export.
STATUS_LABELS = {"active": "Berlaku", "revoked": "Dicabut", "replaced": "Diganti"}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


@dataclass(frozen=True)
class ArchiveQuery:
    village_code: str | None  # None: all villages (regency admin)
    number: str = ""  # any part of the number, case-insensitive: "045", "/II/2026", "474/045"
    name: str = ""  # any part of the subject's name, case-insensitive
    nik: str = ""  # the subject NIK's first digits (1 to 16)
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


def check(q: ArchiveQuery) -> None:
    """Refuse a query that cannot be run (InvalidInput naming ArchiveQuery's fields): text the
    text rule refuses (a NUL in the name search), dates outside EARLIEST..LATEST, or a range
    that ends before it starts. Faces call it before they start streaming an export."""
    errors: dict[str, str] = {}
    for name in _TEXT_FIELDS:
        value = getattr(q, name)
        problem = text_problem(value) if isinstance(value, str) else "Harus berupa teks"
        if problem is None and len(value) > 200:
            problem = "Terlalu panjang: maksimal 200 karakter"
        if problem:
            errors[name] = problem
    nik = q.nik.strip() if isinstance(q.nik, str) else ""
    if "nik" not in errors and nik and not (nik.isascii() and nik.isdigit() and len(nik) <= 16):
        errors["nik"] = "NIK berupa angka, paling banyak 16 digit; boleh bagian depannya saja"
    for name in ("date_from", "date_to"):
        value = getattr(q, name)
        if value is not None and not EARLIEST <= value <= LATEST:
            errors[name] = f"Tanggal harus antara {EARLIEST:%d-%m-%Y} dan {LATEST:%d-%m-%Y}"
    if not errors and q.date_from and q.date_to and q.date_from > q.date_to:
        errors["date_to"] = "Tanggal akhir tidak boleh sebelum tanggal awal"
    if errors:
        raise InvalidInput("Pencarian arsip belum benar.", errors)


def digits_prefix_range(prefix: str) -> tuple[str, str | None]:
    """[low, high) of the digit strings that start with ``prefix`` (high None: no upper end),
    so a NIK prefix is an index range, not a LIKE a collation-aware index cannot serve."""
    if set(prefix) == {"9"}:
        return prefix, None
    return prefix, str(int(prefix) + 1).zfill(len(prefix))


def contains_pattern(text: str) -> str:
    """An ILIKE pattern for ``text`` anywhere, its wildcards escaped with "/" (ILIKE, not
    lower() LIKE, so PostgreSQL's trigram indexes can serve it)."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _filtered(q: ArchiveQuery) -> Select:
    query = select(*_COLUMNS)
    if q.village_code is not None:
        query = query.where(Letter.village_code == q.village_code)
    if q.number.strip():
        query = query.where(Letter.number.ilike(contains_pattern(q.number.strip()), escape="/"))
    nik = q.nik.strip()
    if len(nik) == 16:
        query = query.where(Letter.subject_nik == nik)
    elif nik:
        low, high = digits_prefix_range(nik)
        query = query.where(Letter.subject_nik >= low)
        if high is not None:
            query = query.where(Letter.subject_nik < high)
    if q.name.strip():
        query = query.where(Letter.subject_name.ilike(contains_pattern(q.name.strip()), escape="/"))
    if q.workflow_id:
        query = query.where(Letter.workflow_id == q.workflow_id)
    if q.date_from:
        query = query.where(Letter.issued_at >= datetime.combine(q.date_from, time(), WIB))
    if q.date_to:
        end = datetime.combine(q.date_to + timedelta(days=1), time(), WIB)
        query = query.where(Letter.issued_at < end)
    return query


def cursor_at(moment: datetime, ident: int) -> str:
    """A keyset cursor naming the row (moment, id); every paged list uses this one form."""
    return f"{moment.isoformat()}_{ident}"


def encode_cursor(row: ArchiveRow) -> str:
    return cursor_at(row.issued_at, row.id)


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    """The (issued_at, id) a cursor names, or None for anything this module did not make."""
    at, _, ident = cursor.rpartition("_")
    if len(cursor) > 100 or not ident.isascii() or not ident.isdigit():
        return None
    try:
        moment, number = datetime.fromisoformat(at), int(ident)
    except ValueError:
        return None
    if moment.tzinfo is None or not 1 <= number <= MAX_ID:
        return None
    if not EARLIEST <= moment.date() <= LATEST:
        return None
    return moment, number


def check_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The decoded cursor; InvalidInput for one that is not ours (garbage, huge ids)."""
    if not cursor:
        return None
    position = decode_cursor(cursor)
    if position is None:
        raise InvalidInput(
            "Penanda halaman tidak valid; mulai lagi dari halaman pertama.",
            {"cursor": "Penanda halaman tidak valid"},
        )
    return position


def search(
    session: Session, q: ArchiveQuery, *, after: str | None = None, limit: int = PAGE_SIZE
) -> ArchivePage:
    check(q)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(
            f"Jumlah baris per halaman harus 1 sampai {MAX_PAGE}.", {"limit": "Di luar rentang"}
        )
    query = _filtered(q)
    position = check_cursor(after)
    if position is not None:
        at, ident = position
        # A row-value comparison lets the (issued_at, id) index seek straight to the cursor.
        query = query.where(tuple_(Letter.issued_at, Letter.id) < tuple_(at, ident))
    query = query.order_by(Letter.issued_at.desc(), Letter.id.desc()).limit(limit + 1)
    rows = [ArchiveRow(*r) for r in session.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return ArchivePage(rows, encode_cursor(rows[-1]) if more and rows else None)


# OWASP "CSV injection": a cell a spreadsheet would read as a formula gets a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A value as a CSV cell that spreadsheets show as text, never run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export(session: Session, q: ArchiveQuery, *, chunk: int = 1000) -> Iterator[ArchiveRow]:
    """Every matching row, newest first, fetched in keyset chunks."""
    after: str | None = None
    while True:
        page = search(session, q, after=after, limit=chunk)
        yield from page.rows
        if page.next_cursor is None:
            return
        after = page.next_cursor
