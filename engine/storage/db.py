"""Database engine and sessions. SQLite is the embedded default; PostgreSQL in production.

SQLite runs in WAL mode with foreign keys on, and every transaction starts with BEGIN IMMEDIATE so
that two writers queue for the lock up front instead of failing half-way when one upgrades a read
lock. Within a process, transactions on one SQLite file also queue first come, first served on a
ticket lock: SQLite's own busy handler polls with growing sleeps and no order, so under load one
writer could lose every race until its busy timeout ran out ("database is locked") while others
went ahead. PostgreSQL relies on row locks (SELECT ... FOR UPDATE) taken by the code that needs
them.

:func:`read_only` is a transaction that only reads: on SQLite it begins DEFERRED and does not
queue for the write lock (WAL readers see a consistent snapshot while a writer works), so work
that reads, then computes for a while, then writes briefly (issuing a letter) holds the lock only
for the write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

READ_ONLY = "suratdesa_read_only"  # execution option set by read_only()


class FairLock:
    """A first-come, first-served lock (tickets), re-entrant for the thread that holds it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket:
                self._cond.wait()
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                return  # not ours (a transaction that ended on another thread's connection)
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._cond.notify_all()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        queue = FairLock()

        @event.listens_for(engine, "connect")
        def _sqlite_on_connect(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # let us emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN DEFERRED")  # a reader: no write lock, no queue
                return
            queue.acquire()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                queue.release()
                raise
            conn.info["suratdesa_queued"] = True

        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _sqlite_end(conn) -> None:
            if conn.info.pop("suratdesa_queued", False):
                queue.release()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(make_engine(url), expire_on_commit=False)


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    if url is None:
        from engine.config import get_settings

        url = get_settings().database_url
    return _factory(url)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that only reads (see the module docstring); loaded objects stay usable."""
    with factory() as session, session.begin():
        session.connection(execution_options={READ_ONLY: True})
        yield session


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
