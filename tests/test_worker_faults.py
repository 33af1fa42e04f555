"""An HSM batch run by `suratdesa worker` survives the faults of a real deployment, with no
human action: the worker killed with SIGKILL mid-batch (a second worker resumes it), and
PostgreSQL itself restarted mid-batch (the same worker carries on). Either way every letter is
issued exactly once, the numbers stay gapless, the audit chain holds and the batch page in the
staff app says the batch is finished, not "Terputus".

The worker here is the real CLI in its own process; the only thing changed in it is a pause
before each group of letters is stored (``Issuer.before_store``, as tests/test_jobs_batches.py
does), so that "mid-batch" is a window of seconds on a slow machine, not a race."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from engine.config import PROJECT_ROOT
from engine.jobs import queue
from engine.storage.audit import verify_chain
from engine.storage.db import transaction
from engine.storage.models import Letter, SignBatch, SignBatchItem
from suratdesa.web import create_app
from tests.conftest import PG_URL, require_tool
from tests.letters import GROGOL
from tests.notify_peers import wait_for
from tests.softhsm import MODULE, PIN
from tests.test_hsm_issuance import TOKEN, hsm_services, hsm_settings, token  # noqa: F401
from tests.test_issuance import ready_to_sign, sequences
from tests.test_jobs_queue import _done, _stop
from tests.test_staff_app import csrf_of, sign_in

pytestmark = pytest.mark.skipif(not PG_URL, reason="the job queue runs on PostgreSQL only")

COUNT = 30
P = "/staf"

# `suratdesa worker` exactly as installed, with a pause before each group's write (8 letters);
# while the file SURATDESA_TEST_HOLD names exists, the next write also waits for it to go
# (the worker says so by creating that name + ".waiting").
BOOT = """
import os, sys, time
from engine.letters.issuance import Issuer
from suratdesa.cli import main

pause = float(os.environ["SURATDESA_TEST_GROUP_PAUSE"])
hold = os.environ.get("SURATDESA_TEST_HOLD")
plain_init = Issuer.__init__

def before_store():
    time.sleep(pause)
    if hold and os.path.exists(hold):
        open(hold + ".waiting", "w").close()
        while os.path.exists(hold):
            time.sleep(0.02)

def paced_init(self, *args, **kwargs):
    plain_init(self, *args, **kwargs)
    self.before_store = before_store

