"""The audit log can't be rewritten unseen: the database refuses TRUNCATE and direct writes to the
chain head, and a signed, timestamped checkpoint kept outside the database exposes a wipe or a
recomputed chain done by someone who can switch the triggers off (the table owner)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from engine.aio import run_sync
from engine.config import PROJECT_ROOT, Settings
from engine.storage import audit, audit_checkpoints
from engine.storage.audit import GENESIS_HASH, verify_chain
from engine.storage.audit_checkpoints import (
    AuditError,
    checkpoint_name,
    ensure_checkpoint,
    list_checkpoints,
    make_checkpoint,
    verify_log,
    wib,
)
from engine.storage.db import session_factory, transaction
from engine.storage.models import AuditEvent
from engine.timeutil import now_utc
from engine.trust.pki import init_pki, load_seal_key
from engine.trust.signing import make_timestamper


@pytest.fixture
def anchored(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, audit_dir=tmp_path / "audit")


@pytest.fixture
def factory(anchored: Settings):
    return session_factory(anchored.database_url)


def _dialect(factory) -> str:
    return factory.kw["bind"].dialect.name


def _append(factory, n: int, prefix: str = "a") -> int:
    """Append n events; the head's last id after them (the seeded demo has events already)."""
    with transaction(factory) as session:
        for i in range(n):
            event = audit.append(
                session, actor_id=None, actor="tester", role="admin", action=f"{prefix}{i}"
            )
        return event.id


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "suratdesa.cli", "audit", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "SURATDESA_DATABASE_URL": settings.database_url,
            "SURATDESA_KEYS_DIR": str(settings.keys_dir),
            "SURATDESA_AUDIT_DIR": str(settings.audit_dir),
            "SURATDESA_SECRET_KEY": "test-only",
        },
    )


