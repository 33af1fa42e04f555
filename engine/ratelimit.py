"""Fixed-window rate limits per client address, counted in the database so that every app
process behind the load balancer sees the same counts. One upsert per request: cheap enough
for the /v/ page, and old windows are pruned now and then by whoever opens a new window."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete
from sqlalchemy.dialects import postgresql, sqlite

from engine.models import RateLimitCounter

_table = RateLimitCounter.__table__


@dataclass(frozen=True)
class Limit:
    bucket: str
    per_window: int
    window_seconds: int


def limit_from_env(bucket: str, default_per_minute: int) -> Limit:
    """SURATDESA_RATE_<BUCKET> requests per minute (e.g. SURATDESA_RATE_V=120)."""
    value = os.environ.get(f"SURATDESA_RATE_{bucket.upper()}")
    return Limit(bucket, int(value) if value else default_per_minute, 60)


def hit(conn: Connection, limit: Limit, client: str, now: float | None = None) -> bool:
    """Count one request; True while the client is within its limit."""
    window = int((now if now is not None else time.time()) // limit.window_seconds)
    if conn.dialect.name == "postgresql":
        # A counter lost in a crash is harmless; do not wait for the WAL flush on every scan.
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        dialect = postgresql
    else:
        dialect = sqlite
    stmt = dialect.insert(_table).values(
        bucket=limit.bucket, client=client[:64], window=window, count=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["bucket", "client", "window"],
        set_={"count": _table.c["count"] + 1},
    ).returning(_table.c["count"])
    count = conn.execute(stmt).scalar_one()
    if count == 1 and window % 16 == 0:
        conn.execute(delete(_table).where(_table.c.window < window - 1))
    return count <= limit.per_window
