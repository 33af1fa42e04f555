"""Benchmark: archive search by part of a number and NIK prefix, and an operator's own requests
searched and paged, with 1,000,000 issued letters in PostgreSQL (seeded as bench/archive.py).

    .venv/bin/python bench/archive_search.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Works in a scratch database it creates next to the one given (dropped afterwards). Prints
p50/p95 per query and the plan PostgreSQL chose for the slowest kinds (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.archive import FIRST, LAST, LETTER_SQL, SEED_SQL, report, timed  # noqa: E402
from engine.bootstrap import seed_demo  # noqa: E402
from engine.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.letters import archive  # noqa: E402
from engine.requests import queues  # noqa: E402
from engine.requests.catalog import WorkflowCatalog  # noqa: E402
from engine.storage.db import session_factory, transaction  # noqa: E402
from engine.storage.migrate import upgrade  # noqa: E402
from engine.storage.models import Letter, User  # noqa: E402

GROGOL = "33.11.01.2001"


def seed(factory, uid: int, letters: int, open_requests: int) -> None:
    params = {
        "first": FIRST,
        "last": LAST,
        "sha": "0" * 64,
        "uid": uid,
        "letters": letters,
        "open": open_requests,
    }
    with transaction(factory) as session:
        session.execute(text(SEED_SQL), params)
        session.execute(text(LETTER_SQL), params)
        # Give the requests subjects (role -> NIK), as the app stores them.
        session.execute(
            text(
                "UPDATE requests SET subjects = json_build_object('applicant', "
                "'3311' || lpad(((id::bigint * 104729) % 1000000000000)::text, 12, '0'))"
            )
        )
    with factory.kw["bind"].connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("VACUUM ANALYZE requests"))
        conn.execute(text("VACUUM ANALYZE letters"))


def explain(factory, statement) -> str:
    """EXPLAIN ANALYZE of the statement as the engine runs it (bound parameters, not literals)."""
    with factory.kw["bind"].connect() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        rows = conn.exec_driver_sql("EXPLAIN ANALYZE " + str(compiled), compiled.params)
        return "\n".join(r[0] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server")
    parser.add_argument("--letters", type=int, default=1_000_000)
    parser.add_argument("--open-requests", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    scratch = f"bench_search_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(args.database_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{scratch}"'))
    url = make_url(args.database_url).set(database=scratch).render_as_string(False)
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    settings = Settings(
        url, "http://127.0.0.1:8000", tmp / "keys", PROJECT_ROOT / "workflows", "F4", None
    )
    try:
        upgrade(url)
        factory = session_factory(url)
        with transaction(factory) as session:
            seed_demo(session, settings.keys_dir)
            uid = session.scalar(select(User.id).where(User.username == "head.grogol"))
        t0 = time.perf_counter()
        seed(factory, uid, args.letters, args.open_requests)
        print(f"seeded {args.letters:,} letters in {time.perf_counter() - t0:.0f} s")
        catalog = WorkflowCatalog(settings.workflows_dir)
        with transaction(factory) as session:
            sample = session.execute(
                select(Letter.number, Letter.subject_nik)
                .where(Letter.village_code == GROGOL)
                .order_by(Letter.id.desc())
                .limit(1)
            ).one()
        seq = "/" + sample.number.split("/")[1] + "/"  # unique: ids are the sequence numbers

        def search(query):
            with transaction(factory) as session:
                return archive.search(session, query)

        def own(text_: str, after=None):
            with transaction(factory) as session:
                return queues.own_requests_page(session, catalog, uid, search=text_, after=after)

        cases = {
            "number part (rare), one village": archive.ArchiveQuery(GROGOL, number=seq),
            "number part (rare), whole regency": archive.ArchiveQuery(None, number=seq),
            "number part (common '/I/2025'), regency": archive.ArchiveQuery(None, number="/I/2025"),
            "NIK prefix 8 digits, one village": archive.ArchiveQuery(
                GROGOL, nik=sample.subject_nik[:8]
            ),
            "NIK prefix 10 digits, whole regency": archive.ArchiveQuery(
                None, nik=sample.subject_nik[:10]
            ),
            "full NIK, whole regency": archive.ArchiveQuery(None, nik=sample.subject_nik),
        }
        print(f"engine queries ({args.runs} runs each):")
        for name, query in cases.items():
            report(name, timed(lambda q=query: search(q), args.runs))
        first = own("")
        report("own requests, first page (1M rows, one user)", timed(lambda: own(""), args.runs))
        report(
            "own requests, second page",
            timed(lambda: own("", first.next_cursor), args.runs),
        )
        report("own requests, NIK prefix 10", timed(lambda: own(sample.subject_nik[:10]), 5))
        report("own requests, type 'umum'", timed(lambda: own("umum"), args.runs))
        if args.explain:
            for name in list(cases)[1:3]:
                print(f"--- {name}")
                q = cases[name]
                statement = (
                    archive._filtered(q)
                    .order_by(Letter.issued_at.desc(), Letter.id.desc())
                    .limit(archive.PAGE_SIZE + 1)
                )
                print(explain(factory, statement))
        print("target: p95 < 100 ms")
    finally:
        session_factory(url).kw["bind"].dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
