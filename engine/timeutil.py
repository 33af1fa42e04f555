"""Clock helpers. Stored times are UTC; letters show Asia/Jakarta (WIB)."""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> datetime:
    return datetime.now(UTC)
