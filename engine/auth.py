"""Staff sign-in: password check with lock-out after repeated failures, and password change.
One message for a wrong password and an unknown user, so sign-in does not reveal usernames."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.db import transaction
from engine.errors import InvalidInput, SuratDesaError
from engine.models import User
from engine.timeutil import now_utc
from engine.users import Actor, _hasher, check_password

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD = 8
WRONG = "Nama pengguna atau kata sandi salah."
_DUMMY_HASH = _hasher.hash("timing-equaliser")


class SignInFailed(SuratDesaError):
    pass


def sign_in(
    factory: sessionmaker[Session], username: str, password: str, *, now: datetime | None = None
) -> Actor:
    """The signed-in staff member; SignInFailed otherwise. Runs its own transaction so that a
    failure is counted (committed) even though the caller sees an exception."""
    failure: SignInFailed | None = None
    with transaction(factory) as session:
        try:
            return Actor.of(_check(session, username, password, now or now_utc()))
        except SignInFailed as exc:
            failure = exc
    raise failure


def _check(session: Session, username: str, password: str, now: datetime) -> User:
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None or not user.active or not user.password_hash:
        check_password(User(password_hash=_DUMMY_HASH), password)  # same cost as a real check
        raise SignInFailed(WRONG)
    if user.locked_until is not None and user.locked_until > now:
        raise SignInFailed(
            "Terlalu banyak percobaan masuk yang gagal. Akun dikunci sementara; "
            "coba lagi 15 menit lagi atau hubungi admin kabupaten."
        )
    if not check_password(user, password):
        # Atomic increment: two processes counting the same attack do not lose a failure.
        failures = session.scalar(
            update(User)
            .where(User.id == user.id)
            .values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
        )
        if failures is not None and failures >= MAX_FAILURES:
            session.execute(
                update(User)
                .where(User.id == user.id)
                .values(locked_until=now + LOCK_FOR, failed_logins=0)
            )
        raise SignInFailed(WRONG)
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    return user


def change_password(session: Session, user_id: int, current: str, new: str, repeat: str) -> None:
    user = session.get(User, user_id)
    errors: dict[str, str] = {}
    if user is None or not check_password(user, current):
        errors["current"] = "Kata sandi lama salah."
    if len(new) < MIN_PASSWORD:
        errors["new"] = f"Kata sandi baru minimal {MIN_PASSWORD} karakter."
    elif new == current:
        errors["new"] = "Kata sandi baru harus berbeda dari yang lama."
    if new != repeat:
        errors["repeat"] = "Ulangi kata sandi baru dengan sama persis."
    if errors:
        raise InvalidInput("Kata sandi belum diganti.", errors)
    user.password_hash = _hasher.hash(new)
    user.password_changed_at = now_utc()
    session.flush()
