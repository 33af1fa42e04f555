"""A per-signer limit on wrong signing passphrases (or HSM PINs).

Each signer has one row in ``signer_locks`` (created on their first try). Rules:

- The first ``FREE_TRIES`` wrong tries cost nothing (typos happen); after that each wrong try
  makes the next one wait longer (``delay_after``: 5 s, 10 s, 20 s, ... up to 5 minutes). A try
  that comes too early is refused without looking at the passphrase (``SignTooSoon``: the
  faces answer 429 "wait N seconds"); nothing sleeps, so no process, transaction or event loop
  is held up.
- ``MAX_FAILURES`` wrong tries without a correct one in between (within ``WINDOW``: a wrong try
  older than that is forgotten) lock the signer's key: every try is then refused, the correct
  passphrase included (``SignerLocked``, 423), until the regency admin lifts the lock
  (``unlock_signer``). Only another person can do that: the signer cannot unlock themselves.
- A try is counted before the passphrase is checked (``claim``) and the count is kept when the
  passphrase is wrong, given back when it is right (``succeeded``) or when the key could not be
  opened for another reason (``released``). So tries sent in parallel cannot get more than
  ``MAX_FAILURES`` guesses either: once that many are counted and not yet decided, the next try
  waits.
- Every wrong try (``sign_failed``), the lock (``signer.lock``) and the unlock
  (``signer.unlock``) are audit events.

The state is in the database, so every app process sees it;
``engine.letters.issuance.Issuer.unlock`` applies it, and every face (staff app, JSON API, batches,
the HSM path) signs through that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.dates import format_wib
from engine.errors import Forbidden, InvalidInput
from engine.people.users import Actor, audit_admin
from engine.storage import audit
from engine.storage.models import SignerLock, User
from engine.trust.signing import SigningError, WrongPassphrase

MAX_FAILURES = 10
FREE_TRIES = 2
MAX_DELAY = 300  # seconds
WINDOW = timedelta(hours=24)
UNLOCKER = "admin kabupaten (Diskominfo)"


def delay_after(failures: int) -> int:
    """Seconds the next try must wait after this many wrong tries in a row."""
    if failures <= FREE_TRIES:
        return 0
    return min(5 * 2 ** (failures - FREE_TRIES - 1), MAX_DELAY)


class SignerLocked(SigningError):
    """The signer's key is locked after too many wrong passphrases; the admin lifts it."""

    def __init__(self, failures: int, locked_at: datetime | None, *, just_now: bool = False):
        when = f" sejak {format_wib(locked_at)}" if locked_at else ""
        first = (
            f"Kata sandi penandatangan salah {failures} kali: kunci tanda tangan Anda sekarang "
            "dikunci."
            if just_now
            else f"Kunci tanda tangan Anda dikunci{when} setelah {failures} kali salah kata sandi."
        )
        super().__init__(
            f"{first} Tidak ada yang ditandatangani. Hanya {UNLOCKER} yang dapat membukanya; "
            "hubungi mereka."
        )
        self.failures = failures
        self.locked_at = locked_at


class SignTooSoon(SigningError):
    """A try that came before the wait after the last wrong passphrase was over."""

    def __init__(self, retry_after: int, tries_left: int) -> None:
        super().__init__(
            f"Terlalu cepat setelah kata sandi yang salah: coba lagi dalam {retry_after} detik. "
            f"Sisa percobaan sebelum kunci tanda tangan dikunci: {tries_left}."
        )
        self.retry_after = retry_after
        self.tries_left = tries_left


class CountedWrongPassphrase(WrongPassphrase):
    """A wrong passphrase, with what the signer has left."""

    def __init__(self, tries_left: int, retry_after: int) -> None:
        SigningError.__init__(self, "Kata sandi penandatangan salah")
        self.tries_left = tries_left
        self.retry_after = retry_after
        wait = f" Coba lagi dalam {retry_after} detik." if retry_after else ""
        self.hint = (
            f"Sisa percobaan: {tries_left} kali; setelah itu kunci tanda tangan Anda dikunci "
            f"sampai dibuka oleh {UNLOCKER}.{wait}"
        )

    def __str__(self) -> str:
        return f"Kata sandi penandatangan salah. {self.hint}"


@dataclass(frozen=True)
class SignerStatus:
    failures: int
    tries_left: int
    locked_at: datetime | None
    wait_seconds: int

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


