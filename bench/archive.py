"""Benchmark: the staff archive and queue pages with 1,000,000 issued letters in PostgreSQL.

    .venv/bin/python bench/archive.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Works in a scratch database it creates next to the one given (dropped afterwards). Seeds with
INSERT ... SELECT generate_series (not the ORM): 1,000,000 issued letters over the 167 villages
and three years, plus open requests for the queues. Then times, p50/p95 over repeated runs:
the engine queries (archive search by village, name, NIK, number, a deep keyset page; the review
queue) and the whole HTML pages through the app (signed-in TestClient, templates included).
Baseline in the same run: the same deep page fetched with OFFSET, as a naive archive would.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine.bootstrap import DEMO_PASSWORD, seed_demo  # noqa: E402
from engine.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.letters import archive  # noqa: E402
from engine.requests import queues  # noqa: E402
from engine.storage.db import session_factory, transaction  # noqa: E402
from engine.storage.migrate import upgrade  # noqa: E402
from engine.storage.models import Letter, User  # noqa: E402
from suratdesa.web import create_app  # noqa: E402

GROGOL = "33.11.01.2001"
FIRST = [
    "Budi",
    "Siti",
    "Agus",
    "Sri",
    "Joko",
    "Dewi",
    "Slamet",
    "Wulan",
    "Eko",
    "Rina",
    "Hadi",
    "Yuni",
    "Teguh",
    "Ratna",
    "Bambang",
    "Endang",
    "Sigit",
    "Tri",
    "Wahyu",
    "Lestari",
]
LAST = [
    "Santoso",
    "Rahayu",
    "Wibowo",
    "Lestari",
    "Saputra",
    "Utami",
    "Prasetyo",
    "Handayani",
    "Nugroho",
    "Wulandari",
    "Setiawan",
    "Kurniawati",
    "Hidayat",
    "Purnomo",
    "Susanti",
]

SEED_SQL = """
WITH v AS (SELECT array_agg(code ORDER BY code) AS codes FROM villages)
INSERT INTO requests (id, village_code, workflow_id, workflow_version, workflow_sha256, state,
                      subjects, data, version, created_by_id, created_at, updated_at)
SELECT g, v.codes[1 + g % 167], 'surat-keterangan-umum', 1, :sha,
       CASE WHEN g <= :letters THEN 'issued'
            ELSE (ARRAY['draft', 'review', 'signing'])[1 + g % 3] END,
       '{}'::json, '{}'::json, 4, :uid,
       timestamptz '2024-01-01 00:00+07' + ((g::bigint * 7919) % 94608000) * interval '1 second',
       timestamptz '2024-01-01 00:00+07' + ((g::bigint * 7919) % 94608000) * interval '1 second'
FROM generate_series(1, :letters + :open) g, v
"""
LETTER_SQL = """
WITH n AS (SELECT CAST(:first AS text[]) AS first, CAST(:last AS text[]) AS last)
INSERT INTO letters (id, request_id, village_code, workflow_id, title, classification, year, seq,
                     number, verify_code, subject_name, subject_nik, signer_id, signer_name,
                     signer_capacity, issued_at, pdf, pdf_sha256, status)
SELECT r.id, r.id, r.village_code, r.workflow_id, 'Surat Keterangan Umum', '470',
       extract(year FROM r.created_at)::int, r.id,
       '470/' || r.id || '/' || r.village_code || '/I/' || extract(year FROM r.created_at)::int,
       upper(substr(md5(r.id::text), 1, 32)),
       n.first[1 + r.id % 20] || ' ' || n.last[1 + (r.id / 20) % 15] || ' ' || (r.id % 997),
       '3311' || lpad(((r.id::bigint * 104729) % 1000000000000)::text, 12, '0'),
       :uid, 'Kepala Contoh', 'KEPALA DESA CONTOH', r.created_at, '\\x00'::bytea,
       md5(r.id::text) || md5('x' || r.id::text), 'active'
FROM requests r, n WHERE r.id <= :letters
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def timed(fn, runs: int) -> list[float]:
    fn()  # warm caches, as a page served all day would be
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def report(name: str, samples: list[float]) -> None:
    print(f"  {name:48} p50 {pct(samples, 0.5):7.1f} ms   p95 {pct(samples, 0.95):7.1f} ms")


