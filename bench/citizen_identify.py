"""Benchmark: do the two failed-identification answers take the same time? (Not a timed test.)

    .venv/bin/python bench/citizen_identify.py [--database-url URL] [--rounds 400]

Makes a scratch database (SQLite in a temp folder unless --database-url names a PostgreSQL
server: then a scratch database is created on it), migrates and seeds it, and times the two
failures a guesser could compare, interleaved (A B A B ...) so drift hits both alike:
  - an unknown NIK (well-formed, nobody has it);
  - a registered NIK with the right No. KK and a wrong date of birth.
First the engine call alone (engine.citizens.identity.identify: one look-up, one HMAC, the
failure count), then the JSON API (POST /api/warga/identify in-process, with the face's floor).
The rate limits would refuse a guesser long before 400 tries; the clock given to the engine
moves 20 minutes per round so every try is a first try in its window. Prints the medians and
their ratio (the goal: 1.00 within noise, and the same answer bytes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine.bootstrap import seed_demo  # noqa: E402
from engine.citizens.errors import IdentityFailed  # noqa: E402
from engine.citizens.identity import identify  # noqa: E402
from engine.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.storage.db import session_factory, transaction  # noqa: E402
from engine.storage.migrate import upgrade  # noqa: E402
from engine.storage.models import Resident  # noqa: E402

SECRET = "bench-secret"


def scratch_database(url: str | None, folder: Path) -> tuple[str, object]:
    if not url:
        return f"sqlite:///{folder / 'bench.db'}", None
    name = f"bench_identify_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = make_url(url).set(database=name).render_as_string(hide_password=False)
    return scratch, (admin, name)


def drop(handle) -> None:  # noqa: ANN001
    if handle is None:
        return
    admin, name = handle
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def engine_round(factory, attempt: tuple[str, str, str], now: float, i: int) -> float:
    nik, kk, born = attempt
    started = time.perf_counter()
    try:
        identify(factory, SECRET, nik, kk, born, client=f"10.9.{i % 250}.1", clock=lambda: now)
    except IdentityFailed:
        pass
    else:
        raise AssertionError("identification should have failed")
    return (time.perf_counter() - started) * 1000


def api_round(client, attempt: tuple[str, str, str], seen: set[bytes]) -> float:
    nik, kk, born = attempt
    started = time.perf_counter()
    r = client.post("/api/warga/identify", json={"nik": nik, "kk": kk, "birth_date": born})
    elapsed = (time.perf_counter() - started) * 1000
    assert r.status_code in (422, 429), r.status_code
    if r.status_code == 422:
        seen.add(r.content)
    return elapsed


def report(label: str, unknown: list[float], wrong: list[float]) -> None:
    a, b = statistics.median(unknown), statistics.median(wrong)
    paired = statistics.median(x - y for x, y in zip(unknown, wrong, strict=True))
    noise = statistics.quantiles(unknown + wrong, n=4)
    print(
        f"{label}: unknown NIK median {a:.3f} ms, wrong date of birth median {b:.3f} ms, "
        f"ratio {a / b:.3f} (n={len(unknown)} each); median paired difference "
        f"{paired:+.3f} ms; all tries' quartiles {noise[0]:.3f} / {noise[2]:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url, handle = scratch_database(args.database_url, folder)
        try:
            run(url, folder, args.rounds)
        finally:
            session_factory(url).kw["bind"].dispose()
            drop(handle)


def run(url: str, folder: Path, rounds: int) -> None:
    upgrade(url)
    factory = session_factory(url)
    with transaction(factory) as session:
        seed_demo(session, folder / "keys")
        people = session.scalars(select(Resident).where(Resident.alive.is_(True))).all()
        known = [(r.nik, r.kk, (r.birth_date + timedelta(days=1)).isoformat()) for r in people]
    unknown = [(nik[:12] + "9999", kk, born) for nik, kk, born in known]
    print(f"database: {make_url(url).get_backend_name()}, {len(known)} residents")
    now = 2_000_000_000.0
    for i in range(20):  # warm-up
        engine_round(factory, unknown[i % len(unknown)], now + i * 1200, i)
        engine_round(factory, known[i % len(known)], now + i * 1200, i)
    times: dict[str, list[float]] = {"unknown": [], "wrong": []}
    for i in range(rounds):
        at = now + (100 + i) * 1200  # 20 minutes later each round: a fresh window
        pair = [("unknown", unknown), ("wrong", known)]
        for kind, attempts in pair if i % 2 == 0 else reversed(pair):
            times[kind].append(engine_round(factory, attempts[i % len(attempts)], at, i))
    report("engine", times["unknown"], times["wrong"])

    from fastapi.testclient import TestClient

    from suratdesa.web import create_app

    settings = Settings(
        database_url=url,
        public_url="http://bench",
        keys_dir=folder / "keys",
        workflows_dir=PROJECT_ROOT / "workflows",
        paper="F4",
        tsa_url=None,
        secret_key=SECRET,
        audit_dir=folder / "audit",
    )
    client = TestClient(create_app(replace(settings)))
    api: dict[str, list[float]] = {"unknown": [], "wrong": []}
    seen: set[bytes] = set()
    api_rounds = min(rounds, len(known) * 4, 60)  # the real limits apply here (real clock)
    for i in range(api_rounds):
        pair = [("unknown", unknown), ("wrong", known)]
        for kind, attempts in pair if i % 2 == 0 else reversed(pair):
            api[kind].append(api_round(client, attempts[i % len(attempts)], seen))
    report("JSON API (with the floor)", api["unknown"], api["wrong"])
    print(f"distinct failure bodies over both kinds: {len(seen)} (want 1)")


if __name__ == "__main__":
    main()
