"""`suratdesa letters ...`: maintenance of issued letters. `lta-refresh` renews the archival
timestamps (PAdES B-LTA) of the letters that need it: engine.letters.lta_refresh, which the
worker also runs daily (engine.jobs.queue)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from engine.config import get_settings
from engine.storage.db import session_factory, transaction
from suratdesa.cli_common import BY_HELP, _actor


def cmd_letters_lta_refresh(args: argparse.Namespace) -> int:
    from engine.letters.lta_refresh import refresh_archives

    settings = get_settings()
    factory = session_factory(settings.database_url)
    with transaction(factory) as session:
        actor = _actor(session, args.by)
    report = refresh_archives(
        factory,
        settings,
        actor=actor,
        window=timedelta(days=args.window_days),
        limit=args.limit,
    )
    print(
        f"{report.examined} surat diperiksa: {report.refreshed} diperbarui, "
        f"{report.upgraded} ditingkatkan ke B-LTA, {report.fresh} masih berlaku, "
        f"{report.tsa_expiring} tertunda (sertifikat TSA), {report.changed} berubah, "
        f"{report.failed} gagal."
    )
    if report.tsa_expiring:
        print(
            "Sertifikat TSA saat ini berakhir "
            f"{report.tsa_not_after:%d-%m-%Y}: perbarui sertifikat TSA (docs/pki.md).",
            file=sys.stderr,
        )
    for error in report.errors:
        print(f"- {error}", file=sys.stderr)
    return 1 if report.failed else 0


def add_letters_commands(letters: argparse._SubParsersAction) -> None:
    s = letters.add_parser(
        "lta-refresh",
        help="add a fresh archival timestamp (PAdES B-LTA) to letters whose last one is "
        "about to lose its TSA certificate",
    )
    s.add_argument(
        "--window-days",
        type=int,
        default=365,
        help="renew when the last timestamp's TSA certificate expires within this many days",
    )
    s.add_argument("--limit", type=int, help="renew at most this many letters in this run")
    s.add_argument("--by", help=BY_HELP)
    s.set_defaults(func=cmd_letters_lta_refresh)