def signed_in(app, username: str) -> TestClient:
    client = TestClient(app)
    page = client.get("/staf/masuk")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post(
        "/staf/masuk",
        data={"username": username, "password": DEMO_PASSWORD, "csrf": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server")
    parser.add_argument("--letters", type=int, default=1_000_000)
    parser.add_argument("--open-requests", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()

    scratch = f"bench_archive_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(args.database_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{scratch}"'))
    url = make_url(args.database_url).set(database=scratch).render_as_string(False)
    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-"))
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
        params = {
            "first": FIRST,
            "last": LAST,
            "sha": "0" * 64,
            "uid": uid,
            "letters": args.letters,
            "open": args.open_requests,
        }
        with transaction(factory) as session:
            session.execute(text(SEED_SQL), params)
            session.execute(text(LETTER_SQL), params)
            for table in ("requests", "letters"):
                session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        with factory.kw["bind"].connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE requests"))
            conn.execute(text("VACUUM ANALYZE letters"))
        seeded = time.perf_counter() - t0
        with transaction(factory) as session:
            n = session.scalar(select(text("count(*)")).select_from(Letter))
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, PostgreSQL"
        )
        print(f"seeded {n:,} letters + {args.open_requests:,} open requests in {seeded:.0f} s")

        services = create_app(settings).state.services
        catalog = services.catalog
        one = archive.ArchiveQuery(village_code=GROGOL)
        regency = archive.ArchiveQuery(village_code=None)
        with transaction(factory) as session:
            sample = session.execute(
                select(Letter.number, Letter.subject_nik)
                .where(Letter.village_code == GROGOL)
                .order_by(Letter.id.desc())
                .limit(1)
            ).one()
            # A cursor deep into the regency-wide archive (page 1001 of 1M = OFFSET 50,000).
            depth = min(1000, n // (2 * archive.PAGE_SIZE))
            deep = session.execute(
                select(Letter.issued_at, Letter.id)
                .order_by(Letter.issued_at.desc(), Letter.id.desc())
                .offset(depth * archive.PAGE_SIZE - 1)
                .limit(1)
            ).one()
        cursor = f"{deep[0].isoformat()}_{deep[1]}"

        def run_search(query, after=None):
            with transaction(factory) as session:
                return archive.search(session, query, after=after)

        def offset_page():
            with transaction(factory) as session:
                return session.execute(
                    archive._filtered(regency)
                    .order_by(Letter.issued_at.desc(), Letter.id.desc())
                    .offset(depth * archive.PAGE_SIZE - 1)
                    .limit(archive.PAGE_SIZE)
                ).all()

        def run_queue():
            with transaction(factory) as session:
                return queues.queue(session, catalog, GROGOL, "sekdes")

        print(f"engine queries ({args.runs} runs each):")
        report("archive, one village, first page", timed(lambda: run_search(one), args.runs))
        report(
            "archive, name 'Budi Santoso', one village",
            timed(lambda: run_search(archive.ArchiveQuery(GROGOL, name="Budi Santoso")), args.runs),
        )
        report(
            "archive, name 'Budi Santoso', whole regency",
            timed(lambda: run_search(archive.ArchiveQuery(None, name="Budi Santoso")), args.runs),
        )
        report(
            "archive, by NIK",
            timed(
                lambda: run_search(archive.ArchiveQuery(GROGOL, nik=sample.subject_nik)), args.runs
            ),
        )
        report(
            "archive, by number",
            timed(
                lambda: run_search(archive.ArchiveQuery(GROGOL, number=sample.number)), args.runs
            ),
        )
        keyset = timed(lambda: run_search(regency, after=cursor), args.runs)
        offset = timed(offset_page, args.runs)
        report(f"archive, regency, page {depth + 1} by keyset (ours)", keyset)
        report(f"archive, regency, page {depth + 1} by OFFSET (baseline)", offset)
        print(
            f"  OFFSET/keyset at p50: {statistics.median(offset) / statistics.median(keyset):.0f}x"
        )
        report("review queue, sekdes of one village", timed(run_queue, args.runs))

        app = create_app(settings)
        operator = signed_in(app, "operator.grogol")
        sekdes = signed_in(app, "sekdes.grogol")
        print(f"whole pages through the app, HTML rendered ({args.runs} runs each):")
        report(
            "GET /staf/arsip (operator, one village)",
            timed(lambda: operator.get("/staf/arsip"), args.runs),
        )
        report(
            "GET /staf/arsip?nama=Budi+Santoso",
            timed(lambda: operator.get("/staf/arsip", params={"nama": "Budi Santoso"}), args.runs),
        )
        report("GET /staf/antrean (sekdes)", timed(lambda: sekdes.get("/staf/antrean"), args.runs))
        print("target: p95 < 100 ms")
    finally:
        session_factory(url).kw["bind"].dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
