"""A batch whose process dies mid-way (kill -9) is interrupted, not "signing..." forever: its
lease runs out, the page shows exactly what was stored and what was not, nothing is half
issued, numbers stay gapless, and the passphrase entered again issues exactly the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from engine.config import PROJECT_ROOT, Settings
from engine.errors import Conflict
from engine.jobs import batch_runs
from engine.requests import batches
from engine.storage.audit import verify_chain
from engine.storage.db import transaction
from engine.storage.models import Letter, LetterRequest, SignBatch, SignBatchItem
from suratdesa.web import create_app
from tests.conftest import PG_URL
from tests.letters import GROGOL
from tests.test_issuance import actor, ready_to_sign, sequences
from tests.test_staff_app import csrf_of, sign_in

P = "/staf"


def child(settings_json: str, pairs_json: str, passphrase: str) -> None:
    """The batch run in its own process (as in the web process): prints the batch id, then
    signs slowly (a pause before each group's write) until it is killed."""
    from engine.services import Services

    raw = json.loads(settings_json)
    for key in ("audit_dir", "keys_dir", "workflows_dir"):
        raw[key] = Path(raw[key])
    services = Services.from_settings(Settings(**raw))
    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    owner = batch_runs.new_owner("test")
    pairs = [tuple(p) for p in json.loads(pairs_json)]
    batch_id = batch_runs.start(services.issuer, head, pairs, owner, lease_seconds=2)
    print(batch_id, flush=True)
    services.issuer.before_store = lambda: time.sleep(0.8)
    batch_runs.run(services.issuer, head, batch_id, signer, owner, lease_seconds=2)


def _plain(value):
    return str(value) if isinstance(value, Path) else value


def _items(services, batch_id: int) -> list[SignBatchItem]:
    with transaction(services.factory) as session:
        return list(
            session.scalars(
                select(SignBatchItem)
                .where(SignBatchItem.batch_id == batch_id)
                .order_by(SignBatchItem.position)
            )
        )


def _kill_mid_batch(settings, pairs, passphrase, services) -> int:
    fields = ("database_url", "public_url", "keys_dir", "workflows_dir", "paper", "tsa_url")
    fields += ("audit_dir",)
    settings_json = json.dumps({k: _plain(getattr(settings, k)) for k in fields})
    code = (
        "import sys; from tests.test_jobs_batches import child; "
        "child(sys.argv[1], sys.argv[2], sys.argv[3])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, settings_json, json.dumps(pairs), passphrase],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        batch_id = int(proc.stdout.readline())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = sum(1 for i in _items(services, batch_id) if i.status == "done")
            if done >= 8:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return batch_id


def _check_consistent(services, batch_id: int, pairs: list[tuple[int, int]]) -> int:
    """No half-issued letter: a letter exactly for every item done, the rest untouched in the
    signing step with the version the head ticked; numbers 1..n without a gap."""
    items = _items(services, batch_id)
    with transaction(services.factory) as session:
        letters = {x.request_id: x for x in session.scalars(select(Letter))}
        requests = {r.id: r for r in session.scalars(select(LetterRequest))}
        assert verify_chain(session).ok
    done = [i for i in items if i.status == "done"]
    assert sorted(letters) == sorted(i.request_id for i in done)
    for item in items:
        if item.status == "done":
            assert letters[item.request_id].id == item.letter_id
            assert requests[item.request_id].state == "issued"
        else:
            assert item.status == "pending"
            assert requests[item.request_id].state == "signing"
            assert requests[item.request_id].version == dict(pairs)[item.request_id]
    assert sequences(services, GROGOL) == list(range(1, len(done) + 1))
    return len(done)


def test_a_killed_batch_is_interrupted_and_the_passphrase_resumes_exactly_the_rest(
    services, settings, logins, passphrase
):
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", 30)
    batch_id = _kill_mid_batch(settings, pairs, passphrase, services)
    stored = _check_consistent(services, batch_id, pairs)
    assert 8 <= stored < 30

    time.sleep(2.1)  # the dead process's lease runs out
    head = actor(services, "head.grogol")
    state = batch_runs.state(services.issuer, head, batch_id)
    assert state.interrupted and state.pending == 30 - stored
    assert not state.batch.finished

    client = sign_in(create_app(services.settings), "head.grogol")
    page = client.get(f"{P}/tandatangan/{batch_id}")
    assert page.status_code == 200
    assert f"{stored} / 30" in page.text
    assert f"Terputus: {30 - stored} surat belum ditandatangani." in page.text
    assert page.text.count("terputus — masukkan passphrase lagi") == 30 - stored
    assert "hx-trigger" not in page.text  # not polling "signing..." forever
    assert "Signing…" not in page.text and "Menandatangani" not in page.text

    # A wrong passphrase resumes nothing.
    r = client.post(
        f"{P}/tandatangan/{batch_id}/lanjutkan",
        data={"passphrase": "salah-sekali", "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "Passphrase salah" in r.text
    assert _check_consistent(services, batch_id, pairs) == stored

    r = client.post(
        f"{P}/tandatangan/{batch_id}/lanjutkan",
        data={"passphrase": passphrase, "csrf": csrf_of(r.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303  # the background run has finished when the client returns
    assert _check_consistent(services, batch_id, pairs) == 30
    page = client.get(f"{P}/tandatangan/{batch_id}")
    assert "30 / 30" in page.text and 'id="finished"' in page.text
    with transaction(services.factory) as session:
        batch = session.get(SignBatch, batch_id)
        assert batch.finished_at is not None and batch.lease_owner is None


def test_a_letter_stored_before_its_row_was_written_is_shown_done_not_signed_again(
    services, logins, passphrase
):
    """The process died between a group's write and its item rows' write: the letter exists,
    the item still says pending. The page counts it done, and resuming does not sign it again."""
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", 3)
    head = actor(services, "head.grogol")
    owner = batch_runs.new_owner("test")
    batch_id = batch_runs.start(services.issuer, head, pairs, owner, lease_seconds=0.2)
    signer = services.issuer.unlock(head, passphrase)
    with signer:  # what the dead run stored: the first letter, without its row
        services.issuer.issue(head, pairs[0][0], version=pairs[0][1], signer=signer)
    time.sleep(0.3)
    state = batch_runs.state(services.issuer, head, batch_id, lease_seconds=0.2)
    assert state.interrupted and state.pending == 2
    assert [i.status for i in state.batch.items] == ["done", "pending", "pending"]

    signer = batch_runs.resume(
        services.issuer, head, batch_id, passphrase, "resumer", lease_seconds=5
    )
    batch_runs.run(services.issuer, head, batch_id, signer, "resumer", lease_seconds=5)
    assert [i.status for i in _items(services, batch_id)] == ["done"] * 3
    assert sequences(services, GROGOL) == [1, 2, 3]


def test_a_running_batch_cannot_be_resumed_twice(services, logins, passphrase):
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", 2)
    head = actor(services, "head.grogol")
    batch_id = batch_runs.start(services.issuer, head, pairs, "alive", lease_seconds=60)
    state = batch_runs.state(services.issuer, head, batch_id)
    assert not state.interrupted
    try:
        batch_runs.resume(services.issuer, head, batch_id, passphrase, "second")
    except Conflict as exc:
        assert "masih berjalan" in str(exc)
    else:
        raise AssertionError("a live batch was resumed")
    # Another live owner holds it: a run under a lease it does not hold writes nothing.
    signer = services.issuer.unlock(head, passphrase)
    batch_runs.run(services.issuer, head, batch_id, signer, "intruder", lease_seconds=5)
    assert [i.status for i in _items(services, batch_id)] == ["pending", "pending"]
    assert sequences(services, GROGOL) == []


@pytest.mark.skipif(not PG_URL, reason="takes the PostgreSQL database away mid-batch")
def test_a_batch_whose_database_goes_away_is_interrupted_then_resumed(
    services, settings, logins, passphrase
):
    """The database refuses every connection after the first group is stored (as during a
    PostgreSQL restart): the run stops, the letters not stored stay pending (not "failed"),
    the batch shows as interrupted, and the passphrase again finishes it."""
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", 20)
    head = actor(services, "head.grogol")
    owner = batch_runs.new_owner("test")
    batch_id = batch_runs.start(services.issuer, head, pairs, owner, lease_seconds=1)
    signer = services.issuer.unlock(head, passphrase)
    name = make_url(settings.database_url).database
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    groups = []

    def outage() -> None:
        groups.append(1)
        if len(groups) == 2:  # after the first group's write, before the second's
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )

    services.issuer.before_store = outage
    try:
        batch_runs.run(services.issuer, head, batch_id, signer, owner, lease_seconds=1)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    services.issuer.before_store = None
    assert len(groups) >= 2
    stored = _check_consistent(services, batch_id, pairs)
    assert stored == 8  # the first group; nothing else was stored or marked failed
    time.sleep(1.1)
    state = batch_runs.state(services.issuer, head, batch_id, lease_seconds=1)
    assert state.interrupted and state.pending == 12
    signer = batch_runs.resume(services.issuer, head, batch_id, passphrase, "again")
    batch_runs.run(services.issuer, head, batch_id, signer, "again")
    assert _check_consistent(services, batch_id, pairs) == 20


def test_a_batch_stuck_before_leases_existed_shows_as_interrupted(services, logins, passphrase):
    """A batch left "signing..." by a process that died before this change (no lease ever
    taken) is interrupted once it is older than a lease, and can be resumed."""
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", 2)
    head = actor(services, "head.grogol")
    batch_id = batches.start(services.issuer, head, pairs)  # no lease, as before
    assert not batch_runs.state(services.issuer, head, batch_id).interrupted
    with transaction(services.factory) as session:
        batch = session.get(SignBatch, batch_id)
        batch.created_at -= timedelta(seconds=batch_runs.LEASE_SECONDS + 1)
    state = batch_runs.state(services.issuer, head, batch_id)
    assert state.interrupted and state.pending == 2
    signer = batch_runs.resume(services.issuer, head, batch_id, passphrase, "now")
    batch_runs.run(services.issuer, head, batch_id, signer, "now")
    assert [i.status for i in _items(services, batch_id)] == ["done", "done"]
