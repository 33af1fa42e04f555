"""The job queue: Procrastinate on PostgreSQL, the production database (docs/jobs.md).

Why Procrastinate: its queue is PostgreSQL itself (no broker to run and back up), a job is
deferred with the same database the web app already writes, workers take jobs with ``FOR
UPDATE SKIP LOCKED`` and hear of new ones by LISTEN/NOTIFY, it has retry strategies with
exponential backoff, periodic tasks, queueing locks (one job per key waiting), worker heartbeats
(a job whose worker died is found and retried), and a sync API for our sync code.

Its tables live in the PostgreSQL schema ``procrastinate`` (migration 0023); every queue
connection puts that schema first on its search_path. SQLite has no queue: there, batches run
in the web process and notices go out from the web process's dispatcher, as before.

The tasks (run by ``suratdesa worker``, on any number of machines):

- ``sd:notify.dispatch``: passes of ``engine.notify.dispatcher.Dispatcher`` until nothing is
  due, every 10 seconds (the dispatcher claims rows, so workers never send a notice twice; it
  keeps its own per-notice backoff).
- ``sd:sign.batch``: run a batch whose signer's key is on the HSM token, with the token PIN from
  the worker's own configuration (never from the queue); a batch with a software key is never
  run by a worker (its key needs its holder's passphrase: engine.jobs.batch_runs).
- ``sd:sign.resume``: every 15 seconds, finds interrupted HSM batches (lease run out, letters
  pending) and defers ``sd:sign.batch`` for them: such a batch resumes by itself.
- ``sd:jobs.retry_stalled``: every minute, retries the jobs of workers that stopped beating.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from procrastinate import App, Blueprint, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.tasks import configure_task
from sqlalchemy import exc as sa_exc
from sqlalchemy import exists, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from engine.jobs import batch_runs
from engine.people.users import Actor
from engine.requests import batches
from engine.services import Services
from engine.storage.db import is_postgres, transaction
from engine.storage.models import SignBatch, SignBatchItem, User
from engine.timeutil import now_utc
from engine.trust.signing import WrongPassphrase

log = logging.getLogger("suratdesa.jobs")

SCHEMA = "procrastinate"
NAMESPACE = "sd"
SIGN_QUEUE, NOTIFY_QUEUE, HOUSEKEEPING_QUEUE = "sign", "notify", "housekeeping"
QUEUES = (SIGN_QUEUE, NOTIFY_QUEUE, HOUSEKEEPING_QUEUE)
WORKER_ALIVE_SECONDS = 30  # a worker that beat this recently takes HSM batches

# Retried with backoff 2, 4, 8, ... 64 s: only what a database or network hiccup causes.
TRANSIENT = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    psycopg.OperationalError,
)


class BatchIncomplete(Exception):
    """A batch run ended with letters still pending (the database failed under it): retried."""


RETRY = RetryStrategy(max_attempts=6, exponential_wait=2, retry_exceptions=TRANSIENT)
RETRY_BATCH = RetryStrategy(
    max_attempts=6, exponential_wait=2, retry_exceptions=(*TRANSIENT, BatchIncomplete)
)

tasks = Blueprint()


@dataclass
class WorkerContext:
    services: Services
    hsm_pin: str | None  # the token PIN from the worker's own configuration, if it signs
    lease_seconds: float = batch_runs.LEASE_SECONDS
    pin_refused: bool = False  # the token refused the PIN once: never tried again
    sign_processes: int = 1  # processes that render and sign one batch (every core by default)


_context: WorkerContext | None = None


def bind(
    services: Services,
    hsm_pin: str | None,
    lease_seconds: float = batch_runs.LEASE_SECONDS,
    sign_processes: int = 1,
) -> None:
    """Give this worker process's tasks their engine objects (``suratdesa worker``)."""
    global _context
    _context = WorkerContext(services, hsm_pin, lease_seconds, sign_processes=sign_processes)


def _ctx() -> WorkerContext:
    if _context is None:
        raise RuntimeError("engine.jobs.queue.bind() was not called in this worker")
    return _context


