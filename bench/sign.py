"""Benchmark: issue letters end to end (number + render + sign + timestamp + store).

Prints, in one run: letters/s end to end over all workers, each worker's head signing a batch
as the staff app does (``batch_runs.run``: each group of letters stored in one short write),
``--runs`` times over fresh requests, and their median; after each of those runs, a same-run
baseline of the same size through the previous path (each letter stored in its own write, its
batch row updated in another); the median of each stage; the CPU a letter costs its worker and
the PostgreSQL server; and same-run baselines on one core over the same rendered letters:
- render: ours against the previous render path (fpdf2 subsetting every font per document, the
  QR scoring all eight masks);
- sign+timestamp: ours against pyHanko with the signer and timestamper loaded once (as a careful
  integrator would write it: ``SimpleSigner.load_pkcs12_data`` once, stock ``sign_pdf`` per
  letter), and against stock pyHanko opening the PKCS#12 for every letter;
- RSA-3072 against EC P-256 for the signer's and the TSA's keys (bench/sign_keys.py).

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
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder  # noqa: E402
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: E402
from pyhanko.sign import signers  # noqa: E402
from pyhanko.sign.timestamps import DummyTimeStamper  # noqa: E402
from pyhanko_certvalidator.registry import SimpleCertificateStore  # noqa: E402
from sqlalchemy import create_engine, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench import one_batch  # noqa: E402
from bench.sign_keys import compare as compare_keys  # noqa: E402
from engine.bootstrap import DEMO_PASSPHRASE, DEMO_VILLAGES, seed_demo  # noqa: E402
from engine.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.jobs import batch_runs  # noqa: E402
from engine.letters.facts import public_facts  # noqa: E402
from engine.letters.issuance import letter_content, new_verify_code  # noqa: E402
from engine.letters.pdf_fonts import prepare_fonts  # noqa: E402
from engine.letters.render import markup_to_pdf, render_markup  # noqa: E402
from engine.people.users import Actor  # noqa: E402
from engine.requests.letter_requests import create_request, move  # noqa: E402
from engine.services import Services  # noqa: E402
from engine.storage.db import session_factory, transaction  # noqa: E402
from engine.storage.migrate import upgrade  # noqa: E402
from engine.storage.models import (  # noqa: E402
    LetterRequest,
    Resident,
    SignBatchItem,
    User,
    Village,
)
from engine.trust import pki  # noqa: E402
from engine.trust.seal import qr_text, seal_for_letter  # noqa: E402
from engine.trust.signing import (  # noqa: E402
    _metadata,
    baseline_sign,
    load_signer,
    make_timestamper,
    sign_letter,
)


def make_settings(url: str, keys: Path) -> Settings:
    return Settings(url, "http://127.0.0.1:8000", keys, PROJECT_ROOT / "workflows", "F4", None)


def prepare(settings: Settings, counts: dict[str, int]) -> dict[str, list]:
    """``counts[village]`` requests of that village in the signing step, by its own staff."""
    upgrade(settings.database_url)
    services = Services.from_settings(settings)
    with transaction(services.factory) as session:
        seed_demo(session, settings.keys_dir)
    work: dict[str, list] = {}
    with transaction(services.factory) as session:
        for code, per_village in counts.items():
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


def worker(args: tuple) -> list[tuple[float, ...]]:
    """One village's head signs its letters as a batch (what the staff app runs: one
    passphrase, then ``batch_runs.run``, which stores each group of letters in one short write)."""
    settings, village, jobs, start_at, grouped = args
    services = Services.from_settings(settings)
    issuer = services.issuer
    with transaction(services.factory) as session:
        head = Actor.of(
            session.scalar(select(User).where(User.village_code == village, User.role == "head"))
        )
    signer = issuer.unlock(head, DEMO_PASSPHRASE)
    prepare_fonts()  # once per process, like a server worker at its first letter
    owner = batch_runs.new_owner("bench")
    batch_id = batch_runs.start(issuer, head, jobs, owner)
    # The CMS and timestamp parts are prepared by each batch's first letter, inside the window.
    while time.time() < start_at:
        time.sleep(0.001)
    issuer.stage_log = []
    server_before = server_cpu(services.factory)
    cpu = time.process_time()
    if grouped:
        batch_runs.run(issuer, head, batch_id, signer, owner)
    else:
        one_by_one(issuer, head, batch_id, signer)
    cpu = (time.process_time() - cpu) / len(jobs)
    with transaction(services.factory) as session:
        failed = session.scalars(
            select(SignBatchItem.message).where(
                SignBatchItem.batch_id == batch_id, SignBatchItem.status != "done"
            )
        ).all()
    if failed or len(issuer.stage_log) != len(jobs):
        raise SystemExit(f"batch {batch_id}: not every letter was issued: {failed[:3]}")
    server = {
        pid: (server_before.get(pid, 0.0), t) for pid, t in server_cpu(services.factory).items()
    }
    return [(s.number, s.render, s.sign, s.store, cpu) for s in issuer.stage_log], server


def server_cpu(factory) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend serving the bench's database (read
    from /proc: the server runs on this machine); empty on SQLite."""
    if factory.kw["bind"].dialect.name != "postgresql":
        return {}
    with transaction(factory) as session:
        pids = session.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).all()
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return found