Issuer.__init__ = paced_init
sys.exit(main(sys.argv[1:]))
"""


def _worker(settings, tmp_path: Path, pin_file: Path, token_conf, pause: float, hold=None):
    env = {
        "PATH": "/usr/bin:/bin",
        "SURATDESA_DATABASE_URL": settings.database_url,
        "SURATDESA_KEYS_DIR": str(settings.keys_dir),
        "SURATDESA_WORKFLOWS_DIR": str(settings.workflows_dir),
        "SURATDESA_PUBLIC_URL": settings.public_url,
        "SURATDESA_AUDIT_DIR": str(settings.audit_dir),
        "SURATDESA_PKCS11_MODULE": MODULE,
        "SURATDESA_PKCS11_TOKEN": TOKEN,
        "SOFTHSM2_CONF": str(token_conf),
        "SURATDESA_TEST_GROUP_PAUSE": str(pause),
        "SURATDESA_TEST_HOLD": str(hold or ""),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    args = ["worker", "--hsm-pin-file", str(pin_file), "--lease-seconds", "3"]
    args += ["--concurrency", "2", "--sign-processes", "1"]  # groups of 8 letters
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-c", BOOT, *args],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _logs(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in sorted(tmp_path.glob("worker-*.log")))


def _pin_file(tmp_path: Path) -> Path:
    path = tmp_path / "pin"
    path.write_text(PIN + "\n")
    path.chmod(0o600)
    return path


def _tolerant(read):
    """A reading that counts as "not yet" while the database is away (it is being restarted)."""

    def attempt():
        try:
            return read()
        except sa_exc.OperationalError:
            return None

    return attempt


def _finished(services, batch_id: int) -> bool:
    with transaction(services.factory) as session:
        return session.get(SignBatch, batch_id).finished_at is not None


def _worker_alive(services) -> bool:
    with transaction(services.factory) as session:
        return queue.worker_alive(session)


def _start_in_staff_app(settings, pairs) -> tuple[object, int]:
    """The head ticks the letters and enters the token PIN; a live worker takes the batch."""
    client = sign_in(create_app(settings), "head.grogol")
    page = client.get(f"{P}/tandatangan")
    r = client.post(
        f"{P}/tandatangan",
        data={
            "csrf": csrf_of(page.text),
            "req": [f"{rid}:{version}" for rid, version in pairs],
            "passphrase": PIN,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client, int(r.headers["location"].rsplit("/", 1)[1])


def _assert_issued_exactly_once(services, client, batch_id: int, pairs) -> None:
    with transaction(services.factory) as session:
        items = session.scalars(
            select(SignBatchItem).where(SignBatchItem.batch_id == batch_id)
        ).all()
        letters = session.execute(select(Letter.id, Letter.request_id)).all()
        assert verify_chain(session).ok
    assert sorted(i.request_id for i in items) == sorted(rid for rid, _ in pairs)
    assert {i.status for i in items} == {"done"}
    by_id = dict(letters)
    assert len(letters) == COUNT  # no letter twice, none outside the batch
    assert sorted(by_id.values()) == sorted(rid for rid, _ in pairs)  # one per request
    assert all(by_id[i.letter_id] == i.request_id for i in items)  # each item its own letter
    assert sequences(services, GROGOL) == list(range(1, COUNT + 1))
    page = client.get(f"{P}/tandatangan/{batch_id}")
    assert page.status_code == 200
    assert 'id="finished"' in page.text and "Selesai." in page.text
    assert f'<span id="progress">{COUNT} / {COUNT}</span>' in page.text
    assert "Terputus" not in page.text and 'id="resume"' not in page.text


def test_a_worker_killed_mid_batch_is_replaced_and_the_batch_page_shows_it_done(
    hsm_services,  # noqa: F811
    hsm_settings,  # noqa: F811
    token,  # noqa: F811
    logins,
    tmp_path,
):
    services = hsm_services
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", COUNT)
    pin_file = _pin_file(tmp_path)
    first = _worker(hsm_settings, tmp_path, pin_file, token, pause=1.0)
    try:
        wait_for(lambda: _worker_alive(services), timeout=90, what="worker heartbeat")
        client, batch_id = _start_in_staff_app(hsm_settings, pairs)
        wait_for(lambda: _done(services, batch_id) >= 8, timeout=120, what="first letters")
    finally:
        _stop(first, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    stored = _done(services, batch_id)
    assert stored < COUNT, "the first worker finished before it could be killed"
    second = _worker(hsm_settings, tmp_path, pin_file, token, pause=0.0)
    try:
        wait_for(lambda: _finished(services, batch_id), timeout=180, what="resumed and finished")
    finally:
        _stop(second)
    _assert_issued_exactly_once(services, client, batch_id, pairs)


# --------------------------------------------------------------------------- PostgreSQL restart


def _cluster_serving(url: str) -> tuple[str, str]:
    """The (version, name) of the local cluster listening on the database URL's port."""
    port = make_url(url).port or 5432
    listing = subprocess.run(
        [require_tool("pg_lsclusters"), "--no-header"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in listing.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return version, name
    pytest.fail(f"no local PostgreSQL cluster on port {port}:\n{listing}")


def _restart_postgres(url: str, while_down) -> None:
    """Restart the PostgreSQL server for real (every connection to it is cut); ``while_down`` is
    called once it has stopped accepting connections. Returns when it answers again."""
    version, name = _cluster_serving(url)
    ctl = require_tool("pg_ctlcluster")
    parsed = make_url(url)
    probe = [require_tool("pg_isready"), "-h", parsed.host or "127.0.0.1"]
    probe += ["-p", str(parsed.port or 5432)]

    def answers() -> bool:
        return subprocess.run(probe, capture_output=True).returncode == 0

    restart = subprocess.Popen(
        [ctl, "--skip-systemctl-redirect", version, name, "restart", "-m", "fast"]
    )
    try:
        # (A restart too quick to be seen down by pg_isready still cut every connection.)
        wait_for(
            lambda: not answers() or restart.poll() is not None,
            timeout=60,
            what="PostgreSQL going down",
        )
        while_down()
    finally:
        assert restart.wait(timeout=120) == 0
    wait_for(answers, timeout=120, what="PostgreSQL accepting connections again")


def _heartbeat_after(services, moment) -> bool:
    with transaction(services.factory) as session:
        return bool(
            session.scalar(
                text(
                    f"SELECT EXISTS (SELECT 1 FROM {queue.SCHEMA}.procrastinate_workers "
                    "WHERE last_heartbeat > :moment)"
                ),
                {"moment": moment},
            )
        )


def test_postgresql_restarted_mid_batch_the_same_worker_finishes_it(
    hsm_services,  # noqa: F811
    hsm_settings,  # noqa: F811
    token,  # noqa: F811
    logins,
    tmp_path,
):
    services = hsm_services
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", COUNT)
    require_tool("pg_ctlcluster")
    hold = tmp_path / "hold"
    worker = _worker(hsm_settings, tmp_path, _pin_file(tmp_path), token, pause=0.5, hold=hold)
    try:
        wait_for(lambda: _worker_alive(services), timeout=90, what="worker heartbeat")
        client, batch_id = _start_in_staff_app(hsm_settings, pairs)
        wait_for(lambda: _done(services, batch_id) >= 8, timeout=120, what="first letters")
        hold.touch()  # the run's next group waits, its letters made, not yet stored
        wait_for(Path(f"{hold}.waiting").exists, timeout=120, what="a group about to be stored")
        assert _done(services, batch_id) < COUNT, "the batch ended before the restart"
        # The group is stored while the server is going down or starting again.
        _restart_postgres(hsm_settings.database_url, while_down=hold.unlink)
        with transaction(services.factory) as session:
            restarted = session.scalar(text("SELECT now()"))
        # No human action: the batch ends by itself, on the worker that lived through it.
        wait_for(
            _tolerant(lambda: _finished(services, batch_id)),
            timeout=240,
            what="the batch finished after the restart",
        )
        assert worker.poll() is None, "the worker died on the restart:\n" + _logs(tmp_path)
        wait_for(
            _tolerant(lambda: _heartbeat_after(services, restarted)),
            timeout=60,
            what="the worker beating again after the restart",
        )
        assert worker.poll() is None, _logs(tmp_path)
    finally:
        hold.unlink(missing_ok=True)
        _stop(worker)
    _assert_issued_exactly_once(services, client, batch_id, pairs)
