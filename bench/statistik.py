"""Benchmark: the public statistics (/statistik, /statistik.json) with 1,000,000 letters in
PostgreSQL.

    .venv/bin/python bench/statistik.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
        [--letters 1000000] [--requests 200] [--cold 30] [--drop]

Works in a database of its own, ``bench_statistik`` on the given server: created and seeded if
missing, reused if it already holds the letters (say ``--drop`` to drop it at the end). Seeds
with INSERT ... SELECT generate_series (not the ORM): N issued letters over the 167 villages of
engine/data/sukoharjo.csv, every letter type in workflows/, four years of months (2023 to
November 2026), both channels (about 30% "warga"), 0-72 h from request to signature and, for
four letters in five, 0-48 h to hand-over.

Then runs the one-off backfill of the statistics rollup, `suratdesa stats refresh` (migration
0018; timed, as a separate process), and measures, through the real ASGI app (Starlette's
TestClient, every middleware included, the rate limit on but with its ceiling raised):
  - fresh: the very first request of a fresh process (--fresh processes, each creating the app
    and asking its first /statistik or /statistik.json, no warm-up of any kind);
  - cold: the figures computed for every request (the per-process cache's TTL set to 0), over
    the years and kecamatan filters in turn, each computation also trying its bounded refresh;
  - warm: N requests of the default page as served (figures kept CACHE_SECONDS per process);
for the HTML page and the JSON download each; p50/p95/p99. Prints the load average, since other
work may share the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine import regions  # noqa: E402
from engine.bootstrap import seed_demo  # noqa: E402
from engine.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.letters.statistics import StatisticsCache  # noqa: E402
from engine.requests.workflows import load_workflows  # noqa: E402
from engine.storage.db import session_factory, transaction  # noqa: E402
from engine.storage.migrate import upgrade  # noqa: E402
from engine.storage.models import User  # noqa: E402
from suratdesa.web import create_app  # noqa: E402

DATABASE = "bench_statistik"
SPAN_SECONDS = 122_000_000  # 2023-01-01 to late November 2026

REQUESTS_SQL = """
WITH v AS (SELECT array_agg(code ORDER BY code) AS codes FROM villages)
INSERT INTO requests (id, village_code, workflow_id, workflow_version, workflow_sha256, state,
                      subjects, data, version, created_by_id, created_at, updated_at, channel)
SELECT g, v.codes[1 + (g * 31) % 167], (CAST(:types AS text[]))[1 + (g * 7) % :ntypes], 1,
       :sha, 'issued', '{}'::json, '{}'::json, 4, :uid,
       timestamptz '2023-01-01 00:00+07' + ((g::bigint * 7919) % :span) * interval '1 second',
       timestamptz '2023-01-01 00:00+07' + ((g::bigint * 7919) % :span) * interval '1 second',
       CASE WHEN g % 10 < 3 THEN 'warga' ELSE 'loket' END
FROM generate_series(1, :letters) g, v
"""
LETTERS_SQL = """
WITH t AS (SELECT CAST(:types AS text[]) AS ids, CAST(:titles AS text[]) AS titles,
                  CAST(:classes AS text[]) AS classes)
INSERT INTO letters (id, request_id, village_code, workflow_id, title, classification, year, seq,
                     number, verify_code, subject_name, subject_nik, signer_id, signer_name,
                     signer_capacity, issued_at, pdf, pdf_sha256, status, handed_over_at)
SELECT s.id, s.id, s.village_code, s.workflow_id, t.titles[s.k], t.classes[s.k],
       extract(year FROM s.issued_at AT TIME ZONE 'Asia/Jakarta')::int, s.id,
       t.classes[s.k] || '/' || s.id || '/' || s.village_code || '/'
         || extract(year FROM s.issued_at AT TIME ZONE 'Asia/Jakarta')::int,
       upper(substr(md5(s.id::text), 1, 32)), 'Warga Contoh ' || (s.id % 997),
       '3311' || lpad(((s.id::bigint * 104729) % 1000000000000)::text, 12, '0'),
       :uid, 'Kepala Contoh', 'KEPALA DESA CONTOH', s.issued_at, '\\x00'::bytea,
       md5(s.id::text) || md5('x' || s.id::text), 'active',
       CASE WHEN s.id % 5 <> 0
            THEN s.issued_at + ((s.id::bigint * 977) % 172800) * interval '1 second' END
FROM (SELECT r.id, r.village_code, r.workflow_id, array_position(t.ids, r.workflow_id) AS k,
             r.created_at + (600 + (r.id::bigint * 131) % 259200) * interval '1 second'
               AS issued_at
      FROM requests r, t) s, t