def one_by_one(issuer, head: Actor, batch_id: int, signer) -> None:
    """Same-run baseline: the batch as it ran before group commit, each letter issued and
    stored in its own short write, then its row updated (one commit each)."""
    with transaction(issuer.factory) as session:
        items = session.execute(
            select(SignBatchItem.id, SignBatchItem.request_id, SignBatchItem.version)
            .where(SignBatchItem.batch_id == batch_id)
            .order_by(SignBatchItem.position)
        ).all()
    with signer:
        for item_id, request_id, version in items:
            letter = issuer.issue(head, request_id, version=version, signer=signer)
            with transaction(issuer.factory) as session:
                session.execute(
                    update(SignBatchItem)
                    .where(SignBatchItem.id == item_id)
                    .values(status="done", letter_id=letter.id)
                )


def rendered_letters(settings: Settings, count: int) -> tuple[list[tuple], bytes]:
    """(template, markup, url, QR text with its seal) of ``count`` real letters of the first
    village, and the head's PKCS#12."""
    services = Services.from_settings(settings)
    with transaction(services.factory) as session:
        head = session.scalar(
            select(User).where(User.village_code == DEMO_VILLAGES[0], User.role == "head")
        )
        village = session.get(Village, head.village_code)
        requests = session.scalars(select(LetterRequest).limit(count)).all()
        letters = []
        for req in requests:
            spec = services.catalog.pinned(session, req)
            content = letter_content(
                session, spec, req, village, head, f"470/{req.id:03}/X/XI/2026", time_today()
            )
            code = new_verify_code()
            url = f"{settings.public_url}/v/{code}"
            seal = seal_for_letter(settings.keys_dir, code, content, public_facts(spec, content))
            markup = render_markup(spec.template_path, content, verify_url=url, draft=False)
            qr = qr_text(settings.public_url, code, seal)
            letters.append((spec.template_path, markup, url, qr))
        return letters, head.signer_p12


def render_times(letters: list[tuple], **kwargs) -> list[float]:
    out = []
    for template, markup, url, qr in letters:
        t = time.perf_counter()
        markup_to_pdf(
            markup, title="x", verify_url=url, base_dir=template.parent, qr_text=qr, **kwargs
        )
        out.append(time.perf_counter() - t)
    return out


def integrator(settings: Settings, p12: bytes):
    """pyHanko as a careful integrator uses it: signer and timestamper built once, stock
    ``sign_pdf`` per letter (which re-parses the key and dry-runs the CMS each time)."""
    signer = signers.SimpleSigner.load_pkcs12_data(p12, [], passphrase=DEMO_PASSPHRASE.encode())
    paths = pki.pki_paths(settings.keys_dir)
    tsa = DummyTimeStamper(
        tsa_cert=load_cert_from_pemder(paths.tsa_cert),
        tsa_key=load_private_key_from_pemder(paths.tsa_key, passphrase=None),
        certs_to_embed=SimpleCertificateStore.from_certs(
            [load_cert_from_pemder(paths.issuing_cert), load_cert_from_pemder(paths.root_cert)]
        ),
    )

    def sign(pdf: bytes) -> bytes:
        meta = _metadata("Bench", "Sukoharjo", "Signature1")
        out = signers.sign_pdf(
            IncrementalPdfFileWriter(BytesIO(pdf)), meta, signer=signer, timestamper=tsa
        )
        return out.getvalue()

    return sign


