"""`suratdesa worker`: run queue jobs (engine.jobs.queue: notices, HSM batch signing, resuming
interrupted batches) on PostgreSQL. Start one on each machine that should do the work; they
share the queue in the database. Stop with Ctrl-C / SIGTERM (the job in hand finishes)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from engine.config import get_settings


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
    app.run_worker(
        queues=queues,
        concurrency=args.concurrency,
        name=name,
        wait=not args.once,
        delete_jobs="successful",
    )
    return 0


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
