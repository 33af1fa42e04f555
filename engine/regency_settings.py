"""Regency-wide settings the regency admin sets once for every village: the letterhead's
contact lines and emblem, the numbering mode, the classification codes (see the modules that
read them). Stored one row per key in ``regency_settings``; a missing key reads as its
default. Only the regency admin (or the command line) writes them, and every write appends
its audit event in the same transaction. A file (the emblem) is audited by its SHA-256."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import Forbidden
from engine.people.users import SYSTEM_ROLE, Actor, audit_admin
from engine.storage.models import RegencySetting
from engine.timeutil import now_utc

_MISSING = object()


def may_change(actor: Actor) -> bool:
    return actor.role in ("admin", SYSTEM_ROLE)


def require_change(actor: Actor) -> None:
    if not may_change(actor):
        raise Forbidden("Hanya admin kabupaten yang mengubah pengaturan kabupaten.")


def get(session: Session, key: str, default: Any = None) -> Any:
    row = session.get(RegencySetting, key)
    return default if row is None or row.value is None else row.value


def get_blob(session: Session, key: str) -> bytes | None:
    row = session.get(RegencySetting, key)
    return None if row is None else row.blob


def put(session: Session, by: Actor, key: str, value: Any, *, reason: str | None = None) -> None:
    """Set a JSON value (None clears it); audited with the old and the new value."""
    require_change(by)
    row = _row(session, key)
    old = row.value
    if old == value:
        return
    row.value, row.updated_at, row.updated_by_id = value, now_utc(), by.user_id
    audit_admin(
        session,
        by,
        "regency_setting_changed",
        {"key": key, "old": old, "new": value},
        reason=reason,
    )


def put_blob(session: Session, by: Actor, key: str, data: bytes | None) -> None:
    """Set (or with None, clear) a file; audited with the SHA-256 and size of both."""
    require_change(by)
    row = _row(session, key)
    old, row.blob = row.blob, data
    row.updated_at, row.updated_by_id = now_utc(), by.user_id
    audit_admin(
        session,
        by,
        "regency_setting_changed",
        {"key": key, "old": _fingerprint(old), "new": _fingerprint(data)},
    )


def _row(session: Session, key: str) -> RegencySetting:
    row = session.get(RegencySetting, key, with_for_update=True)
    if row is None:
        row = RegencySetting(key=key, updated_at=now_utc())
        session.add(row)
    return row


def _fingerprint(data: bytes | None) -> dict | None:
    if data is None:
        return None
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