def conninfo(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError("the job queue needs PostgreSQL (SURATDESA_DATABASE_URL)")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _connector(database_url: str) -> PsycopgConnector:
    return PsycopgConnector(
        conninfo=conninfo(database_url), kwargs={"options": f"-c search_path={SCHEMA}"}
    )


def make_app(database_url: str) -> App:
    """The worker's app, with our tasks. Once per process: registering the module's blueprint
    again renames its (shared) tasks ``sd:sd:…`` and binds them to the newer app, so the web
    side defers with an app of its own that has no tasks (``hand_to_worker``)."""
    app = App(connector=_connector(database_url))
    app.add_tasks_from(tasks, namespace=NAMESPACE)
    return app


# --------------------------------------------------------------------------- notices


@tasks.periodic(cron="* * * * * */10", periodic_id="notify")
@tasks.task(name="notify.dispatch", queue=NOTIFY_QUEUE, retry=RETRY, queueing_lock="notify")
def dispatch_notices(timestamp: int | None = None) -> int:
    """Deliver every due notice (passes until a pass claims nothing); returns how many sent."""
    from engine.notify.dispatcher import Dispatcher

    services = _ctx().services
    dispatcher = Dispatcher(services.factory, services.settings)
    sent = 0
    for _ in range(50):  # a bounded job: the next tick carries on
        report = dispatcher.run_once()
        sent += report.sent
        if report.claimed == 0:
            break
    return sent


# --------------------------------------------------------------------------- batches on the HSM


@tasks.task(name="sign.batch", queue=SIGN_QUEUE, retry=RETRY_BATCH)
def sign_batch(batch_id: int) -> str:
    """Run an HSM batch's pending letters with the worker's token PIN. Nothing secret is in the
    job: only the batch id. A batch another run holds, a finished one, or one with a software
    key is left alone."""
    ctx = _ctx()
    issuer = ctx.services.issuer
    with transaction(issuer.factory) as session:
        batch = session.get(SignBatch, batch_id)
        user = session.get(User, batch.user_id) if batch is not None else None
        if batch is None or user is None or batch.finished_at is not None:
            return "finished"
        if user.signer_hsm_label is None:
            return "software key: resumed by its signer's passphrase"
        actor = Actor.of(user)
    if ctx.hsm_pin is None or ctx.pin_refused:
        return "this worker has no usable token PIN"
    owner = batch_runs.new_owner("worker")
    lease = ctx.lease_seconds
    if not batch_runs.claim(issuer.factory, batch_id, owner, lease, over=queued(batch_id)):
        return "held by another run"
    try:
        signer = issuer.unlock(actor, ctx.hsm_pin)
    except WrongPassphrase:
        # Counted against the head's key: one wrong try per worker process, not one per job.
        ctx.pin_refused = True
        log.error("the token refused this worker's PIN: HSM batches are left to the signers")
        batch_runs.release(issuer.factory, batch_id, owner)
        raise
    except BaseException:
        batch_runs.release(issuer.factory, batch_id, owner)
        raise
    batch_runs.run(
        issuer, actor, batch_id, signer, owner, lease_seconds=lease, processes=ctx.sign_processes
    )
    with transaction(issuer.factory) as session:
        if _pending(session, batch_id):
            raise BatchIncomplete(f"batch {batch_id}")
    return "done"


def _pending(session: Session, batch_id: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(SignBatchItem)
        .where(SignBatchItem.batch_id == batch_id, SignBatchItem.status == "pending")
    )


def interrupted_hsm_batches(session: Session, *, lease_seconds: float) -> list[int]:
    """Unfinished batches of HSM signers with letters pending whose lease has run out."""
    now = now_utc()
    rows = session.execute(
        select(SignBatch)
        .join(User, User.id == SignBatch.user_id)
        .where(
            SignBatch.finished_at.is_(None),
            User.signer_hsm_label.is_not(None),
            exists().where(
                SignBatchItem.batch_id == SignBatch.id, SignBatchItem.status == "pending"
            ),
        )
        .order_by(SignBatch.id)
    ).scalars()
    return [b.id for b in rows if batch_runs._interrupted(b, now, lease_seconds)]


def defer_batch(app: App, batch_id: int) -> bool:
    """Queue ``sd:sign.batch`` for a batch (at most one waiting per batch). By name, queue and
    lock on this app's own connection, whatever tasks it has: ``app.configure_task`` with a name
    the app does not know would queue it on the "default" queue that no worker takes, where it
    would also hold the batch's queueing lock and so keep the resume pass from queueing it."""
    deferrer = configure_task(
        name=f"{NAMESPACE}:sign.batch",
        job_manager=app.job_manager,
        queue=SIGN_QUEUE,
        queueing_lock=f"batch-{batch_id}",
    )
    try:
        deferrer.defer(batch_id=batch_id)
    except AlreadyEnqueued:
        return False
    return True


@tasks.periodic(cron="* * * * * */15", periodic_id="resume")
@tasks.task(name="sign.resume", queue=HOUSEKEEPING_QUEUE, retry=RETRY, pass_context=True)
def resume_interrupted(context, timestamp: int | None = None) -> int:
    ctx = _ctx()
    with transaction(ctx.services.factory) as session:
        found = interrupted_hsm_batches(session, lease_seconds=ctx.lease_seconds)
    return sum(defer_batch(context.app, batch_id) for batch_id in found)


@tasks.periodic(cron="* * * * *", periodic_id="stalled")
@tasks.task(name="jobs.retry_stalled", queue=HOUSEKEEPING_QUEUE, pass_context=True)
async def retry_stalled(context, timestamp: int | None = None) -> int:
    """Jobs left 'doing' by a worker that stopped beating (killed) are queued again."""
    stalled = await context.app.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=WORKER_ALIVE_SECONDS
    )
    count = 0
    for job in stalled:
        await context.app.job_manager.retry_job(job)
        count += 1
    return count


