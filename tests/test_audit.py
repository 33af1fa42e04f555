"""The audit log is append-only at the database and its hash chain exposes any edit."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from engine.storage import audit
from engine.storage.audit import verify_chain
from engine.storage.db import transaction


def _append_some(services, n: int = 3) -> None:
    with transaction(services.factory) as session:
        for i in range(n):
            audit.append(session, actor_id=None, actor="tester", role="admin", action=f"a{i}")


def test_chain_verifies_and_counts_events(services):
    _append_some(services)
    with transaction(services.factory) as session:
        report = verify_chain(session)
    assert report.ok and report.events >= 3


def test_update_and_delete_are_refused_by_the_database(services):
    _append_some(services)
    for statement in ("UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events"):
        with (
            pytest.raises(DBAPIError, match="append-only"),
            transaction(services.factory) as session,
        ):
            session.execute(text(statement))


def test_an_edit_that_bypasses_the_trigger_breaks_the_chain(services):
    _append_some(services, 5)
    with transaction(services.factory) as session:
        # An attacker with database rights drops the guard and edits history.
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change"))
        else:
            session.execute(text("DROP TRIGGER audit_events_no_update"))
        session.execute(text("UPDATE audit_events SET actor = 'someone else' WHERE id = 2"))
    with transaction(services.factory) as session:
        report = verify_chain(session)
    assert not report.ok
    assert "event 2" in report.problem
