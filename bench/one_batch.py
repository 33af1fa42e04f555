"""Part of bench/sign.py: one head's 50-letter batch (``--batch-size``), timed as the head
waits for it (the key unlocked with the passphrase, then ``batch_runs.run``: number, render,
sign, timestamp, the archival update, one write per group), in four variants taking turns in
each run, so that load on the machine falls on all of them alike:

- PAdES B-LTA (what is issued) and B-T (the archival update left out: ``Issuer.archival``),
- on two signing processes (engine.letters.make_pool, what ``suratdesa worker`` does on a
  2-core machine) and on one (the batch made in the run's own process).

Each variant signs its own fresh requests of one village, so its numbers run on from the last.
"""

from __future__ import annotations

import statistics
import time

from sqlalchemy import select

from engine.bootstrap import DEMO_PASSPHRASE
from engine.config import Settings
from engine.jobs import batch_runs
from engine.letters.pdf_fonts import prepare_fonts
from engine.people.users import Actor
from engine.services import Services
from engine.storage.db import transaction
from engine.storage.models import SignBatchItem, User

SIZE = 50
VARIANTS = (("B-LTA", 2), ("B-LTA", 1), ("B-T", 2), ("B-T", 1))
TARGET_SECONDS = 5.0


def requests_needed(runs: int, size: int = SIZE) -> int:
    return (runs * len(VARIANTS) + 1) * size  # +1: the untimed warm-up batch


def _batch(services: Services, head: Actor, jobs: list, processes: int) -> float:
    issuer = services.issuer
    owner = batch_runs.new_owner("bench")
    batch_id = batch_runs.start(issuer, head, jobs, owner)
    t = time.perf_counter()
    signer = issuer.unlock(head, DEMO_PASSPHRASE)
    batch_runs.run(issuer, head, batch_id, signer, owner, processes=processes)
    seconds = time.perf_counter() - t
    with transaction(services.factory) as session:
        statuses = session.scalars(
            select(SignBatchItem.status).where(SignBatchItem.batch_id == batch_id)
        ).all()
    if statuses != ["done"] * len(jobs):
        raise SystemExit(f"batch {batch_id}: not every letter was issued")
    return seconds


def measure(settings: Settings, village: str, jobs: list, runs: int, size: int = SIZE) -> dict:
    """{(level, processes): [seconds per run]} over ``runs`` rounds of the four variants."""
    services = Services.from_settings(settings)
    with transaction(services.factory) as session:
        head = Actor.of(
            session.scalar(select(User).where(User.village_code == village, User.role == "head"))
        )
    prepare_fonts()
    chunks = [jobs[i : i + size] for i in range(0, requests_needed(runs, size), size)]
    _batch(services, head, chunks.pop(0), 2)  # warm-up: templates, fonts, the fork server
    found: dict[tuple[str, int], list[float]] = {v: [] for v in VARIANTS}
    try:
        for _ in range(runs):
            for level, processes in VARIANTS:
                services.issuer.archival = level == "B-LTA"
                found[(level, processes)].append(_batch(services, head, chunks.pop(0), processes))
    finally:
        services.issuer.archival = True
    return found


def report(found: dict, size: int = SIZE) -> None:
    median = {v: statistics.median(s) for v, s in found.items()}
    runs = len(next(iter(found.values())))
    target = f"; target at B-LTA on 2 cores: under {TARGET_SECONDS:.0f} s" if size == SIZE else ""
    print(
        f"one head's {size}-letter batch, passphrase to last letter stored, median of {runs} "
        f"runs{target}:"
    )
    for (level, processes), seconds in found.items():
        each = ", ".join(f"{s:.2f}" for s in seconds)
        print(
            f"  {level:5} {processes} signing process(es): {median[(level, processes)]:5.2f} s "
            f"({size / median[(level, processes)]:5.1f} letters/s; runs: {each})"
        )
    for level in ("B-LTA", "B-T"):
        print(
            f"  {level}: two processes against one: "
            f"{median[(level, 1)] / median[(level, 2)]:.2f}x faster"
        )
    for processes in (2, 1):
        print(
            f"  {processes} process(es): B-LTA costs "
            f"{median[('B-LTA', processes)] / median[('B-T', processes)]:.2f}x the time of B-T"
        )
