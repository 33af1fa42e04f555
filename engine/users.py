"""Users, roles, API tokens and passwords. Tokens are random (256 bits) and stored as SHA-256:
a stolen database does not yield usable tokens. Passwords use argon2id."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound
from engine.models import ApiToken, User, Village
from engine.timeutil import now_utc

STAFF_ROLES = ("operator", "kasi", "sekdes", "head")
ALL_ROLES = (*STAFF_ROLES, "admin")
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Actor:
    """Who is acting: enough to check role and village without another query."""

    user_id: int
    username: str
    full_name: str
    role: str
    village_code: str | None  # None only for the regency admin

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.id, user.username, user.full_name, user.role, user.village_code)


def create_user(
    session: Session,
    *,
    username: str,
    full_name: str,
    role: str,
    village_code: str | None,
    nip: str | None = None,
    password: str | None = None,
) -> User:
    if role not in ALL_ROLES:
        raise InvalidInput(f"Peran tidak dikenal: {role!r} (pilihan: {', '.join(ALL_ROLES)})")
    if role == "admin":
        village_code = None
    elif village_code is None or session.get(Village, village_code) is None:
        raise InvalidInput(f"Kode desa/kelurahan tidak dikenal: {village_code!r}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput(f"Nama pengguna sudah dipakai: {username!r}")
    user = User(
        username=username,
        full_name=full_name,
        role=role,
        village_code=village_code,
        nip=nip,
        password_hash=_hasher.hash(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"Pengguna tidak ditemukan: {username!r}")
    return user


def issue_token(session: Session, user: User) -> str:
    token = "sd_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=_sha256(token), created_at=now_utc()))
    session.flush()
    return token


def actor_for_token(session: Session, token: str) -> Actor | None:
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_sha256 == _sha256(token), ApiToken.revoked.is_(False))
    )
    if row is None or not row.user.active:
        return None
    return Actor.of(row.user)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
