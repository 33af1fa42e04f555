"""`suratdesa worker`: run queue jobs (engine.jobs.queue: notices, HSM batch signing, resuming
interrupted batches) on PostgreSQL. Start one on each machine that should do the work; they
share the queue in the database. Stop with Ctrl-C / SIGTERM (the job in hand finishes).

The process outlives its database: Procrastinate's worker stops itself when one of its side
tasks (the LISTEN connection, the heartbeat, the periodic deferrer) or a fetch meets a database
that went away (a PostgreSQL restart). Left alone the process would then exit, and a batch
interrupted by that restart would wait for a human. So the worker is run under ``_supervise``:
a stop nobody asked for (no signal, not ``--once``) starts the worker again once the database
answers, with a backoff (1, 2, 4 ... 30 s); its resume pass then queues the interrupted batch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from engine.config import get_settings

log = logging.getLogger("suratdesa.jobs")


def _pin(args: argparse.Namespace) -> str | None:
    """The HSM token PIN from a file only this worker's account can read (never the queue)."""
    if not args.hsm_pin_file:
        return None
    return Path(args.hsm_pin_file).read_text(encoding="utf-8").strip() or None


def cmd_worker(args: argparse.Namespace) -> int:
    from engine.jobs import queue
    from engine.services import Services

    settings = get_settings()
    if not settings.database_url.startswith("postgresql"):
        print(
            "Antrean tugas hanya ada di PostgreSQL. Dengan SQLite, tugas berjalan di proses web "
            "(`suratdesa serve`): worker tidak diperlukan.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # a line per glyph subset
    processes = args.sign_processes or os.cpu_count() or 1
    queue.bind(Services.from_settings(settings), _pin(args), args.lease_seconds, processes)
    app = queue.make_app(settings.database_url)
    queues = [q for q in (args.queues or ",".join(queue.QUEUES)).split(",") if q]
    name = f"{socket.gethostname()[:40]}:{os.getpid()}"
    print(
        f"Worker {name}: antrean {', '.join(queues)}; {processes} proses penandatanganan per "
        "batch; Ctrl-C untuk berhenti.",
        flush=True,
    )
    options = {
        "queues": queues,
        "concurrency": args.concurrency,
        "name": name,
        "wait": not args.once,
        "delete_jobs": "successful",
    }
    asyncio.run(_supervise(app, options))
    return 0


async def _run_once(app, options: dict) -> None:
    async with app.open_async():  # a fresh connection pool for each start
        await app.run_worker_async(install_signal_handlers=False, **options)


async def _supervise(app, options: dict) -> None:
    """Run the worker until SIGTERM / SIGINT (or, with ``--once``, until the queues are empty);
    start it again whenever it stops by itself (its database went away). The first signal
    stops it gracefully (Procrastinate finishes the jobs in hand when its run is cancelled);
    a second one has the default effect."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    current: list[asyncio.Task] = []

    def on_signal() -> None:
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for task in current:
            task.cancel()

    async with app.open_async():  # a wrong URL or no queue schema at the start: exit, as before
        if not await app.check_connection_async():
            raise RuntimeError("no job queue in this database: run `suratdesa db upgrade`")
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    delay = 1.0
    while not stop.is_set():
        run = asyncio.create_task(_run_once(app, options))
        current[:] = [run]
        started = loop.time()
        try:
            await run
        except asyncio.CancelledError:
            if stop.is_set():
                return
            raise
        except Exception:  # noqa: BLE001 - the database is away: opening or closing failed
            if not options["wait"]:
                raise  # --once: report it, as before
            log.warning("the queue worker failed", exc_info=True)
        if stop.is_set() or not options["wait"]:
            return
        if loop.time() - started > 60:
            delay = 1.0  # it ran for a while: a new outage, not the same one
        log.warning("the queue worker stopped by itself (database lost?): again in %.0f s", delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 30.0)


def add_worker_command(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "worker", help="run queue jobs on PostgreSQL: notices, HSM batch signing (docs/jobs.md)"
    )
    s.add_argument("--queues", help="comma-separated: sign,notify,housekeeping (default: all)")
    s.add_argument(
        "--concurrency", type=int, default=4, help="jobs run at once by this worker (threads)"
    )
    s.add_argument(
        "--hsm-pin-file",
        help="file holding the HSM token PIN: this worker then signs HSM batches by itself",
    )
    s.add_argument(
        "--sign-processes",
        type=int,
        help="processes that render and sign one batch (default: every core of this machine)",
    )
    s.add_argument("--once", action="store_true", help="stop when the queues are empty")
    s.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        help="a batch this worker runs counts as interrupted this long after it stops renewing",
    )
    s.set_defaults(func=cmd_worker)
