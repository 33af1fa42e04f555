"""Benchmark: a province or national deployment, N letters across V villages in PostgreSQL.

    .venv/bin/python bench/scale.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench_scale
        [--letters 10000000] [--villages 84000] [--runs 200] [--drop]

Defaults are the national scale (10,000,000 letters, about 84,000 desa and kelurahan); say
``--letters 200000 --villages 2000`` for a quick run. The database named in the URL is created
if missing and seeded (reused when it already holds N letters over V villages); ``--drop``
drops it at the end.

Seeding is SQL only (``INSERT ... SELECT generate_series``, never the ORM per row), in chunks of
``--chunk`` letters per transaction, with ``synchronous_commit`` off for the loading session and
the tables' secondary indexes dropped during the load and rebuilt after it (their definitions are
read from ``pg_indexes`` and recreated exactly; constraint indexes such as the unique number and
verify code stay, so every row is still checked). The demo seed supplies Kabupaten Sukoharjo's
167 villages and the staff accounts; the other villages are synthetic (kecamatan codes 91.xx.xx
and up, 12 villages each). Letters are spread evenly over the villages and over January 2023 to
November 2026, eleven letter types, 30% started online, 80% handed over.

**The PDF column is one small shared placeholder** (``PLACEHOLDER``, 38 bytes), not a signed
letter: seeding 10,000,000 real PDFs would take about 440 GB. The size report therefore prints
the measured size and, separately, an estimate with real letters (N x 43,752 bytes, the one-page
letter measured in docs/performance.md; signed PDFs are already compressed, so TOAST does not
shrink them).

Then measures, p50/p95 over ``--runs`` random letters or villages:
  - the QR lookup ``/v/{code}``: ``engine.letters.public.scan`` (the one statement a scan costs,
    with the shared rate-limit count) on an autocommit connection as the portal reads, and the
    whole page through the ASGI app (Starlette TestClient, rate limit raised);
  - the archive (``engine.letters.archive.search``): one village's first page, by number, by
    NIK, and a name searched over every village;
  - the public statistics (``engine.letters.statistics.compute``) for 2026, the whole
    deployment and one kecamatan, after the rollup's backfill (timed);
  - size on disk: ``pg_total_relation_size`` of letters and requests, and the database.
The load average is printed before and after: other work may share the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.archive import FIRST, LAST  # noqa: E402 - the same sample names
from engine.bootstrap import seed_demo  # noqa: E402
from engine.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.letters import archive, public  # noqa: E402
from engine.letters import statistics as stats  # noqa: E402
from engine.letters.statistics_rollup import catch_up  # noqa: E402
from engine.requests.workflows import load_workflows  # noqa: E402
from engine.storage.db import session_factory, transaction  # noqa: E402
from engine.storage.migrate import upgrade  # noqa: E402
from engine.storage.models import User  # noqa: E402
from suratdesa.web import create_app  # noqa: E402

PLACEHOLDER = b"%PDF-1.7\n% bench/scale.py placeholder\n"  # 38 bytes, the same in every row
REAL_PDF_BYTES = 43_752  # one-page signed letter, docs/performance.md ("Public portal")
SPAN_SECONDS = 122_000_000  # 2023-01-01 to late November 2026
VILLAGES_PER_DISTRICT = 12

DISTRICTS_SQL = """
INSERT INTO districts (code, name)
SELECT (91 + i / 9801)::text || '.' || lpad((1 + (i / 99) % 99)::text, 2, '0') || '.'
         || lpad((1 + i % 99)::text, 2, '0'),
       'Kecamatan Uji ' || i
FROM generate_series(0, CAST(:districts AS integer) - 1) i
ON CONFLICT DO NOTHING
"""
VILLAGES_SQL = """
INSERT INTO villages (code, name, kind, district_code, postal_code, address)
SELECT d.code || '.' || (2001 + k % :per), 'Uji ' || k,
       CASE WHEN k % 10 = 0 THEN 'kelurahan' ELSE 'desa' END, d.code, '57000', ''
FROM generate_series(0, CAST(:villages AS integer) - 1) k
JOIN (SELECT row_number() OVER (ORDER BY code) - 1 AS i, code
      FROM districts WHERE code >= '91') d ON d.i = k / :per
ON CONFLICT DO NOTHING
"""
# Valid verify codes ([A-Z2-7]{32}): md5's hex with 0, 1, 8, 9 mapped to W, X, Y, Z.
CODE_SQL = "translate(upper(md5('scale' || {id}::text)), '0189', 'WXYZ')"
REQUESTS_SQL = """
INSERT INTO requests (id, village_code, workflow_id, workflow_version, workflow_sha256, state,
                      subjects, data, version, created_by_id, created_at, updated_at, channel)
