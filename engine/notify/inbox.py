"""The signed-in user's own in-app notices, one page at a time: newest first, paged by keyset on
(created_at, id) with the archive's cursor form, never OFFSET. Writing and marking notices read
stays in :mod:`engine.notify.outbox`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.letters.archive import check_cursor, cursor_at
from engine.notify.outbox import INAPP
from engine.storage.models import Notice

PAGE_SIZE = 50
MAX_PAGE = 500


@dataclass(frozen=True)
class NoticePage:
    rows: list[Notice]
    next_cursor: str | None  # None: this is the last page


def notices_page(
    session: Session, user_id: int, *, after: str | None = None, limit: int | None = None
) -> NoticePage:
    """One page of the user's own in-app notices, newest first, after the cursor; InvalidInput
    for a cursor this engine did not make or a page size out of range. ``limit`` None:
    PAGE_SIZE."""
    limit = PAGE_SIZE if limit is None else limit
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(
            f"Jumlah baris per halaman harus 1 sampai {MAX_PAGE}.", {"limit": "Di luar rentang"}
        )
    position = check_cursor(after)
    query = select(Notice).where(Notice.user_id == user_id, Notice.transport == INAPP)
    if position is not None:
        query = query.where(tuple_(Notice.created_at, Notice.id) < tuple_(*position))
    query = query.order_by(Notice.created_at.desc(), Notice.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return NoticePage(rows, cursor_at(last.created_at, last.id) if last else None)
