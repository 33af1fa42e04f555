"""`suratdesa notify ...`: deliver notices from a worker process, see the outbox, set where a
staff member's notices go."""

from __future__ import annotations

import argparse
import signal
import threading

from engine.config import get_settings
from engine.storage.db import session_factory, transaction
from suratdesa.cli_common import BY_HELP, _actor


def cmd_notify_run(args: argparse.Namespace) -> int:
    from engine.notify.dispatcher import BackgroundDispatcher, Dispatcher

    settings = get_settings()
    dispatcher = Dispatcher(session_factory(settings.database_url), settings)
    if not args.loop:
        report = dispatcher.run_once()
        print(
            f"{report.claimed} diambil: {report.sent} terkirim, {report.retrying} dicoba lagi "
            f"nanti, {report.failed} gagal."
        )
        return 0
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    worker = BackgroundDispatcher(dispatcher, args.poll or settings.notify_poll_seconds).start()
    print(f"Mengirim pemberitahuan ({dispatcher.worker}); Ctrl-C untuk berhenti.", flush=True)
    done.wait()
    worker.stop()
    return 0


def cmd_notify_status(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from engine.storage.models import Notice

    with transaction(session_factory()) as session:
        rows = session.execute(
            select(Notice.transport, Notice.status, func.count())
            .group_by(Notice.transport, Notice.status)
            .order_by(Notice.transport, Notice.status)
        ).all()
        for transport, status, count in rows:
            print(f"{transport:8} {status:8} {count}")
        failed = session.scalars(
            select(Notice).where(Notice.status == "failed").order_by(Notice.id.desc()).limit(10)
        ).all()
        for notice in failed:
            print(f"gagal #{notice.id} {notice.transport} -> {notice.address}: {notice.last_error}")
    return 0


def cmd_notify_contact(args: argparse.Namespace) -> int:
    from engine.notify.outbox import set_contact
    from engine.people.users import get_user

    with transaction(session_factory()) as session:
        user = get_user(session, args.username)
        set_contact(session, _actor(session, args.by), user, email=args.email, phone=args.phone)
        print(f"Kontak {user.username}: surel {user.email or '-'}, telepon {user.phone or '-'}.")
    return 0


def add_notify_commands(notify: argparse._SubParsersAction) -> None:
    s = notify.add_parser("run", help="deliver due notices: one pass, or --loop until stopped")
    s.add_argument("--loop", action="store_true", help="keep delivering (a worker process)")
    s.add_argument(
        "--poll", type=float, help="seconds between looks (SURATDESA_NOTIFY_POLL_SECONDS)"
    )
    s.set_defaults(func=cmd_notify_run)
    notify.add_parser(
        "status", help="notices by transport and status; recent failures"
    ).set_defaults(func=cmd_notify_status)
    s = notify.add_parser("contact", help="set a staff member's e-mail / phone for notices")
    s.add_argument("username")
    s.add_argument("--email", help='e-mail address ("" clears it)')
    s.add_argument("--phone", help='phone number for the messaging gateway ("" clears it)')
    s.add_argument("--by", metavar="ADMIN", help=BY_HELP)
    s.set_defaults(func=cmd_notify_contact)
