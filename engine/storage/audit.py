"""The append-only, hash-chained audit log.

Each event's hash is SHA-256 over the previous hash and a canonical JSON of the event. Appends
lock the single `audit_head` row, so concurrent transactions append in commit order and the chain
never forks. Callers append as the last step of their transaction to keep that lock short.

The database refuses UPDATE, DELETE and TRUNCATE on `audit_events` and lets `audit_head` only
advance onto the next event (migrations 0001 and 0007). Someone with the table owner's rights
can still switch those triggers off, so the chain is also anchored outside the database:
a checkpoint (last id, last hash, count, time, deployment URL) signed by the server's audit
anchor key and timestamped by the TSA (RFC 3161) is written as a file under
``Settings.audit_dir``, never overwritten, and published under ``/pki/audit/``.
`verify_log` checks the chain and every checkpoint, so a wipe or a chain recomputed after an edit
no longer verifies as intact.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine.storage.models import AuditEvent, AuditHead
from engine.timeutil import now_utc

GENESIS_HASH = "0" * 64


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "id": event.id,
        "request_id": event.request_id,
        "actor_id": event.actor_id,
        "actor": event.actor,
        "role": event.role,
        "action": event.action,
        "from": event.from_state,
        "to": event.to_state,
        "reason": event.reason,
        "detail": event.detail or {},
        "at": _timestamp(event.created_at),
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _timestamp(at: datetime) -> str:
    # SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones in its session zone.
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def event_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(event)).hexdigest()


def append(
    session: Session,
    *,
    actor_id: int | None,
    actor: str,
    role: str,
    action: str,
    request_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    detail: dict | None = None,
) -> AuditEvent:
    head = _locked_head(session)
    event = AuditEvent(
        id=head.last_id + 1,
        request_id=request_id,
        actor_id=actor_id,
        actor=actor,
        role=role,
        action=action,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        detail=detail or {},
        created_at=now_utc(),
        prev_hash=head.last_hash,
    )
    event.hash = event_hash(head.last_hash, event)
    session.add(event)
    # The event row first: the database lets the head advance only onto an existing event
    # whose prev_hash is the old head (migration 0007), so the two writes are flushed in order.
    session.flush()
    head.last_id = event.id
    head.last_hash = event.hash
    session.flush()
    # Notices this event calls for (new work in a queue, a request returned, a letter ready)
    # go into the outbox in this same transaction, so a rollback leaves none; they are
    # delivered after commit (engine.notify). Never raises.
    from engine.notify.outbox import on_audit_event

    on_audit_event(session, event)
    return event


def append_many(session: Session, entries: Sequence[dict]) -> list[AuditEvent]:
    """Append several events (each a dict of :func:`append`'s keyword arguments) in order,
    exactly as that many :func:`append` calls would chain them, with fewer round trips: the
    events in one insert, the head advanced one event at a time in one batch of updates (the
    database still checks every step, migration 0007), and the notices of all the events
    written by one hook call (``engine.notify.outbox.on_audit_events``)."""
    if not entries:
        return []
    head = _locked_head(session)
    last_id, last_hash = head.last_id, head.last_hash
    events = []
    for entry in entries:
        event = AuditEvent(
            id=last_id + 1,
            request_id=entry.get("request_id"),
            actor_id=entry["actor_id"],
            actor=entry["actor"],
            role=entry["role"],
            action=entry["action"],
            from_state=entry.get("from_state"),
            to_state=entry.get("to_state"),
            reason=entry.get("reason"),
            detail=entry.get("detail") or {},
            created_at=now_utc(),
            prev_hash=last_hash,
        )
        event.hash = event_hash(last_hash, event)
        last_id, last_hash = event.id, event.hash
        events.append(event)
    session.add_all(events)
    session.flush()  # the events first: the head may only advance onto an existing event
    table = AuditHead.__table__
    session.connection().execute(
        update(table)
        .where(table.c.id == 1)
        .values(last_id=bindparam("b_last_id"), last_hash=bindparam("b_last_hash"))
        .execution_options(synchronize_session=False),
        [{"b_last_id": e.id, "b_last_hash": e.hash} for e in events],
    )
    set_committed_value(head, "last_id", last_id)
    set_committed_value(head, "last_hash", last_hash)
    from engine.notify.outbox import on_audit_events

    on_audit_events(session, events)
    return events


_HEAD_KEY = "suratdesa.audit_head"  # session.info: (transaction, head row locked in it)


def _locked_head(session: Session) -> AuditHead:
    """The head row, locked until the transaction ends. A transaction that appends several
    events (a group of letters stored in one write) locks it once: the lock taken outside
    any savepoint is held until commit, so later appends reuse the row (its values are this
    transaction's own; a rolled-back savepoint expires them and they are read again)."""
    root = session.get_transaction()
    held = session.info.get(_HEAD_KEY)
    if held is not None and held[0] is root and held[1] in session:
        return held[1]
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    if session.get_nested_transaction() is None:
        session.info[_HEAD_KEY] = (root, head)
    return head


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    problem: str | None = None  # first break found, in plain words


def verify_chain(session: Session, *, batch: int = 5000) -> ChainReport:
    prev = GENESIS_HASH
    expected_id = 1
    count = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            break
        for ev in rows:
            if ev.id != expected_id:
                return ChainReport(
                    False, count, f"event {expected_id} is missing (next is {ev.id})"
                )
            if ev.prev_hash != prev:
                return ChainReport(False, count, f"event {ev.id}: prev_hash does not match")
            if event_hash(prev, ev) != ev.hash:
                return ChainReport(False, count, f"event {ev.id}: content does not match its hash")
            prev = ev.hash
            expected_id += 1
            count += 1
            last_id = ev.id
        session.expunge_all()
    head = session.get(AuditHead, 1)
    if head is None or head.last_hash != prev or head.last_id != count:
        return ChainReport(False, count, "the head does not point at the last event (truncated?)")
    return ChainReport(True, count)