@tasks.periodic(cron="40 2 * * *", periodic_id="lta-refresh")
@tasks.task(name="letters.lta_refresh", queue=HOUSEKEEPING_QUEUE, retry=RETRY, queueing_lock="lta")
def lta_refresh(timestamp: int | None = None) -> int:
    """Daily: renew archival timestamps before their TSA certificate expires (PAdES B-LTA,
    engine.letters.lta_refresh); at most 2000 letters a run, the rest the next day."""
    from engine.letters.lta_refresh import refresh_archives
    from engine.people.users import Actor

    services = _ctx().services
    report = refresh_archives(
        services.factory,
        services.settings,
        actor=Actor.system("system:lta-refresh"),
        limit=2000,
    )
    return report.stored


# --------------------------------------------------------------------------- the web side


def worker_alive(session: Session) -> bool:
    """On PostgreSQL: has a queue worker beaten in the last WORKER_ALIVE_SECONDS? (False on
    SQLite, or when the queue's schema is not there.)"""
    if not is_postgres(session):
        return False
    since = now_utc() - timedelta(seconds=WORKER_ALIVE_SECONDS)
    with session.begin_nested():
        try:
            return bool(
                session.scalar(
                    text(
                        f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.procrastinate_workers "
                        "WHERE last_heartbeat > :since)"
                    ),
                    {"since": since},
                )
            )
        except sa_exc.ProgrammingError:
            return False


def queued(batch_id: int) -> str:
    """The lease owner of a batch handed to the queue, until a worker takes it over."""
    return f"queued:{batch_id}"


def hand_to_worker(services: Services, actor: Actor, requests, *, hsm: bool) -> int | None:
    """Start a batch for a queue worker when the signer's key is on the HSM and a worker is
    alive: the batch is leased to the queue (shown as signing; if no worker takes it within
    the lease, it shows interrupted and the next worker's resume pass takes it). None when
    the web process must run it (SQLite, a software key, no live worker)."""
    if not hsm:
        return None
    with transaction(services.factory) as session:
        if not worker_alive(session):
            return None
    batch_id = batches.start(services.issuer, actor, requests)
    batch_runs.claim(services.factory, batch_id, queued(batch_id), batch_runs.LEASE_SECONDS)
    app = App(connector=_connector(services.settings.database_url))  # defers only: no tasks
    with app.open():
        defer_batch(app, batch_id)
    return batch_id
