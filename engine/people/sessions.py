"""Server-side staff sessions. A sign-in makes a row in `sessions`; the browser holds only the
random session id (256 bits), stored here as its SHA-256, so a copy of the database does not
yield usable cookies. Sign-out ends the row at once, so a copied cookie stops working; a password
change ends the user's other sessions; disabling an account ends all of them. All state is in
the database: any app process can serve, end or refuse any session."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.storage.models import StaffSession, User
from engine.timeutil import now_utc

LIFETIME = timedelta(hours=8)  # one office day, from sign-in
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user_id: int, *, now: datetime | None = None) -> str:
    """A new session for the user; the raw id to put in the cookie (never stored)."""
    now = now or now_utc()
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_sha256=token_sha256(token),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + LIFETIME,
        )
    )
    session.flush()
    return token


def resolve(session: Session, token: str, *, now: datetime | None = None) -> User | None:
    """The signed-in user of a live session; None if the session is unknown, ended, expired
    or its account disabled."""
    now = now or now_utc()
    row = session.scalar(
        select(StaffSession).where(StaffSession.token_sha256 == token_sha256(token))
    )
    if row is None or row.ended_at is not None or row.expires_at <= now or not row.user.active:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        session.execute(
            update(StaffSession).where(StaffSession.id == row.id).values(last_seen_at=now)
        )
    return row.user


def end(session: Session, token: str, reason: str = "signout") -> bool:
    """End one session (sign-out); True if it was live."""
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.token_sha256 == token_sha256(token), StaffSession.ended_at.is_(None))
        .values(ended_at=now_utc(), ended_reason=reason)
    )
    return bool(result.rowcount)


def end_all(session: Session, user_id: int, reason: str, *, keep: str | None = None) -> int:
    """End every live session of a user, except the one whose raw id is `keep`; how many."""
    query = update(StaffSession).where(
        StaffSession.user_id == user_id, StaffSession.ended_at.is_(None)
    )
    if keep:
        query = query.where(StaffSession.token_sha256 != token_sha256(keep))
    result = session.execute(query.values(ended_at=now_utc(), ended_reason=reason))
    return int(result.rowcount or 0)