def _row(session: Session, user_id: int) -> SignerLock:
    """The signer's row, created if missing, locked for this transaction."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(SignerLock.__table__)
        .values(user_id=user_id, failures=0)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    return session.execute(
        select(SignerLock).where(SignerLock.user_id == user_id).with_for_update()
    ).scalar_one()


def _forget_old(row: SignerLock, now: datetime) -> None:
    if row.locked_at is None and row.last_failure_at and now - row.last_failure_at > WINDOW:
        row.failures = 0
        row.next_try_at = None


def status(session: Session, user_id: int, now: datetime) -> SignerStatus:
    """What the sign page tells the signer before they type (read only)."""
    row = session.get(SignerLock, user_id)
    if row is None:
        return SignerStatus(0, MAX_FAILURES, None, 0)
    failures = row.failures
    if row.locked_at is None and row.last_failure_at and now - row.last_failure_at > WINDOW:
        failures = 0
    wait = 0
    if row.locked_at is None and failures and row.next_try_at and row.next_try_at > now:
        wait = _seconds(row.next_try_at - now)
    return SignerStatus(failures, max(MAX_FAILURES - failures, 0), row.locked_at, wait)


def _seconds(delta: timedelta) -> int:
    return max(1, int(-(-delta.total_seconds() // 1)))


def claim(session: Session, user_id: int, now: datetime) -> None:
    """Count a try before the passphrase is checked, or refuse it: locked, or too early."""
    row = _row(session, user_id)
    _forget_old(row, now)
    if row.locked_at is not None:
        raise SignerLocked(row.failures, row.locked_at)
    if row.next_try_at is not None and row.next_try_at > now:
        raise SignTooSoon(_seconds(row.next_try_at - now), MAX_FAILURES - row.failures)
    if row.failures >= MAX_FAILURES:  # that many tries are being checked right now
        raise SignTooSoon(2, 0)
    row.failures += 1
    session.flush()


def succeeded(session: Session, user_id: int) -> None:
    """The passphrase was right: the count starts again."""
    row = _row(session, user_id)
    if row.locked_at is None:  # a lock set meanwhile by a parallel wrong try stays
        row.failures = 0
        row.next_try_at = None
    session.flush()


def released(session: Session, user_id: int) -> None:
    """The key could not be opened for another reason (no token, expired certificate): the
    try was not a guess, so it is given back."""
    row = _row(session, user_id)
    if row.locked_at is None and row.failures > 0:
        row.failures -= 1
    session.flush()


def failed(
    session: Session, actor: Actor, now: datetime, *, request_id: int | None = None
) -> SigningError:
    """A wrong passphrase (already counted by ``claim``): set the wait, lock at the limit, audit
    it, and return the error to raise."""
    assert actor.user_id is not None
    row = _row(session, actor.user_id)
    row.last_failure_at = now
    failures = row.failures
    tries_left = max(MAX_FAILURES - failures, 0)
    audit.append(
        session,
        actor_id=actor.user_id,
        actor=actor.username,
        role=actor.role,
        action="sign_failed",
        request_id=request_id,
        reason="kata sandi salah",
        detail={"failures": failures, "tries_left": tries_left},
    )
    if row.locked_at is not None:
        return SignerLocked(failures, row.locked_at)
    if failures >= MAX_FAILURES:
        row.locked_at = now
        row.next_try_at = None
        audit.append(
            session,
            actor_id=actor.user_id,
            actor=actor.username,
            role=actor.role,
            action="signer.lock",
            request_id=request_id,
            reason=f"kata sandi salah {failures} kali",
            detail={"user_id": actor.user_id, "failures": failures},
        )
        session.flush()
        return SignerLocked(failures, now, just_now=True)
    wait = delay_after(failures)
    row.next_try_at = now + timedelta(seconds=wait) if wait else None
    session.flush()
    return CountedWrongPassphrase(tries_left, wait)


def unlock_signer(session: Session, by: Actor, user: User, reason: str = "") -> int:
    """Lift a signer's lock (regency admin only, never the signer themself); audited.
    Returns the number of wrong tries that had been counted."""
    if by.role != "admin" or by.user_id is None:
        raise Forbidden(f"Hanya {UNLOCKER} yang dapat membuka kunci tanda tangan.")
    if by.user_id == user.id:
        raise Forbidden("Kunci tanda tangan dibuka oleh orang lain, bukan pemiliknya.")
    row = session.execute(
        select(SignerLock).where(SignerLock.user_id == user.id).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.locked_at is None:
        raise InvalidInput(f"Kunci tanda tangan {user.username} tidak sedang dikunci.")
    failures = row.failures
    locked_at = row.locked_at
    row.failures = 0
    row.next_try_at = None
    row.last_failure_at = None
    row.locked_at = None
    session.flush()
    audit_admin(
        session,
        by,
        "signer.unlock",
        {
            "user_id": user.id,
            "username": user.username,
            "failures": failures,
            "locked_at": locked_at.isoformat(),
        },
        reason=reason.strip() or None,
    )
    return failures


def locked_users(session: Session) -> dict[int, SignerLock]:
    """Signers whose key is locked now, by user id (the admin's users page)."""
    return {
        row.user_id: row
        for row in session.scalars(select(SignerLock).where(SignerLock.locked_at.is_not(None)))
    }