SELECT g, (CAST(:codes AS text[]))[1 + (g * 31) % :nvillages],
       (CAST(:types AS text[]))[1 + (g * 7) % :ntypes], 1, :sha, 'issued', '{}'::json,
       '{"keperluan": "Uji skala"}'::json, 4, :uid,
       timestamptz '2023-01-01 00:00+07' + ((g::bigint * 7919) % :span) * interval '1 second',
       timestamptz '2023-01-01 00:00+07' + ((g::bigint * 7919) % :span) * interval '1 second',
       CASE WHEN g % 10 < 3 THEN 'warga' ELSE 'loket' END
FROM generate_series(CAST(:lo AS integer), CAST(:hi AS integer)) g
"""
LETTERS_SQL = f"""
WITH t AS (SELECT CAST(:types AS text[]) AS ids, CAST(:titles AS text[]) AS titles,
                  CAST(:classes AS text[]) AS classes)
INSERT INTO letters (id, request_id, village_code, workflow_id, title, classification, year, seq,
                     number, verify_code, subject_name, subject_nik, signer_id, signer_name,
                     signer_capacity, issued_at, pdf, pdf_sha256, status, handed_over_at)
SELECT s.id, s.id, s.village_code, s.workflow_id, t.titles[s.k], t.classes[s.k],
       extract(year FROM s.issued_at AT TIME ZONE 'Asia/Jakarta')::int, s.id,
       t.classes[s.k] || '/' || s.id || '/' || s.village_code || '/'
         || extract(year FROM s.issued_at AT TIME ZONE 'Asia/Jakarta')::int,
       {CODE_SQL.format(id="s.id")},
       (CAST(:first AS text[]))[1 + s.id % 20] || ' '
         || (CAST(:last AS text[]))[1 + (s.id / 20) % 15] || ' ' || (s.id % 997),
       '3311' || lpad(((s.id::bigint * 104729) % 1000000000000)::text, 12, '0'),
       :uid, 'Kepala Contoh', 'KEPALA DESA CONTOH', s.issued_at, :pdf,
       md5(s.id::text) || md5('x' || s.id::text), 'active',
       CASE WHEN s.id % 5 <> 0
            THEN s.issued_at + ((s.id::bigint * 977) % 172800) * interval '1 second' END
FROM (SELECT r.id, r.village_code, r.workflow_id, array_position(t.ids, r.workflow_id) AS k,
             r.created_at + (600 + (r.id::bigint * 131) % 259200) * interval '1 second'
               AS issued_at
      FROM requests r, t WHERE r.id BETWEEN :lo AND :hi) s, t
"""


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def report(name: str, samples: list[float]) -> None:
    print(f"  {name:52} p50 {pct(samples, 0.5):8.1f} ms   p95 {pct(samples, 0.95):8.1f} ms")


def timed(fn, args: list) -> list[float]:
    fn(args[0])  # warm up once, as a server running all day would be
    out = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        out.append(time.perf_counter() - t)
    return out


def ensure_database(url: str) -> bool:
    """Create the database of ``url`` if missing; whether it was created."""
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return not exists


def drop_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def secondary_indexes(conn) -> list[tuple[str, str]]:
    """(name, definition) of letters' and requests' indexes that back no constraint."""
    return list(
        conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename IN ('letters', 'requests') AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint)"
            )
        ).all()
    )


def seeded(url: str, letters: int, villages: int) -> bool:
    """The database already holds exactly this seed (and its indexes): reuse it."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            done = conn.scalar(text("SELECT to_regclass('public.bench_scale_done') IS NOT NULL"))
            if not done:
                return False
            row = conn.execute(text("SELECT letters, villages FROM bench_scale_done")).one()
            return tuple(row) == (letters, villages)
    finally:
        engine.dispose()