def _switch_off_guards(session) -> None:
    """What the table owner can do: take the triggers out of the way."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        session.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
    else:
        for trigger in ("audit_events_no_update", "audit_events_no_delete", "audit_head_advance"):
            session.execute(text(f"DROP TRIGGER {trigger}"))


def _wipe(factory, how: str) -> None:
    with transaction(factory) as session:
        if _dialect(factory) == "postgresql":
            if how == "replica":
                session.execute(text("SET LOCAL session_replication_role = replica"))
            else:
                session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER ALL"))
                session.execute(text("ALTER TABLE audit_head DISABLE TRIGGER ALL"))
            session.execute(text("TRUNCATE audit_events"))
        else:
            _switch_off_guards(session)
            session.execute(text("DELETE FROM audit_events"))
        session.execute(
            text("UPDATE audit_head SET last_id = 0, last_hash = :h"), {"h": GENESIS_HASH}
        )
    if _dialect(factory) == "postgresql" and how != "replica":
        with transaction(factory) as session:
            session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER ALL"))
            session.execute(text("ALTER TABLE audit_head ENABLE TRIGGER ALL"))


# --------------------------------------------------------------------------- the database


def test_truncate_of_the_log_is_refused(factory):
    last = _append(factory, 3)
    if _dialect(factory) == "postgresql":
        statements = {
            "TRUNCATE audit_events": "append-only",
            "TRUNCATE audit_events, audit_head": "append-only|audit_head",
            "TRUNCATE requests CASCADE": "append-only",
            "TRUNCATE audit_head": "audit_head",
        }
    else:  # SQLite has no TRUNCATE: its equivalent is a DELETE without WHERE
        statements = {"DELETE FROM audit_events": "append-only"}
    for statement, message in statements.items():
        with pytest.raises(DBAPIError, match=message), transaction(factory) as session:
            session.execute(text(statement))
    with transaction(factory) as session:
        assert verify_chain(session).events == last


def test_the_chain_head_cannot_be_written_directly(factory):
    last = _append(factory, 3)
    with transaction(factory) as session:
        first = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == 1))
    attempts = [
        # the reset that used to hide a wipe
        ("UPDATE audit_head SET last_id = 0, last_hash = :genesis", "advance"),
        # back to a real, earlier event
        ("UPDATE audit_head SET last_id = 1, last_hash = :first", "advance"),
        # forward to an event that does not exist
        ("UPDATE audit_head SET last_id = :next, last_hash = :first", "advance"),
        ("UPDATE audit_head SET id = 2", "advance"),
        ("DELETE FROM audit_head", "audit_head"),
        ("INSERT INTO audit_head (id, last_id, last_hash) VALUES (2, 0, :genesis)", "audit_head"),
    ]
    for statement, message in attempts:
        with pytest.raises(DBAPIError, match=message), transaction(factory) as session:
            params = {"genesis": GENESIS_HASH, "first": first, "next": last + 1}
            session.execute(text(statement), params)
    # An event inserted by hand is not the head's next step unless it hangs off the head.
    with pytest.raises(DBAPIError, match="advance"), transaction(factory) as session:
        session.execute(
            text(
                "INSERT INTO audit_events (id, actor, role, action, detail, created_at, "
                "prev_hash, hash) VALUES (:id, 'x', 'admin', 'forged', '{}', :at, :prev, :h)"
            ),
            {"id": last + 1, "at": now_utc(), "prev": GENESIS_HASH, "h": "f" * 64},
        )
        session.execute(
            text("UPDATE audit_head SET last_id = :id, last_hash = :h"),
            {"id": last + 1, "h": "f" * 64},
        )
    # The engine's own appends still advance the head, one event at a time.
    _append(factory, 2, "b")
    with transaction(factory) as session:
        report = verify_chain(session)
    assert report.ok and report.events == last + 2


# --------------------------------------------------------------------------- checkpoints


def test_a_checkpoint_is_signed_timestamped_and_written_once(anchored, factory):
    last = _append(factory, 4)
    cp = make_checkpoint(factory, anchored)
    assert cp is not None and cp.name == checkpoint_name(last) == f"checkpoint-{last:012d}.json"
    assert cp.path.parent == anchored.audit_dir
    doc = json.loads(cp.path.read_text())
    assert doc["checkpoint"]["last_id"] == last and doc["checkpoint"]["events"] == last
    assert doc["checkpoint"]["public_url"] == anchored.public_url
    assert doc["timestamp"]["rfc3161_token"] and doc["signature"]["value"]
    with transaction(factory) as session:
        head_hash = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == last))
    assert doc["checkpoint"]["last_hash"] == head_hash
    before = cp.path.read_bytes()
    # Nothing changed: no new file, the existing one untouched, the anchor key made once.
    assert make_checkpoint(factory, anchored) is None
    assert cp.path.read_bytes() == before
    assert [c.name for c in list_checkpoints(anchored.audit_dir)] == [cp.name]
    assert not cp.path.stat().st_mode & 0o222  # published read-only
    report = verify_log(factory, anchored)
    assert report.ok, report.problems
    assert report.latest == cp and report.timestamp is not None


def test_cli_checkpoint_then_verify(anchored, factory):
    last = _append(factory, 2)
    made = _cli(anchored, "checkpoint")
    assert made.returncode == 0, made.stderr
    assert checkpoint_name(last) in made.stdout
    result = _cli(anchored, "verify")
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout and checkpoint_name(last) in result.stdout
    # Without any checkpoint the chain still verifies, with a warning that says why it matters.
    empty = replace(anchored, audit_dir=anchored.audit_dir.parent / "none")
    result = _cli(empty, "verify")
    assert result.returncode == 0 and "no checkpoint" in result.stderr


@pytest.mark.parametrize("how", ["replica", "disable"])
def test_a_wipe_as_table_owner_is_reported_naming_the_checkpoint(anchored, factory, how):
    if how == "replica" and _dialect(factory) != "postgresql":
        pytest.skip("session_replication_role is PostgreSQL's")
    _append(factory, 5)
    cp = make_checkpoint(factory, anchored)
    assert cp is not None
    _wipe(factory, how)
    with transaction(factory) as session:
        assert verify_chain(session).ok  # the chain on its own is fooled: empty and "intact"

    result = _cli(anchored, "verify")
    assert result.returncode != 0
    assert "intact" not in result.stdout
    assert cp.name in result.stderr and wib(cp.created_at) in result.stderr
    assert "wiped" in result.stderr

    # Refilling the wiped log up to the same id does not bring the old last event back.
    _append(factory, cp.last_id, "new")
    report = verify_log(factory, anchored)
    assert not report.ok and "rewritten" in report.problems[0] and cp.name in report.problems[0]
    # ...and the automatic checkpoint refuses to anchor the forged history.
    _append(factory, 1, "more")
    with pytest.raises(AuditError, match="tidak utuh"):
        ensure_checkpoint(factory, anchored, max_age=timedelta(0))
    assert [c.name for c in list_checkpoints(anchored.audit_dir)] == [cp.name]


def test_a_chain_recomputed_after_an_edit_is_reported(anchored, factory):
    _append(factory, 6)
    cp = make_checkpoint(factory, anchored)
    assert cp is not None
    with transaction(factory) as session:
        _switch_off_guards(session)
        prev = audit.GENESIS_HASH
        for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all():
            if ev.id == 2:
                ev.actor = "someone else"
            ev.prev_hash = prev
            ev.hash = audit.event_hash(prev, ev)
            prev = ev.hash
            session.flush()
        session.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
    with transaction(factory) as session:
        assert verify_chain(session).ok  # a consistent, recomputed chain

    result = _cli(anchored, "verify")
    assert result.returncode != 0
    assert cp.name in result.stderr and wib(cp.created_at) in result.stderr
    assert "rewritten" in result.stderr


def _rewrite(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.chmod(0o644)
    path.write_text(json.dumps(doc))


def test_a_tampered_checkpoint_file_is_reported(anchored, factory, tmp_path):
    _append(factory, 3)
    cp = make_checkpoint(factory, anchored)
    assert cp is not None
    original = cp.path.read_bytes()

    def restore() -> None:
        cp.path.chmod(0o644)
        cp.path.write_bytes(original)

    # 1. content changed after signing (say, to hide that the log once had more events)
    _rewrite(cp.path, lambda d: d["checkpoint"].update(events=2))
    result = _cli(anchored, "verify")
    assert result.returncode != 0
    assert cp.name in result.stderr and "signature does not match" in result.stderr

    # 2. re-signed with another key the server holds (the QR seal key)
    restore()
    body = json.loads(original)["checkpoint"]
    forged = load_seal_key(anchored.keys_dir).sign(
        audit_checkpoints._json(body), ec.ECDSA(hashes.SHA256())
    )
    _rewrite(cp.path, lambda d: d["signature"].update(value=base64.b64encode(forged).decode()))
    report = verify_log(factory, anchored)
    assert not report.ok and "signature does not match" in report.problems[0]

    # 3. the timestamp token taken from elsewhere (it covers another signature)
    restore()
    _append(factory, 1, "later")
    other = make_checkpoint(factory, anchored)
    assert other is not None
    token = json.loads(other.path.read_text())["timestamp"]["rfc3161_token"]
    other.path.chmod(0o644)
    other.path.unlink()
    _rewrite(cp.path, lambda d: d["timestamp"].update(rfc3161_token=token))
    report = verify_log(factory, anchored)
    assert not report.ok and cp.name in report.problems[0]
    assert "timestamp does not cover" in report.problems[0]

    # 4. a genuine signature timestamped by a self-made TSA whose names copy ours
    restore()
    foreign = tmp_path / "foreign-keys"
    init_pki(foreign)
    signature = base64.b64decode(json.loads(original)["signature"]["value"])
    token = run_sync(
        make_timestamper(None, foreign).async_timestamp(
            hashlib.sha256(signature).digest(), "sha256"
        )
    )
    _rewrite(
        cp.path,
        lambda d: d["timestamp"].update(rfc3161_token=base64.b64encode(token.dump()).decode()),
    )
    report = verify_log(factory, anchored)
    assert not report.ok and cp.name in report.problems[0]
    assert "not from a TSA this deployment trusts" in report.problems[0]

    # 5. a file that is not a checkpoint at all
    restore()
    (anchored.audit_dir / checkpoint_name(99)).write_text("{}")
    report = verify_log(factory, anchored)
    assert not report.ok and "checkpoint-000000000099.json" in report.problems[0]


# --------------------------------------------------------------------------- automatic


def test_the_automatic_checkpoint_is_idempotent(anchored, factory):
    last = _append(factory, 2)
    first = ensure_checkpoint(factory, anchored)
    assert first is not None and first.last_id == last
    assert ensure_checkpoint(factory, anchored) is None  # nothing changed
    _append(factory, 1)
    assert ensure_checkpoint(factory, anchored) is None  # changed, but the newest is fresh
    # The newest is older than max_age (a day later): a new one.
    second = ensure_checkpoint(factory, anchored, max_age=timedelta(0))
    assert second is not None and second.last_id == last + 1
    # Old, but nothing changed since: still no new file.
    assert ensure_checkpoint(factory, anchored, max_age=timedelta(0)) is None
    assert [c.last_id for c in list_checkpoints(anchored.audit_dir)] == [last + 1, last]

    # Several app processes waking at once: one checkpoint.
    _append(factory, 1)
    barrier = threading.Barrier(4)
    made: list = []

    def worker() -> None:
        barrier.wait()
        made.append(ensure_checkpoint(factory, anchored, max_age=timedelta(0)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([m for m in made if m is not None]) == 1
    ids = [c.last_id for c in list_checkpoints(anchored.audit_dir)]
    assert ids == [last + 2, last + 1, last]
    assert not [p for p in anchored.audit_dir.iterdir() if p.name.endswith(".tmp")]
    assert verify_log(factory, anchored).ok


def test_the_served_app_makes_the_daily_checkpoint(anchored, factory, monkeypatch):
    from suratdesa import web

    monkeypatch.setattr(web, "CHECKPOINT_FIRST_DELAY", (0.0, 0.0))
    last = _append(factory, 2)
    app = web.create_app(replace(anchored, audit_checkpoint_hours=24))
    with TestClient(app):
        deadline = time.monotonic() + 20
        while not list_checkpoints(anchored.audit_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert [c.last_id for c in list_checkpoints(anchored.audit_dir)] == [last]


def test_no_background_checkpoint_unless_configured(anchored, factory, monkeypatch):
    from suratdesa import web

    monkeypatch.setattr(web, "CHECKPOINT_FIRST_DELAY", (0.0, 0.0))
    _append(factory, 2)
    assert anchored.audit_checkpoint_hours == 0
    with TestClient(web.create_app(anchored)):
        time.sleep(0.5)
    assert list_checkpoints(anchored.audit_dir) == []


# --------------------------------------------------------------------------- the portal


def test_the_portal_publishes_checkpoints_newest_first(anchored, factory):
    from suratdesa.web import create_app

    client = TestClient(create_app(anchored))
    page = client.get("/pki/audit/")
    assert page.status_code == 200 and "Belum ada titik periksa" in page.text

    _append(factory, 2)
    older = make_checkpoint(factory, anchored)
    _append(factory, 3)
    newer = make_checkpoint(factory, anchored)
    assert older is not None and newer is not None
    page = client.get("/pki/audit/")
    assert page.status_code == 200
    assert page.text.index(newer.name) < page.text.index(older.name)
    assert wib(newer.created_at) in page.text and newer.last_hash in page.text

    for cp in (older, newer):
        got = client.get(f"/pki/audit/{cp.name}")
        assert got.status_code == 200
        assert got.content == cp.path.read_bytes()
        assert got.headers["content-type"].startswith("application/json")
    missing = checkpoint_name(newer.last_id + 1)
    for bad in (missing, "..%2Fkeys", ".checkpoint.lock", "x.json", "checkpoint-1.json"):
        assert client.get(f"/pki/audit/{bad}").status_code == 404
    # read-only: nothing but GET
    assert client.post(f"/pki/audit/{newer.name}").status_code == 405
    assert client.delete(f"/pki/audit/{newer.name}").status_code == 405
    assert 'href="/pki/audit/"' in client.get("/pki/").text
