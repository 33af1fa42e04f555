"""Benchmark: does a burst of bad sign-ins slow the other pages? (Not a timed test.)

    .venv/bin/python bench/signin.py [--database-url URL] [--attackers 64] [--samples 200]

Makes a scratch database (SQLite in a temp folder unless --database-url names a PostgreSQL
server: then a scratch database is created on it), migrates and seeds it, starts the real app with
`suratdesa serve` (uvicorn, one worker), and measures the median latency of a cheap page
(GET /staf/masuk: template + CSRF cookie, served from Starlette's thread pool like every sync
page) twice, one request at a time, one every 50 ms (200 samples: 10 s):
  - idle;
  - while `--attackers` clients each post bad sign-ins back to back (a mix of unknown names and
    wrong passwords for real ones; most are throttled after a few, which costs the same work).
Prints both medians and the ratio (the goal: within 3x of idle).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine.bootstrap import seed_demo  # noqa: E402
from engine.config import PROJECT_ROOT  # noqa: E402
from engine.storage.db import session_factory, transaction  # noqa: E402
from engine.storage.migrate import upgrade  # noqa: E402
from engine.trust.pki import init_pki  # noqa: E402

CHEAP = "/staf/masuk"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def measure(base: str, samples: int, every: float = 0.05) -> list[float]:
    """`samples` sequential requests, one each `every` seconds (so they spread over the run)."""
    out = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        for _ in range(20):  # warm-up
            await client.get(CHEAP)
        for _ in range(samples):
            started = time.perf_counter()
            r = await client.get(CHEAP)
            out.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, r.status_code
            await asyncio.sleep(max(0.0, every - (time.perf_counter() - started)))
    return out


async def attacker(base: str, n: int, stop: asyncio.Event, counts: dict[int, int]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', (await client.get(CHEAP)).text)[1]
        names = ["operator.grogol", "kasi.grogol", f"tidak.ada.{n}", "head.grogol"]
        i = 0
        while not stop.is_set():
            r = await client.post(
                CHEAP,
                data={"username": names[i % len(names)], "password": f"salah{i}", "csrf": token},
            )
            counts[r.status_code] = counts.get(r.status_code, 0) + 1
            i += 1


async def under_attack(base: str, attackers: int, samples: int) -> tuple[list[float], dict]:
    stop, counts = asyncio.Event(), {}
    tasks = [asyncio.create_task(attacker(base, n, stop, counts)) for n in range(attackers)]
    await asyncio.sleep(3)  # let the burst fill every queue first
    latencies = await measure(base, samples)
    stop.set()
    await asyncio.gather(*tasks)
    return latencies, counts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", help="PostgreSQL server for a scratch database")
    ap.add_argument("--attackers", type=int, default=64)
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sd-bench-signin-"))
    admin = name = None
    if args.database_url:
        name = f"sd_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            make_url(args.database_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    server = None
    try:
        keys = tmp / "keys"
        init_pki(keys, root_dir=tmp / "root")
        upgrade(url)
        with transaction(session_factory(url)) as session:
            seed_demo(session, keys)
        session_factory(url).kw["bind"].dispose()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "SURATDESA_DATABASE_URL": url,
            "SURATDESA_KEYS_DIR": str(keys),
            "SURATDESA_PUBLIC_URL": base,
            "SURATDESA_AUDIT_DIR": str(tmp / "audit"),
            "SURATDESA_AUDIT_CHECKPOINT_HOURS": "0",
        }
        cmd = [sys.executable, "-m", "suratdesa.cli", "serve", "--port", str(port)]
        server = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + CHEAP, timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.2)

        idle = asyncio.run(measure(base, args.samples))
        busy, counts = asyncio.run(under_attack(base, args.attackers, args.samples))
        idle_ms, busy_ms = statistics.median(idle), statistics.median(busy)
        print(f"database: {make_url(url).get_backend_name()}; cores: {os.cpu_count()}; "
              f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
        print(f"GET {CHEAP} median idle:  {idle_ms:.1f} ms (p90 "
              f"{statistics.quantiles(idle, n=10)[-1]:.1f} ms)")  # fmt: skip
        print(f"GET {CHEAP} median during {args.attackers} concurrent bad sign-ins: "
              f"{busy_ms:.1f} ms (p90 {statistics.quantiles(busy, n=10)[-1]:.1f} ms)")  # fmt: skip
        print(f"ratio: {busy_ms / idle_ms:.2f}x (goal: within 3x)")
        print(f"sign-in answers during the run: {dict(sorted(counts.items()))}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
