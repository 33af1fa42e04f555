"""The job queue on PostgreSQL (Procrastinate, engine.jobs.queue) run by `suratdesa worker`
processes: notices are delivered by a worker; a batch of a head whose key is on the HSM is
signed by a worker with its own token PIN, and when that worker is killed mid-batch another
worker resumes it by itself, with no letter issued twice and no gap in the numbers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from engine.config import PROJECT_ROOT
from engine.jobs import batch_runs, queue
from engine.notify.outbox import set_contact
from engine.people.users import Actor, get_user
from engine.storage.audit import verify_chain
from engine.storage.db import transaction
from engine.storage.models import Letter, Notice, SignBatchItem
from tests.conftest import PG_URL
from tests.letters import GROGOL
from tests.notify_peers import smtp_server, wait_for  # noqa: F401 - fixture
from tests.softhsm import MODULE, PIN
from tests.test_hsm_issuance import TOKEN, hsm_services, hsm_settings, token  # noqa: F401
from tests.test_issuance import actor, ready_to_sign, sequences

pytestmark = pytest.mark.skipif(not PG_URL, reason="the job queue runs on PostgreSQL only")


def _worker(settings, tmp_path: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    base = {
        "PATH": "/usr/bin:/bin",
        "SURATDESA_DATABASE_URL": settings.database_url,
        "SURATDESA_KEYS_DIR": str(settings.keys_dir),
        "SURATDESA_WORKFLOWS_DIR": str(settings.workflows_dir),
        "SURATDESA_PUBLIC_URL": settings.public_url,
        "SURATDESA_AUDIT_DIR": str(settings.audit_dir),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "suratdesa.cli", "worker", *extra],
        env={**base, **(env or {})},
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found |= {child, *_descendants(child)}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_the_queue_lives_in_its_own_schema(services):
    with transaction(services.factory) as session:
        tables = session.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'procrastinate'")
        ).all()
        assert "procrastinate_jobs" in tables and "procrastinate_workers" in tables
        public = session.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).all()
        assert not [t for t in public if t.startswith("procrastinate")]
        assert not queue.worker_alive(session)


def test_a_worker_delivers_notices(services, settings, logins, smtp_server, tmp_path):  # noqa: F811
    with transaction(services.factory) as session:
        admin = Actor.of(get_user(session, "admin"))
        set_contact(
            session, admin, get_user(session, "head.grogol"), email="kades@grogol.test", phone=None
        )
    ready_to_sign(services, logins, GROGOL, "grogol", 2)  # the head is told of each
    with transaction(services.factory) as session:
        waiting = session.scalar(
            select(func.count()).select_from(Notice).where(Notice.transport == "email")
        )
    assert waiting >= 2
    worker = _worker(
        settings,
        tmp_path,
        "--queues",
        "notify",
        env={
            "SURATDESA_SMTP_HOST": smtp_server.host,
            "SURATDESA_SMTP_PORT": str(smtp_server.port),
            "SURATDESA_SMTP_FROM": "surat@desa.test",
            "SURATDESA_NOTIFY_RETRY_SECONDS": "1",
        },
    )
    try:
        wait_for(lambda: len(smtp_server.messages) >= waiting, timeout=60, what="notices sent")
    finally:
        _stop(worker)
    assert {m["To"] for m in smtp_server.messages} == {"kades@grogol.test"}
    with transaction(services.factory) as session:
        statuses = session.scalars(select(Notice.status).where(Notice.transport == "email"))
        assert set(statuses) == {"sent"}


def _done(services, batch_id: int) -> int:
    with transaction(services.factory) as session:
        return session.scalar(
            select(func.count())
            .select_from(SignBatchItem)
            .where(SignBatchItem.batch_id == batch_id, SignBatchItem.status == "done")
        )


def test_an_hsm_batch_resumes_by_itself_on_another_worker_after_a_kill(
    hsm_services,  # noqa: F811
    hsm_settings,  # noqa: F811
    token,  # noqa: F811
    logins,
    tmp_path,
):
    services = hsm_services
    count = 60
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", count)
    head = actor(services, "head.grogol")
    # The web process started the batch and died before running it: its lease has run out.
    batch_id = batch_runs.start(services.issuer, head, pairs, "web:dead", lease_seconds=0.01)
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    env = {
        "SURATDESA_PKCS11_MODULE": MODULE,
        "SURATDESA_PKCS11_TOKEN": TOKEN,
        "SOFTHSM2_CONF": str(token),
    }
    args = ("--hsm-pin-file", str(pin_file), "--lease-seconds", "3", "--concurrency", "2")
    args += ("--sign-processes", "2")  # a batch is made on two processes: groups of 16
    first = _worker(hsm_settings, tmp_path, *args, env=env)
    helpers: set[int] = set()
    try:
        wait_for(lambda: _done(services, batch_id) >= 8, timeout=90, what="first letters")
        helpers = _descendants(first.pid)
    finally:
        _stop(first, signal.SIGKILL)
    assert len(helpers) >= 3  # the fork server and the two signing processes
    wait_for(lambda: not any(_alive(pid) for pid in helpers), timeout=20, what="helpers ended")
    stored = _done(services, batch_id)
    assert stored < count, "the first worker finished before it could be killed"
    with transaction(services.factory) as session:  # nothing half issued
        letters = session.scalar(select(func.count()).select_from(Letter))
    # at most one group stored whose rows were not written yet
    assert letters - stored in (0, 16, count % 16)
    second = _worker(hsm_settings, tmp_path, *args, env=env)
    try:
        wait_for(lambda: _done(services, batch_id) == count, timeout=120, what="resumed")
    finally:
        _stop(second)
    assert sequences(services, GROGOL) == list(range(1, count + 1))
    with transaction(services.factory) as session:
        assert session.scalar(select(func.count()).select_from(Letter)) == count
        assert verify_chain(session).ok
    state = batch_runs.state(services.issuer, head, batch_id)
    assert state.batch.finished and not state.interrupted


def test_the_staff_app_hands_an_hsm_batch_to_a_live_worker(
    hsm_services,  # noqa: F811
    hsm_settings,  # noqa: F811
    token,  # noqa: F811
    logins,
    tmp_path,
):
    from suratdesa.web import create_app
    from tests.test_staff_app import csrf_of, sign_in

    services = hsm_services
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", 5)
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN)
    env = {
        "SURATDESA_PKCS11_MODULE": MODULE,
        "SURATDESA_PKCS11_TOKEN": TOKEN,
        "SOFTHSM2_CONF": str(token),
    }
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    worker = _worker(hsm_settings, log_dir, "--hsm-pin-file", str(pin_file), env=env)
    try:

        def alive() -> bool:
            with transaction(services.factory) as session:
                return queue.worker_alive(session)

        wait_for(alive, timeout=60, what="worker heartbeat")
        client = sign_in(create_app(hsm_settings), "head.grogol")
        page = client.get("/staf/tandatangan")
        r = client.post(
            "/staf/tandatangan",
            data={
                "csrf": csrf_of(page.text),
                "req": [f"{rid}:{version}" for rid, version in pairs],
                "passphrase": PIN,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        batch_id = int(r.headers["location"].rsplit("/", 1)[1])
        wait_for(lambda: _done(services, batch_id) == 5, timeout=60, what="worker signed")
        assert 'id="finished"' in client.get(r.headers["location"]).text
    finally:
        _stop(worker)
    logs = "".join(p.read_text() for p in log_dir.iterdir())
    assert "sd:sign.batch[" in logs and f"(batch_id={batch_id})" in logs
    assert sequences(services, GROGOL) == [1, 2, 3, 4, 5]
