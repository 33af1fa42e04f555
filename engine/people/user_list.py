"""The regency admin's list of accounts, one page at a time: by village (the admins, who have
none, first), then username, optionally one village only. Paged by keyset on (village code,
username), never OFFSET; the cursor names the last row shown by its user id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.letters.archive import MAX_ID
from engine.storage.models import User

PAGE_SIZE = 100
MAX_PAGE = 1000


@dataclass(frozen=True)
class UserPage:
    rows: list[User]
    next_cursor: str | None  # None: this is the last page


def _bad_cursor() -> InvalidInput:
    return InvalidInput(
        "Penanda halaman tidak valid; mulai lagi dari halaman pertama.",
        {"cursor": "Penanda halaman tidak valid"},
    )


def _key(session: Session, cursor: str | None) -> tuple[str, str] | None:
    """The (village code, username) the cursor names; InvalidInput for one we did not make."""
    if not cursor:
        return None
    if len(cursor) > 10 or not cursor.isascii() or not cursor.isdigit():
        raise _bad_cursor()
    ident = int(cursor)
    user = session.get(User, ident) if 1 <= ident <= MAX_ID else None
    if user is None:
        raise _bad_cursor()
    return user.village_code or "", user.username


def users_page(
    session: Session,
    *,
    village_code: str | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> UserPage:
    """One page of accounts after the cursor (of one village when ``village_code`` is given).
    InvalidInput for a cursor this engine did not make or a page size out of range."""
    limit = PAGE_SIZE if limit is None else limit
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(
            f"Jumlah baris per halaman harus 1 sampai {MAX_PAGE}.", {"limit": "Di luar rentang"}
        )
    position = _key(session, after)
    village = func.coalesce(User.village_code, "")
    query = select(User)
    if village_code is not None:
        query = query.where(User.village_code == village_code)
    if position is not None:
        query = query.where(tuple_(village, User.username) > tuple_(*position))
    rows = list(session.scalars(query.order_by(village, User.username).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return UserPage(rows, str(rows[-1].id) if more and rows else None)