def baselines(settings: Settings, count: int, stock_count: int) -> dict[str, object]:
    """One core, the same letters: render ours / previous, sign ours / integrator / stock."""
    letters, p12 = rendered_letters(settings, count)
    render_times(letters[:2])  # warm: fonts, templates
    render_times(letters[:2], prepared_fonts=False, qr_mask="best")
    found: dict[str, object] = {}
    ours_r, prev_r = [], []
    for letter in letters:  # taking turns, so load on the machine falls on both alike
        ours_r += render_times([letter])
        prev_r += render_times([letter], prepared_fonts=False, qr_mask="best")
    found["render"] = (ours_r, prev_r)
    pdfs = [
        markup_to_pdf(m, title="x", verify_url=u, base_dir=t.parent, qr_text=q)
        for t, m, u, q in letters
    ]
    ours = load_signer(p12, DEMO_PASSPHRASE, keys_dir=settings.keys_dir)
    tsa = make_timestamper(None, settings.keys_dir)
    careful = integrator(settings, p12)
    sign_letter(pdfs[0], ours, tsa, reason="warm-up", location="Sukoharjo")
    careful(pdfs[0])
    ours_s, careful_s, stock_s = [], [], []
    for i, pdf in enumerate(pdfs):
        t = time.perf_counter()
        sign_letter(pdf, ours, tsa, reason="Bench", location="Sukoharjo")
        ours_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        careful(pdf)
        careful_s.append(time.perf_counter() - t)
        if i < stock_count:
            t = time.perf_counter()
            baseline_sign(pdf, p12, DEMO_PASSPHRASE, keys_dir=settings.keys_dir)
            stock_s.append(time.perf_counter() - t)
    found["sign"] = (ours_s, careful_s, stock_s)
    found["keys"] = compare_keys(settings.keys_dir, pdfs[:12])
    return found


def time_today():
    from engine.dates import today_wib

    return today_wib()


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f} ms"


def ratio(slow: list[float], fast: list[float]) -> str:
    return f"{statistics.median(slow) / statistics.median(fast):5.1f}x"


def end_to_end(settings: Settings, villages: list[str], work: dict, runs: int, per_run: int):
    """``runs`` timed runs of batches in groups (ours), each followed by a run of the same size
    storing each letter on its own (the previous path), each over its own slice of the
    prepared requests. Returns {grouped: (walls, stages)}."""
    found: dict[bool, tuple[list, list]] = {True: ([], []), False: ([], [])}
    ctx = multiprocessing.get_context("fork")
    for r in range(2 * runs):
        grouped = r % 2 == 0
        start_at = time.time() + 3.0  # every worker has unlocked its key by then
        part = slice(r * per_run, (r + 1) * per_run)
        jobs = [(settings, v, work[v][part], start_at, grouped) for v in villages]
        with ctx.Pool(len(villages)) as pool:
            parts = pool.map(worker, jobs)
        found[grouped][0].append(time.time() - start_at)
        letters = [s for part, _ in parts for s in part]
        server: dict[int, tuple[float, float]] = {}
        for _, seen in parts:  # each worker saw every backend; keep the widest window
            for pid, (before, after) in seen.items():
                old = server.get(pid, (before, after))
                server[pid] = (min(old[0], before), max(old[1], after))
        spent = sum(after - before for before, after in server.values())
        found[grouped][1].append([(*s, spent / len(letters)) for s in letters])
    return found