"""


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return f"p50 {at(0.5):7.1f} ms   p95 {at(0.95):7.1f} ms   p99 {at(0.99):7.1f} ms"


def ensure_database(server_url: str) -> tuple[str, bool]:
    """(url of bench_statistik, whether it was created now)."""
    admin = create_engine(
        make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DATABASE})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    return make_url(server_url).set(database=DATABASE).render_as_string(False), not exists


def seed(url: str, keys_dir: Path, letters: int) -> float:
    """Seed N letters unless they are there already; the seconds it took (0 when reused)."""
    upgrade(url)
    factory = session_factory(url)
    with transaction(factory) as session:
        have = session.scalar(text("SELECT count(*) FROM letters"))
        if have >= letters:
            return 0.0
        if session.scalar(text("SELECT count(*) FROM users")) == 0:
            seed_demo(session, keys_dir)
    specs = sorted(load_workflows(PROJECT_ROOT / "workflows").values(), key=lambda s: s.id)
    t0 = time.perf_counter()
    with transaction(factory) as session:
        session.execute(text("DELETE FROM letters"))
        session.execute(
            text("DELETE FROM requests WHERE id NOT IN (SELECT request_id FROM letters)")
        )
        uid = session.scalar(select(User.id).where(User.username == "head.grogol"))
        params = {
            "types": [s.id for s in specs],
            "titles": [s.title for s in specs],
            "classes": [s.classification for s in specs],
            "ntypes": len(specs),
            "sha": "0" * 64,
            "uid": uid,
            "letters": letters,
            "span": SPAN_SECONDS,
        }
        session.execute(text(REQUESTS_SQL), params)
        session.execute(text(LETTERS_SQL), params)
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
    factory.kw["bind"].dispose()
    return time.perf_counter() - t0


def timed(client: TestClient, paths: list[str], runs: int) -> list[float]:
    out = []
    for i in range(runs):
        t = time.perf_counter()
        r = client.get(paths[i % len(paths)])
        out.append(time.perf_counter() - t)
        assert r.status_code == 200, (r.status_code, r.text[:300])
    return out


def backfill(url: str) -> float:
    """`suratdesa stats refresh`, as a cron job would run it; its seconds."""
    env = {**os.environ, "SURATDESA_DATABASE_URL": url}
    cli = Path(sys.executable).with_name("suratdesa")
    t0 = time.perf_counter()
    done = subprocess.run([str(cli), "stats", "refresh"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    print(f"  {done.stdout.strip()}")
    return seconds


FRESH_CHILD = """
import sys, time
from dataclasses import replace
from pathlib import Path
from fastapi.testclient import TestClient
from engine.config import PROJECT_ROOT, Settings
from suratdesa.web import create_app
url, keys, path = sys.argv[1:4]
wf = PROJECT_ROOT / "workflows"
settings = Settings(url, "http://127.0.0.1:8000", Path(keys), wf, "F4", None)
client = TestClient(create_app(replace(settings, rate_v_per_minute=1_000_000)),
                    client=("10.9.9.8", 40000))
t = time.perf_counter()
r = client.get(path)
print(time.perf_counter() - t, r.status_code)
"""


def fresh_processes(settings: Settings, paths: list[str], count: int) -> list[float]:
    """The first request of each of `count` fresh processes (cycling through `paths`)."""
    out = []
    for i in range(count):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                FRESH_CHILD,
                settings.database_url,
                str(settings.keys_dir),
                paths[i % len(paths)],
            ],  # fmt: skip
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            check=True,
        )
        seconds, status = done.stdout.split()
        assert status == "200", done.stdout + done.stderr
        out.append(float(seconds))
    return out


def measure(settings: Settings, runs: int, cold_runs: int, fresh: int) -> None:
    app = create_app(settings)
    client = TestClient(app, client=("10.9.9.9", 40000))
    client.get("/verify")  # the app's first request: services, templates
    filters = [f"tahun={y}" for y in (2023, 2024, 2025, 2026)]
    filters += [f"tahun=2026&kecamatan={d.code}" for d in regions.districts()[:4]]
    if fresh:
        base = fresh_processes(settings, ["/verify"], fresh)
        print(f"  /verify (baseline) fresh process, first request  {percentiles(base)}")
    for suffix, kind in (("", "HTML"), (".json", "JSON")):
        if fresh:
            paths = [f"/statistik{suffix}?{f}" for f in filters]
            first = fresh_processes(settings, paths, fresh)
            print(
                f"  {kind:4} fresh process, first request ({fresh} processes)  {percentiles(first)}"
            )
        client.get(f"/statistik{suffix}?tahun=2026")  # the cache object exists now
        app.state.statistik.cache = StatisticsCache(ttl=0)
        cold = timed(client, [f"/statistik{suffix}?{f}" for f in filters], cold_runs)
        print(f"  {kind:4} cold (computed per request, {cold_runs} runs)  {percentiles(cold)}")
        app.state.statistik.cache = StatisticsCache()
        first = timed(client, [f"/statistik{suffix}"], 1)[0]
        warm = timed(client, [f"/statistik{suffix}"], runs)
        served = [first, *warm[:-1]]
        print(f"  {kind:4} warm (cached figures, {runs} runs)        {percentiles(warm)}")
        print(
            f"  {kind:4} as served: {runs} requests from an empty cache (1 cold + {runs - 1} warm)"
            f"  {percentiles(served)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server")
    parser.add_argument("--letters", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cold", type=int, default=30)
    parser.add_argument("--fresh", type=int, default=10, help="fresh processes per kind")
    parser.add_argument("--drop", action="store_true", help="drop bench_statistik at the end")
    args = parser.parse_args()

    url, created = ensure_database(args.database_url)
    tmp = Path(tempfile.mkdtemp(prefix="bench-statistik-"))
    settings = Settings(
        url, "http://127.0.0.1:8000", tmp / "keys", PROJECT_ROOT / "workflows", "F4", None
    )
    settings = replace(settings, rate_v_per_minute=1_000_000)
    try:
        seeded = seed(url, settings.keys_dir, args.letters)
        with create_engine(url).connect() as conn:
            n = conn.scalar(text("SELECT count(*) FROM letters"))
            warga = conn.scalar(text("SELECT count(*) FROM requests WHERE channel = 'warga'"))
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, PostgreSQL"
        )
        state = "created" if created else "reused"
        how = f"seeded in {seeded:.0f} s" if seeded else "already seeded, reused"
        print(f"database {DATABASE} ({state}): {n:,} letters ({warga:,} warga), {how}")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"  backfill `suratdesa stats refresh`: {backfill(url):.1f} s")
        measure(settings, args.requests, args.cold, args.fresh)
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        session_factory(url).kw["bind"].dispose()
        if args.drop:
            admin = create_engine(
                make_url(args.database_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            print(f"dropped {DATABASE}")


if __name__ == "__main__":
    main()
