"""Staff sign-in with throttling, and password change.

Sign-in never says which part was wrong and never locks anyone out for good:

- One answer (`SignInFailed(WRONG)`) for an unknown name, a wrong password, a disabled account
  and a throttled attempt, after the same work: every attempt runs exactly one argon2 check
  (against a dummy hash when there is no account, or while throttled), and the face adds a
  constant floor (`FAILURE_FLOOR`) so the small differences left do not show in the time.
- Failures are counted in the database (engine.ratelimit sliding windows, 10-second slots over
  15 minutes), shared by every app process, under three keys: the (name, address) pair, the
  client address, and the name alone. The name is counted whether or not an account has it, so
  the counts say nothing about which names exist. Past a key's allowance, the next check waits a
  delay that doubles with each further failure (10 s, 20 s, 40 s ... at most 15 minutes) after
  the last one; an attempt inside that delay is refused without checking the password and is
  not counted, and failures older than 15 minutes drop out, so every throttle lifts by itself.
- The per-name key is what slows a guesser spread over many addresses; it does not apply from
  an address where that account signed in successfully in the last 30 days, so an attacker
  cannot keep a person out of their own account from their usual office.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import InvalidInput, SuratDesaError
from engine.people import sessions
from engine.people.users import MIN_PASSWORD, Actor, hash_password, revoke_tokens, verify_hash
from engine.ratelimit import SlidingWindow, window_add, window_clear, window_counts
from engine.storage.db import transaction
from engine.storage.models import User
from engine.timeutil import now_utc

WRONG = (
    "Nama pengguna atau kata sandi salah. Bila keduanya sudah benar, mungkin terlalu banyak "
    "percobaan yang gagal: tunggu beberapa menit lalu coba lagi."
)
# Every failed sign-in is answered no sooner than this many seconds after it arrived (the face
# waits without holding a thread); above one argon2 check on a busy server.
FAILURE_FLOOR = 0.5
_DUMMY_HASH = hash_password("timing-equaliser")

SLOT = 10  # seconds
WINDOW_SLOTS = 90  # 15 minutes
MAX_DELAY = SLOT * WINDOW_SLOTS


@dataclass(frozen=True)
class Rule:
    window: SlidingWindow
    allowance: int  # failures inside the window before any delay


PAIR = Rule(SlidingWindow("signin_pair", SLOT, WINDOW_SLOTS), 5)
ADDRESS = Rule(SlidingWindow("signin_addr", SLOT, WINDOW_SLOTS), 30)
NAME = Rule(SlidingWindow("signin_name", SLOT, WINDOW_SLOTS), 50)
# Successful sign-ins per (name, address), one-day slots kept 30 days.
KNOWN = SlidingWindow("signin_ok", 86_400, 30)


class SignInFailed(SuratDesaError):
    pass


@dataclass(frozen=True)
class SignedIn:
    actor: Actor
    session_token: str  # the new session's raw id, for the cookie


def _digest(*parts: str) -> str:
    """Names are counted by digest: the table never holds what someone typed as a name."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def _keys(username: str, client: str) -> dict[Rule, str]:
    name = username.strip().casefold()
    return {PAIR: _digest("pair", name, client), ADDRESS: client[:64], NAME: _digest("name", name)}


def delay_after(failures: int, allowance: int) -> float:
    """Seconds a key waits after its last failure: 0 within the allowance, then doubling."""
    if failures < allowance:
        return 0.0
    return float(min(SLOT * 2 ** min(failures - allowance, 32), MAX_DELAY))


def _throttled(slots: list[tuple[int, int]], rule: Rule, now: float) -> bool:
    failures = sum(count for _, count in slots)
    if not slots or failures < rule.allowance:
        return False
    last = (slots[-1][0] + 1) * SLOT  # the end of the newest slot with a failure
    return now < last + delay_after(failures, rule.allowance)


def sign_in(
    factory: sessionmaker[Session],
    username: str,
    password: str,
    *,
    client: str,
    clock: Callable[[], float] = time.time,
) -> SignedIn:
    """Check a sign-in from the client address `client` and start a session; SignInFailed
    (always WRONG) otherwise. Blocking and CPU-heavy (argon2): call it from a worker thread.
    The password is checked between two short transactions, never inside one."""
    now = clock()
    keys = _keys(username, client)
    with transaction(factory) as session:
        user = session.scalar(select(User).where(User.username == username.strip()))
        conn = session.connection()
        counts = window_counts(conn, [(r.window, k) for r, k in keys.items()], now)
        known = window_counts(conn, [(KNOWN, keys[PAIR])], now)[(KNOWN.bucket, keys[PAIR])]
        throttled = any(
            _throttled(counts[(rule.window.bucket, key)], rule, now)
            for rule, key in keys.items()
            if not (rule is NAME and known)
        )
        target = _DUMMY_HASH
        if user is not None and user.active and user.password_hash and not throttled:
            target = user.password_hash
        user_id = user.id if user is not None else None
    ok = verify_hash(target, password) and target is not _DUMMY_HASH
    with transaction(factory) as session:
        conn = session.connection()
        if ok:
            user = session.get(User, user_id)
            if user is not None and user.active and user.password_hash == target:
                window_clear(conn, PAIR.window, keys[PAIR])
                window_add(conn, KNOWN, keys[PAIR], now)
                token = sessions.start(session, user.id, now=now_utc())
                return SignedIn(Actor.of(user), token)
        if not throttled:
            for rule, key in keys.items():
                window_add(conn, rule.window, key, now)
    raise SignInFailed(WRONG)


def floor_remaining(started: float, now: float | None = None) -> float:
    """Seconds a face still waits before answering a failed sign-in that began at `started`
    (time.monotonic())."""
    now = time.monotonic() if now is None else now
    return max(0.0, started + FAILURE_FLOOR - now)


def change_password(
    factory: sessionmaker[Session],
    user_id: int,
    current: str,
    new: str,
    repeat: str,
    *,
    keep_session: str | None = None,
) -> None:
    """Change a password. Ends every other session of the user (all but `keep_session`, the
    raw id of the session making the change) and revokes all their API tokens. Blocking and
    CPU-heavy (two argon2 runs, outside any transaction): call it from a worker thread."""
    with transaction(factory) as session:
        stored = session.scalar(select(User.password_hash).where(User.id == user_id))
    errors: dict[str, str] = {}
    if not verify_hash(stored, current):
        errors["current"] = "Kata sandi lama salah."
    if len(new) < MIN_PASSWORD:
        errors["new"] = f"Kata sandi baru minimal {MIN_PASSWORD} karakter."
    elif new == current:
        errors["new"] = "Kata sandi baru harus berbeda dari yang lama."
    if new != repeat:
        errors["repeat"] = "Ulangi kata sandi baru dengan sama persis."
    if errors:
        raise InvalidInput("Kata sandi belum diganti.", errors)
    new_hash = hash_password(new)
    with transaction(factory) as session:
        user = session.get(User, user_id)
        if user is None or user.password_hash != stored:  # changed meanwhile elsewhere
            raise InvalidInput("Kata sandi belum diganti.", {"current": "Kata sandi lama salah."})
        user.password_hash = new_hash
        user.password_changed_at = now_utc()
        revoke_tokens(session, user_id)
        sessions.end_all(session, user_id, "password", keep=keep_session)
        session.flush()
