"""Delivering the outbox after commit: claim, send, record, retry.

One pass (`Dispatcher.run_once`):

1. **Claim** up to a batch of due notices in a short transaction: "pending" ones whose
   ``next_attempt_at`` has come, and "sending" ones whose claim lapsed (a dispatcher that died
   mid-send). On PostgreSQL the candidates are read ``FOR UPDATE SKIP LOCKED``, so parallel
   dispatchers take disjoint rows without waiting; on SQLite every write transaction starts with
   ``BEGIN IMMEDIATE`` (one writer at a time, across processes too). Each claim is an
   ``UPDATE ... WHERE status and attempts are what was read``, so a row is claimed once.
2. **Send** each claimed notice outside any transaction (a slow SMTP server holds no lock).
3. **Record** the attempt (`NoticeAttempt`: time, transport, worker, outcome, error text) and
   the notice's new state: "sent"; or back to "pending" with the next attempt after
   ``retry_seconds * 2**(attempts - 1)`` (at most an hour); or "failed" after ``max_attempts``,
   or at once when its transport is not configured in this deployment.

`BackgroundDispatcher` runs passes in a thread of the web process: woken right after any commit
that wrote deliverable notices (SQLAlchemy's ``after_commit`` on the session), otherwise every
``poll_seconds`` or when the next retry is due. `suratdesa notify run` runs the same passes in a
separate worker process.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.notify.outbox import INAPP, PENDING_FLAG
from engine.notify.transports import Outgoing, Transport, transports_from_settings
from engine.storage.db import is_postgres, transaction
from engine.storage.models import Notice, NoticeAttempt
from engine.timeutil import now_utc

log = logging.getLogger("suratdesa.notify")

BATCH = 20
LEASE = timedelta(minutes=5)  # longer than any transport's timeout
MAX_BACKOFF = timedelta(hours=1)
ERROR_MAX = 2000


@dataclass
class PassReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    next_due: datetime | None = None  # the soonest pending notice after this pass
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Claimed:
    id: int
    transport: str
    outgoing: Outgoing


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Dispatcher:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        transports: dict[str, Transport] | None = None,
        *,
        worker: str | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.transports = transports_from_settings(settings) if transports is None else transports
        self.worker = worker or worker_name()
        self.clock = clock

    def run_once(self, *, now: datetime | None = None, limit: int = BATCH) -> PassReport:
        """Claim and deliver what is due at ``now`` (default: the clock)."""
        now = now or self.clock()
        report = PassReport()
        claimed = self._claim(now, limit)
        report.claimed = len(claimed)
        for item in claimed:
            outcome = self._deliver(item)
            if outcome == "sent":
                report.sent += 1
            elif outcome == "failed":
                report.failed += 1
            elif outcome == "pending":
                report.retrying += 1
        with transaction(self.factory) as session:
            report.next_due = session.scalar(
                select(func.min(Notice.next_attempt_at)).where(Notice.status == "pending")
            )
        return report

    def _claim(self, now: datetime, limit: int) -> list[_Claimed]:
        due = or_(
            and_(Notice.status == "pending", Notice.next_attempt_at <= now),
            and_(Notice.status == "sending", Notice.claimed_until < now),
        )
        claimed: list[_Claimed] = []
        with transaction(self.factory) as session:
            query = (
                select(Notice.id, Notice.status, Notice.attempts)
                .where(Notice.transport != INAPP, due)
                .order_by(Notice.id)
                .limit(limit)
            )
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            for notice_id, status, attempts in session.execute(query).all():
                taken = session.execute(
                    update(Notice)
                    .where(
                        Notice.id == notice_id,
                        Notice.status == status,
                        Notice.attempts == attempts,
                    )
                    .values(status="sending", claimed_by=self.worker, claimed_until=now + LEASE)
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:
                    notice = session.get(Notice, notice_id)
                    claimed.append(_Claimed(notice.id, notice.transport, self._outgoing(notice)))
        return claimed

    def _outgoing(self, notice: Notice) -> Outgoing:
        return Outgoing(
            id=notice.id,
            kind=notice.kind,
            audience=notice.audience,
            address=notice.address or "",
            subject=notice.subject,
            text=notice.body,
            link=f"{self.settings.public_url}{notice.link}" if notice.link else None,
            request_id=notice.request_id,
            village_code=notice.village_code,
            created_at=notice.created_at.isoformat(),
        )

    def _deliver(self, item: _Claimed) -> str:
        transport = self.transports.get(item.transport)
        error: str | None = None
        retry = True
        if transport is None:
            error, retry = f"transport {item.transport!r} is not configured", False
        else:
            try:
                transport.send(item.outgoing)
            except Exception as exc:  # every failure is recorded; the notice is retried
                error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
        return self._finish(item, error, retry)

    def _finish(self, item: _Claimed, error: str | None, retry: bool) -> str:
        now = self.clock()
        with transaction(self.factory) as session:
            session.add(
                NoticeAttempt(
                    notice_id=item.id,
                    attempted_at=now,
                    transport=item.transport,
                    worker=self.worker,
                    outcome="error" if error else "sent",
                    error=error,
                )
            )
            notice = session.get(Notice, item.id, with_for_update=True)
            if notice.status != "sending" or notice.claimed_by != self.worker:
                return "lost"  # our claim lapsed and another dispatcher took it over
            notice.attempts += 1
            notice.claimed_by = notice.claimed_until = None
            notice.last_error = error
            if error is None:
                notice.status, notice.sent_at, notice.next_attempt_at = "sent", now, None
            elif not retry or notice.attempts >= self.settings.notify_max_attempts:
                notice.status, notice.next_attempt_at = "failed", None
                log.warning("notice %s failed for good: %s", notice.id, error)
            else:
                notice.status = "pending"
                notice.next_attempt_at = now + backoff(self.settings, notice.attempts)
            return notice.status


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` failed ones: doubling, at most an hour."""
    seconds = settings.notify_retry_seconds * 2 ** min(attempts - 1, 30)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


# --------------------------------------------------------------------------- in the web process

_running: weakref.WeakSet[BackgroundDispatcher] = weakref.WeakSet()


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(PENDING_FLAG, False):
        for dispatcher in list(_running):
            dispatcher.wake()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(PENDING_FLAG, None)


class BackgroundDispatcher:
    """Passes of a `Dispatcher` in a daemon thread until `stop`."""

    def __init__(self, dispatcher: Dispatcher, poll_seconds: float) -> None:
        self.dispatcher = dispatcher
        self.poll_seconds = max(0.05, poll_seconds)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-dispatcher", daemon=True)
        self.passes = 0

    def start(self) -> BackgroundDispatcher:
        _running.add(self)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        _running.discard(self)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self.poll_seconds
            try:
                report = self.dispatcher.run_once()
                self.passes += 1
                if report.claimed >= BATCH:
                    continue  # more may be due
                if report.next_due is not None:
                    until = (report.next_due - self.dispatcher.clock()).total_seconds()
                    wait = min(wait, max(0.05, until))
            except Exception:  # the database may be away for a moment: try again later
                log.exception("notice dispatch pass failed")
            self._wake.wait(wait)
