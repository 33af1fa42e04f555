"""Rate limits per client address, counted in the database so that every app
process behind the load balancer sees the same counts.

``hit`` counts exactly, in fixed windows: one upsert per request (used for uploads, which are
rare and costly). ``SlidingWindow`` counts exactly over a window that slides (failed sign-ins).

``SharedCounter`` is for the QR page, where one write per scan would cost more than the page:
each process buffers its counts and adds them to the shared table at least every
``flush_seconds`` (a background thread), and the shared count is read with the letter look-up
in the same statement (``engine.letters.public.scan``). A client is refused once the shared count
plus this process's unwritten count passes the limit. A client that reaches half of its limit is
counted synchronously from then on (every request written before the answer), so near the limit
the count is exact across processes; below it, other processes' counts lag by at most
``flush_seconds``. Counts only grow within a window, so a process that has seen a client over
its limit refuses it for the rest of the window without asking the database again.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.storage.models import RateLimitCounter

_table = RateLimitCounter.__table__
log = logging.getLogger(__name__)
Key = tuple[str, str, int]  # bucket, client, window


@dataclass(frozen=True)
class Limit:
    bucket: str
    per_window: int
    window_seconds: int

    def key(self, client: str, now: float) -> Key:
        return (self.bucket, client[:64], int(now // self.window_seconds))


def window_clock() -> float:
    """Now, for the fixed windows. Looked up on every call, so a test can pin it and keep its
    few requests inside one window (real time may cross a minute between two of them)."""
    return time.time()


def _add(conn: Connection, key: Key, delta: int, keep: int = 1) -> int:
    """Add ``delta`` to the shared counter; the new shared count. Now and then prunes this
    bucket's windows older than ``keep`` windows before this one (other buckets have windows of
    other widths, so their numbers are not comparable)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    bucket, client, window = key
    stmt = dialect.insert(_table).values(bucket=bucket, client=client, window=window, count=delta)
    stmt = stmt.on_conflict_do_update(
        index_elements=["bucket", "client", "window"],
        set_={"count": _table.c["count"] + delta},
    ).returning(_table.c["count"])
    count = conn.execute(stmt).scalar_one()
    if count == delta and window % 16 == 0:  # the first count of a new window: prune old ones
        conn.execute(
            delete(_table).where(_table.c.bucket == bucket, _table.c.window < window - keep)
        )
    return count


def hit(conn: Connection, limit: Limit, client: str, now: float | None = None) -> bool:
    """Count one request exactly; True while the client is within its limit."""
    if conn.dialect.name == "postgresql":
        # A counter lost in a crash is harmless; do not wait for the WAL flush on every scan.
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
    key = limit.key(client, now if now is not None else window_clock())
    return _add(conn, key, 1) <= limit.per_window


@dataclass(frozen=True)
class SlidingWindow:
    """Counts over the last ``slots`` slots of ``slot_seconds`` each (a sliding window of
    slots x slot_seconds): each count lands in the slot of its time, and a read sums the slots
    still inside the window, so old counts drop out by themselves. Counted exactly (one upsert
    per count), for rare events such as failed sign-ins (engine.people.auth)."""

    bucket: str
    slot_seconds: int
    slots: int

    def slot(self, now: float) -> int:
        return int(now // self.slot_seconds)


def window_counts(
    conn: Connection, keys: list[tuple[SlidingWindow, str]], now: float
) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """For each (window, client): its live slots as (slot, count), oldest first; one query."""
    if not keys:
        return {}
    clauses = [
        and_(
            _table.c.bucket == w.bucket,
            _table.c.client == client[:64],
            _table.c.window > w.slot(now) - w.slots,
            _table.c.window <= w.slot(now),
        )
        for w, client in keys
    ]
    rows = conn.execute(
        select(_table.c.bucket, _table.c.client, _table.c.window, _table.c["count"])
        .where(or_(*clauses))
        .order_by(_table.c.window)
    )
    found: dict[tuple[str, str], list[tuple[int, int]]] = {
        (w.bucket, client[:64]): [] for w, client in keys
    }
    for bucket, client, window, count in rows:
        found[(bucket, client)].append((window, count))
    return found


def window_add(conn: Connection, w: SlidingWindow, client: str, now: float) -> int:
    """Count one event in the current slot; the slot's new count."""
    return _add(conn, (w.bucket, client[:64], w.slot(now)), 1, keep=w.slots)


def window_clear(conn: Connection, w: SlidingWindow, client: str) -> None:
    conn.execute(delete(_table).where(_table.c.bucket == w.bucket, _table.c.client == client[:64]))


class SharedCounter:
    """One per app process (see the module doc). ``engine`` writes the buffered counts."""

    def __init__(
        self,
        engine: Engine,
        *,
        flush_seconds: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.engine, self.flush_seconds = engine, flush_seconds
        self.clock = clock or (lambda: window_clock())
        self._lock = threading.Lock()
        self._pending: dict[Key, int] = {}
        self._known: dict[Key, int] = {}  # shared count last read or written, per key
        self._thread: threading.Thread | None = None

    def key(self, limit: Limit, client: str) -> Key:
        return limit.key(client, self.clock())

    def refused_already(self, limit: Limit, key: Key) -> bool:
        """True if this process already saw the shared count over the limit in this window."""
        return self._known.get(key, 0) > limit.per_window

    def count(self, conn: Connection, limit: Limit, key: Key, shared: int | None) -> bool:
        """Count one request, given the shared count read just now (None: not read). True
        while the client is within its limit. May write synchronously on ``conn``."""
        with self._lock:
            if len(self._known) > 50_000:  # many hot clients and no flush: drop past windows
                self._known = {k: v for k, v in self._known.items() if k[2] >= key[2]}
            known = max(self._known.get(key, 0), shared or 0)
            pending = self._pending.get(key, 0) + 1
            if known + pending < max(1, limit.per_window // 2):
                self._known[key] = known
                self._pending[key] = pending
                self._start_flusher()
                return True
            self._pending.pop(key, None)
        total = _add(conn, key, pending)
        with self._lock:
            self._known[key] = max(self._known.get(key, 0), total)
        return total <= limit.per_window

    def flush(self) -> None:
        """Write the buffered counts to the shared table now (the flusher does it each
        ``flush_seconds``; tests call it directly)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            latest: dict[str, int] = {}
            for bucket, _, window in self._known:
                latest[bucket] = max(latest.get(bucket, window), window)
            # Forget past windows: their counts no longer matter.
            self._known = {k: v for k, v in self._known.items() if k[2] >= latest[k[0]]}
        if not pending:
            return
        with self.engine.begin() as conn:
            totals = {key: _add(conn, key, delta) for key, delta in sorted(pending.items())}
        with self._lock:
            for key, total in totals.items():
                self._known[key] = max(self._known.get(key, 0), total)

    def _start_flusher(self) -> None:  # called with self._lock held
        if self._thread is None:
            self._thread = threading.Thread(
                target=_flush_loop, args=(weakref.ref(self),), daemon=True, name="ratelimit-flush"
            )
            self._thread.start()


def _flush_loop(ref: weakref.ref[SharedCounter]) -> None:
    while True:
        counter = ref()
        if counter is None:
            return
        interval = counter.flush_seconds
        del counter
        time.sleep(interval)
        counter = ref()
        if counter is None:
            return
        try:
            counter.flush()
        except Exception:  # noqa: BLE001 - a lost count must not kill the flusher
            log.exception("rate-limit flush failed; buffered counts dropped")
        with counter._lock:
            if not counter._pending:
                counter._thread = None  # the next buffered count starts a new one
                return
        del counter
