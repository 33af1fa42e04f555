"""Benchmark: issue letters end to end (number + render + sign + timestamp + store).

Prints letters/s end to end over all workers, the median of each stage, and a baseline measured
in the same run: the same rendered letters signed with pyHanko's stock SimpleSigner.load_pkcs12 +
sign_pdf at default settings (p12 opened per letter, as a naive integration does).

    .venv/bin/python bench/sign.py                      # SQLite in a temp dir
    .venv/bin/python bench/sign.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Each worker is a process signing for its own village (numbers are serialized per village by
design, so villages are the unit of parallelism). On PostgreSQL the bench works in a scratch
database it creates next to the one given, and drops it afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine.bootstrap import DEMO_PASSPHRASE, DEMO_VILLAGES, seed_demo  # noqa: E402
from engine.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.letters.issuance import letter_content  # noqa: E402
from engine.letters.render import render_letter  # noqa: E402
from engine.people.users import Actor  # noqa: E402
from engine.requests.letter_requests import create_request, move  # noqa: E402
from engine.services import Services  # noqa: E402
from engine.storage.db import session_factory, transaction  # noqa: E402
from engine.storage.migrate import upgrade  # noqa: E402
from engine.storage.models import LetterRequest, Resident, User, Village  # noqa: E402
from engine.trust.signing import baseline_sign, load_signer, make_timestamper, sign_letter  # noqa: E402


def make_settings(url: str, keys: Path) -> Settings:
    return Settings(url, "http://127.0.0.1:8000", keys, PROJECT_ROOT / "workflows", "F4", None)


def prepare(settings: Settings, villages: list[str], per_village: int) -> dict[str, list]:
    upgrade(settings.database_url)
    services = Services.from_settings(settings)
    with transaction(services.factory) as session:
        seed_demo(session, settings.keys_dir)
    work: dict[str, list] = {}
    with transaction(services.factory) as session:
        for code in villages:
            staff = {
                u.role: Actor.of(u)
                for u in session.scalars(select(User).where(User.village_code == code))
            }
            niks = session.scalars(select(Resident.nik).where(Resident.village_code == code)).all()
            jobs = []
            for i in range(per_village):
                req = create_request(
                    session,
                    services.catalog,
                    staff["operator"],
                    "surat-keterangan-umum",
                    {"applicant": niks[i % len(niks)]},
                    {"keperluan": f"Persyaratan administrasi nomor {i}"},
                )
                move(session, staff["operator"], req, "submit", "review", version=1, reason=None)
                move(session, staff["sekdes"], req, "approve", "signing", version=2, reason=None)
                jobs.append((req.id, req.version))
            work[code] = jobs
    session_factory(settings.database_url).kw["bind"].dispose()
    return work


def worker(args: tuple) -> list[tuple[float, float, float, float]]:
    settings, village, jobs, start_at = args
    services = Services.from_settings(settings)
    with transaction(services.factory) as session:
        head = Actor.of(
            session.scalar(select(User).where(User.village_code == village, User.role == "head"))
        )
    signer = services.issuer.unlock(head, DEMO_PASSPHRASE)
    # Warm up caches (fonts, templates, TSA) outside the measured window.
    while time.time() < start_at:
        time.sleep(0.001)
    stages = []
    for request_id, version in jobs:
        services.issuer.issue(head, request_id, version=version, signer=signer)
        s = services.issuer.stages
        stages.append((s.number, s.render, s.sign, s.store))
    return stages


def baseline(settings: Settings, count: int) -> tuple[list[float], list[float]]:
    """Sign the same rendered letters with our signer and with stock pyHanko, one core."""
    services = Services.from_settings(settings)
    with transaction(services.factory) as session:
        head = session.scalar(
            select(User).where(User.village_code == DEMO_VILLAGES[0], User.role == "head")
        )
        village = session.get(Village, head.village_code)
        requests = session.scalars(select(LetterRequest).limit(count)).all()
        pdfs = []
        for req in requests:
            spec = services.catalog.pinned(session, req)
            content = letter_content(
                session, spec, req, village, head, f"470/{req.id:03}/X/XI/2026", time_today()
            )
            pdfs.append(
                render_letter(spec.template_path, content, verify_url="http://127.0.0.1:8000/v/X")
            )
        p12 = head.signer_p12
    ours = load_signer(p12, DEMO_PASSPHRASE, keys_dir=settings.keys_dir)
    tsa = make_timestamper(None, settings.keys_dir)
    sign_letter(pdfs[0], ours, tsa, reason="warm-up", location="Sukoharjo")
    ours_t, stock_t = [], []
    for pdf in pdfs:
        t = time.perf_counter()
        sign_letter(pdf, ours, tsa, reason="Bench", location="Sukoharjo")
        ours_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        baseline_sign(pdf, p12, DEMO_PASSPHRASE, keys_dir=settings.keys_dir)
        stock_t.append(time.perf_counter() - t)
    return ours_t, stock_t


def time_today():
    from engine.dates import today_wib

    return today_wib()


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=200, help="letters in total")
    parser.add_argument("--workers", type=int, default=2, choices=range(1, len(DEMO_VILLAGES) + 1))
    parser.add_argument("--baseline-letters", type=int, default=30)
    parser.add_argument("--database-url", help="PostgreSQL server to use (default: SQLite)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-sign-"))
    scratch = None
    if args.database_url:
        scratch = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            make_url(args.database_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        url = make_url(args.database_url).set(database=scratch).render_as_string(False)
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    settings = make_settings(url, tmp / "keys")
    villages = list(DEMO_VILLAGES[: args.workers])
    per_village = args.letters // args.workers
    try:
        work = prepare(settings, villages, per_village)
        start_at = time.time() + 3.0  # every worker has unlocked its key and warmed up by then
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.workers) as pool:
            results = pool.map_async(worker, [(settings, v, work[v], start_at) for v in villages])
            stages = [s for part in results.get() for s in part]
            wall = time.time() - start_at
        ours_t, stock_t = baseline(settings, args.baseline_letters)
    finally:
        if scratch:
            session_factory(url).kw["bind"].dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    db = "PostgreSQL" if scratch else "SQLite"
    n = len(stages)
    cores = os.cpu_count()
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}, {db}")
    print(f"issued {n} letters with {args.workers} worker process(es) in {wall:.2f} s")
    print(f"end to end: {n / wall:6.1f} letters/s   (target >= 25 letters/s on 2 cores)")
    print("median per stage (one letter, inside its transaction):")
    for i, name in enumerate(("number", "render", "sign+timestamp", "store+audit")):
        print(f"  {name:15} {ms([s[i] for s in stages])}")
    print(f"  {'total':15} {ms([sum(s) for s in stages])}")
    print(f"sign stage, same {len(ours_t)} rendered letters, one core:")
    print(f"  ours (key opened once per batch)        {ms(ours_t)}")
    print(f"  baseline (stock load_pkcs12 + sign_pdf) {ms(stock_t)}")
    print(f"  ratio baseline/ours: {statistics.median(stock_t) / statistics.median(ours_t):.1f}x")


if __name__ == "__main__":
    main()