def seed(url: str, keys_dir: Path, letters: int, villages: int, chunk: int) -> dict[str, float]:
    """Seed a freshly migrated, empty database; the seconds each part took."""
    upgrade(url)
    factory = session_factory(url)
    engine = factory.kw["bind"]
    with transaction(factory) as session:
        seed_demo(session, keys_dir)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with transaction(factory) as session:
        extra = max(0, villages - session.scalar(text("SELECT count(*) FROM villages")))
        districts = -(-extra // VILLAGES_PER_DISTRICT)
        session.execute(text(DISTRICTS_SQL), {"districts": districts})
        session.execute(text(VILLAGES_SQL), {"villages": extra, "per": VILLAGES_PER_DISTRICT})
        codes = list(
            session.scalars(
                text("SELECT code FROM villages ORDER BY code LIMIT :n"), {"n": villages}
            )
        )
        uid = session.scalar(select(User.id).where(User.username == "head.grogol"))
    timings["villages"] = time.perf_counter() - t0
    specs = sorted(load_workflows(PROJECT_ROOT / "workflows").values(), key=lambda s: s.id)
    params = {
        "codes": codes,
        "nvillages": len(codes),
        "types": [s.id for s in specs],
        "titles": [s.title for s in specs],
        "classes": [s.classification for s in specs],
        "ntypes": len(specs),
        "sha": "0" * 64,
        "uid": uid,
        "span": SPAN_SECONDS,
        "first": FIRST,
        "last": LAST,
        "pdf": PLACEHOLDER,
    }
    with engine.connect() as conn:
        indexes = secondary_indexes(conn)
        conn.commit()  # the read above began a transaction
        with conn.begin():
            for name, _definition in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
        t0 = time.perf_counter()
        try:
            for lo in range(1, letters + 1, chunk):
                hi = min(letters, lo + chunk - 1)
                with conn.begin():
                    conn.execute(text("SET LOCAL synchronous_commit = off"))
                    conn.execute(text(REQUESTS_SQL), {**params, "lo": lo, "hi": hi})
                    conn.execute(text(LETTERS_SQL), {**params, "lo": lo, "hi": hi})
                print(f"  seeded {hi:,} / {letters:,} letters ({time.perf_counter() - t0:.0f} s)")
            timings["rows"] = time.perf_counter() - t0
        finally:  # the indexes come back even when the load fails
            if conn.in_transaction():
                conn.rollback()
            t0 = time.perf_counter()
            with conn.begin():
                conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
                for _name, definition in indexes:
                    again = re.sub(
                        r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX IF NOT EXISTS ", definition
                    )
                    conn.execute(text(again))
                for table in ("requests", "letters"):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
        timings[f"{len(indexes)} secondary indexes rebuilt"] = time.perf_counter() - t0
        with conn.begin():
            conn.execute(text("CREATE TABLE bench_scale_done (letters bigint, villages int)"))
            conn.execute(
                text("INSERT INTO bench_scale_done VALUES (:n, :v)"), {"n": letters, "v": villages}
            )
    t0 = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as auto:
        auto.execute(text("VACUUM ANALYZE requests"))
        auto.execute(text("VACUUM ANALYZE letters"))
    timings["vacuum analyze"] = time.perf_counter() - t0
    engine.dispose()
    return timings


def sizes(conn) -> None:
    row = conn.execute(
        text(
            "SELECT pg_total_relation_size('letters'), pg_total_relation_size('requests'), "
            "pg_database_size(current_database()), (SELECT count(*) FROM letters)"
        )
    ).one()
    letters_size, requests_size, database, n = row
    gib, mib = 1024**3, 1024**2
    print("size on disk (pg_total_relation_size, indexes and TOAST included):")
    for name, size in (("letters", letters_size), ("requests", requests_size)):
        print(f"  {name:9} {size / mib:10,.0f} MiB  ({size / max(n, 1):,.0f} bytes a letter)")
    print(f"  database  {database / mib:10,.0f} MiB")
    real = n * (REAL_PDF_BYTES - len(PLACEHOLDER))
    print(
        f"  with real signed PDFs (+{n:,} x {REAL_PDF_BYTES - len(PLACEHOLDER):,} bytes): "
        f"database about {(database + real) / gib:,.1f} GiB"
    )


def measure(settings: Settings, runs: int) -> None:
    url = settings.database_url
    rng = random.Random(12)
    reader = create_engine(url, isolation_level="AUTOCOMMIT")
    factory = session_factory(url)
    with reader.connect() as conn:
        n = conn.scalar(text("SELECT max(id) FROM letters"))
        ids = [rng.randint(1, n) for _ in range(runs)]
        codes = list(
            conn.scalars(
                text(f"SELECT {CODE_SQL.format(id='i')} FROM unnest(CAST(:ids AS int[])) i"),
                {"ids": ids},
            )
        )
        samples = conn.execute(
            text("SELECT village_code, number, subject_nik FROM letters WHERE id = ANY(:ids)"),
            {"ids": ids},
        ).all()
    # The statistics name kecamatan and villages from engine/data (Kabupaten Sukoharjo), so a
    # kecamatan filter must be one of those; the synthetic villages count in the totals only.
    district = "33.11.01"

    print(f"QR lookup /v/{{code}} ({runs} random letters):")

    def scan(code: str) -> None:
        with reader.connect() as conn:
            letter, _shared = public.scan(conn, code, ("v", "bench", 0))
            assert letter is not None, code

    report("engine.letters.public.scan (one statement)", timed(scan, codes))
    client = TestClient(create_app(replace(settings, rate_v_per_minute=10_000_000)))

    def page(code: str) -> None:
        r = client.get(f"/v/{code}")
        assert r.status_code == 200 and "ASLI" in r.text, r.status_code

    report("GET /v/{code} through the app (TestClient)", timed(page, codes))
    client.app.state.portal.counter.flush()  # its flusher thread then has nothing left to write

    print(f"archive, engine.letters.archive.search ({len(samples)} random letters' fields):")

    def search(q: archive.ArchiveQuery) -> None:
        with transaction(factory) as session:
            archive.search(session, q)

    report(
        "one village, first page",
        timed(search, [archive.ArchiveQuery(village_code=s.village_code) for s in samples]),
    )
    report(
        "one village, by number",
        timed(search, [archive.ArchiveQuery(s.village_code, number=s.number) for s in samples]),
    )
    report(
        "one village, by NIK",
        timed(search, [archive.ArchiveQuery(s.village_code, nik=s.subject_nik) for s in samples]),
    )
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(max(10, runs // 10))]
    report(
        f"name over every village ({len(names)} names)",
        timed(search, [archive.ArchiveQuery(None, name=name) for name in names]),
    )

    print("public statistics, engine.letters.statistics.compute, year 2026:")
    t0 = time.perf_counter()
    done = catch_up(factory.kw["bind"])  # one transaction per step, as the command runs
    print(
        f"  rollup backfill (suratdesa stats refresh): {time.perf_counter() - t0:.1f} s, "
        f"{done.letters:,} letters, {done.handovers:,} hand-overs"
    )
    titles = {s.id: s.title for s in load_workflows(PROJECT_ROOT / "workflows").values()}

    def compute(district_code: str | None) -> None:
        with reader.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                stats.compute(conn, 2026, district_code, titles)

    cold = max(5, runs // 10)
    report(f"whole deployment ({cold} runs)", timed(compute, [None] * cold))
    report(f"one kecamatan ({cold} runs)", timed(compute, [district] * cold))
    with reader.connect() as conn:
        sizes(conn)
    reader.dispose()
    factory.kw["bind"].dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL, with a database name")
    parser.add_argument("--letters", type=int, default=10_000_000)
    parser.add_argument("--villages", type=int, default=84_000)
    parser.add_argument("--runs", type=int, default=200, help="samples per measurement")
    parser.add_argument("--chunk", type=int, default=500_000, help="letters per transaction")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    args = parser.parse_args()
    if make_url(args.database_url).get_backend_name() != "postgresql":
        parser.error("--database-url must be PostgreSQL")

    url = make_url(args.database_url).render_as_string(False)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    settings = Settings(
        url, "http://127.0.0.1:8000", tmp / "keys", PROJECT_ROOT / "workflows", "F4", None
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, PostgreSQL"
    )
    print(f"load average before: {load()}")
    created = ensure_database(url)
    try:
        t0 = time.perf_counter()
        if not created and not seeded(url, args.letters, args.villages):
            drop_database(url)  # another seed, or an unfinished one: start from scratch
            created = ensure_database(url)
        timings = (
            {}
            if not created
            else seed(url, settings.keys_dir, args.letters, args.villages, args.chunk)
        )
        if timings:
            print(
                f"seeded {args.letters:,} letters over {args.villages:,} villages in "
                f"{time.perf_counter() - t0:.0f} s ("
                + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
                + ")"
            )
        else:
            print("database reused: already seeded with these letters and villages")
        with create_engine(url).connect() as conn:
            server = conn.scalar(text("SHOW server_version"))
            buffers = conn.scalar(text("SHOW shared_buffers"))
        print(f"PostgreSQL {server}, shared_buffers {buffers}; load average now: {load()}")
        measure(settings, args.runs)
        print(f"load average after: {load()}")
    finally:
        if args.drop:
            drop_database(url)
            print(f"dropped {make_url(url).database}")


if __name__ == "__main__":
    main()