def report(args, db: str, runs: dict, found: dict, load) -> None:
    walls, stages = runs[True]
    n = len(stages[0])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {db}; load average before: {load[0]}, after: {load[1]}"
    )
    rates = [len(st) / wall for st, wall in zip(stages, walls, strict=True)]
    for i, (wall, rate) in enumerate(zip(walls, rates, strict=True), 1):
        print(
            f"run {i}: {n} letters, {args.workers} worker process(es), {wall:.2f} s, "
            f"{rate:.1f} letters/s"
        )
    target = 50 if db == "PostgreSQL" else 25
    print(
        f"end to end, median of {len(rates)} runs: {statistics.median(rates):.1f} letters/s "
        f"(target >= {target} letters/s on 2 cores)"
    )
    base_rates = [len(st) / wall for st, wall in zip(runs[False][1], runs[False][0], strict=True)]
    print(
        "same run, previous path (each letter stored in its own write), runs: "
        + ", ".join(f"{rate:.1f}" for rate in base_rates)
        + f" letters/s; median {statistics.median(base_rates):.1f}; ours / previous: "
        f"{statistics.median(rates) / statistics.median(base_rates):.2f}x"
    )
    every = [s for st in stages for s in st]
    print(
        "median per stage (one letter; store+audit is its share of its group's write, the only"
        " stage holding a lock):"
    )
    for i, name in enumerate(("read+number", "render", "sign+timestamp", "store+audit")):
        print(f"  {name:15} {ms([s[i] for s in every])}")
    print(f"  {'total':15} {ms([sum(s[:4]) for s in every])}")
    for label, group in (("ours", runs[True][1]), ("previous path", runs[False][1])):
        cpu = statistics.median(s[4] for st in group for s in st)
        server = statistics.median(st[0][5] for st in group)
        print(
            f"CPU per letter, {label} (any load): worker {cpu * 1000:.1f} ms + database server "
            f"{server * 1000:.1f} ms, so {os.cpu_count()} free cores could issue about "
            f"{os.cpu_count() / (cpu + server):.0f} letters/s"
        )
    ours_r, prev_r = found["render"]
    print(f"render, same {len(ours_r)} letters, one core (target: median <= 10 ms):")
    print(f"  ours (prepared fonts, fixed QR mask)        {ms(ours_r)}")
    print(
        f"  previous path (per-document font subsets, 8 masks) {ms(prev_r)}   "
        f"ratio {ratio(prev_r, ours_r)}"
    )
    ours_s, careful_s, stock_s = found["sign"]
    print(f"sign+timestamp, same {len(ours_s)} letters, one core:")
    print(f"  ours (per batch: key, TSA, CMS parts)       {ms(ours_s)}")
    print(
        f"  pyHanko, signer loaded once (integrator)    {ms(careful_s)}   "
        f"ratio {ratio(careful_s, ours_s)}"
    )
    print(
        f"  stock pyHanko, PKCS#12 opened per letter    {ms(stock_s)}   "
        f"ratio {ratio(stock_s, ours_s)}  ({len(stock_s)} letters)"
    )
    whole_ours = statistics.median(ours_r) + statistics.median(ours_s)
    whole_prev = statistics.median(prev_r) + statistics.median(careful_s)
    print(
        f"render+sign per letter: ours {whole_ours * 1000:.1f} ms, previous render + "
        f"integrator sign {whole_prev * 1000:.1f} ms, ratio {whole_prev / whole_ours:.1f}x"
    )
    print("signer and TSA keys, same letters, sign+timestamp median:")
    print("\n".join(found["keys"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=200, help="letters per run, in total")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, choices=range(1, len(DEMO_VILLAGES) + 1))
    parser.add_argument("--baseline-letters", type=int, default=30)
    parser.add_argument(
        "--batch-size", type=int, default=one_batch.SIZE, help="letters in the one-batch part"
    )
    parser.add_argument("--stock-letters", type=int, default=5)
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
    per_run = args.letters // args.workers
    try:
        counts = {v: 2 * per_run * args.runs for v in villages}
        # The one-batch part signs after the others, with its own requests of one village.
        batch_village = DEMO_VILLAGES[0]
        extra = one_batch.requests_needed(args.runs, args.batch_size)
        counts[batch_village] = counts.get(batch_village, 0) + extra
        work = prepare(settings, counts)
        batch_jobs = work[batch_village][-extra:]
        load_before = os.getloadavg()[0]
        runs = end_to_end(settings, villages, work, args.runs, per_run)
        load_after = os.getloadavg()[0]
        found = baselines(settings, args.baseline_letters, args.stock_letters)
        found["batch"] = one_batch.measure(
            settings, batch_village, batch_jobs, args.runs, args.batch_size
        )
        load_end = os.getloadavg()[0]
    finally:
        if scratch:
            session_factory(url).kw["bind"].dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    db = "PostgreSQL" if scratch else "SQLite"
    report(args, db, runs, found, (f"{load_before:.2f}", f"{load_after:.2f}"))
    one_batch.report(found["batch"], args.batch_size)
    print(f"load average at the end: {load_end:.2f}")


if __name__ == "__main__":
    main()
