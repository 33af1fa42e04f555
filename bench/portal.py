"""Benchmark: the public portal on PostgreSQL with 100,000 letters.

    .venv/bin/python bench/portal.py [--database-url postgresql+psycopg://postgres@127.0.0.1/test]
        [--letters 100000] [--duration 20] [--connections 50] [--fast]

``--fast`` serves with ``uvicorn --http httptools --loop uvloop`` (project dependencies, what
``suratdesa serve`` uses); without it the pure-Python ``--http h11 --loop asyncio`` is forced,
for comparison.

Creates a scratch database next to the given one, issues one real letter through the API,
clones it to N rows (small placeholder PDFs: /v/ never reads the PDF), starts uvicorn with 2
workers, and measures with wrk (Debian package `wrk`):
  - GET /v/{code} over 1,000 random codes (one statement: letter + shared rate count; the
    count is buffered per process and flushed every second; HTML);
  - baseline in the same run: GET /verify (template only, no database);
  - POST /api/public/verify latency for the real one-page letter (sequential, 30 uploads).
The rate limit stays on (counted per request) but its ceiling is raised for the load client.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine.bootstrap import DEMO_PASSPHRASE, seed_demo  # noqa: E402
from engine.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.storage.db import session_factory, transaction  # noqa: E402
from engine.storage.migrate import upgrade  # noqa: E402

CLONE_SQL = """
WITH src AS (SELECT * FROM requests WHERE id = :rid),
newreq AS (
  INSERT INTO requests (village_code, workflow_id, workflow_version, workflow_sha256, state,
    subjects, data, version, created_by_id, created_at, updated_at)
  SELECT village_code, workflow_id, workflow_version, workflow_sha256, state, subjects, data,
    version, created_by_id, created_at, updated_at FROM src CROSS JOIN generate_series(1, :n)
  RETURNING id)
INSERT INTO letters (request_id, village_code, workflow_id, title, classification, year, seq,
  number, verify_code, subject_name, subject_nik, signer_id, signer_name, signer_capacity,
  issued_at, pdf, pdf_sha256, status)
SELECT n.id, l.village_code, l.workflow_id, l.title, l.classification, l.year, 100000 + n.id,
  'B/' || n.id || '/' || l.number,
  upper(translate(md5('code' || n.id), '0123456789abcdef', 'ABCDEFGHIJKLMNOP')),
  l.subject_name, l.subject_nik, l.signer_id, l.signer_name, l.signer_capacity, l.issued_at,
  '\\x25504446'::bytea, md5('pdf' || n.id) || md5('x' || n.id), 'active'
FROM newreq n CROSS JOIN letters l WHERE l.id = :lid
"""


def issue_one(settings: Settings, logins) -> tuple[dict, bytes]:
    from suratdesa.web import create_app
    from tests.letters import GROGOL, Staff

    staff = Staff(TestClient(create_app(settings)), logins)
    nik = logins.sample_niks[GROGOL][0]
    body = {
        "workflow_id": "surat-keterangan-umum",
        "subjects": {"applicant": nik},
        "data": {"keperluan": "Persyaratan melamar pekerjaan"},
    }
    created = staff.post("operator.grogol", "/api/requests", body).json()
    req = staff.walk_to_signing("grogol", created)
    letter = staff.sign("head.grogol", req, DEMO_PASSPHRASE).json()["letter"]
    return letter, staff.get("operator.grogol", letter["pdf_url"]).content


def wrk(url: str, duration: int, connections: int, script: Path | None) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "non2xx": float(errors.group(1)) if errors else 0.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--letters", type=int, default=100_000)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--fast", action="store_true", help="uvicorn --http httptools --loop uvloop")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 2

    name = f"sd_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(args.database_url).set(database="postgres"),
                          isolation_level="AUTOCOMMIT")  # fmt: skip
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp(prefix="sd-bench-"))
    server = None
    try:
        upgrade(url)
        keys = tmp / "keys"
        with transaction(session_factory(url)) as s:
            logins = seed_demo(s, keys)
        settings = Settings(url, f"http://127.0.0.1:{args.port}", keys,
                            PROJECT_ROOT / "workflows", "F4", None)  # fmt: skip
        letter, pdf = issue_one(settings, logins)
        t0 = time.perf_counter()
        with session_factory(url).kw["bind"].begin() as c:
            rid, lid = c.execute(text("SELECT request_id, id FROM letters")).one()
            c.execute(text(CLONE_SQL), {"rid": rid, "lid": lid, "n": args.letters - 1})
            c.execute(text("ANALYZE"))
            total = c.execute(text("SELECT count(*) FROM letters")).scalar_one()
            codes = [r[0] for r in c.execute(
                text("SELECT verify_code FROM letters ORDER BY random() LIMIT 1000"))]  # fmt: skip
        print(f"letters in database: {total} (cloned in {time.perf_counter() - t0:.1f} s)")
        session_factory(url).kw["bind"].dispose()

        env = {**os.environ, "SURATDESA_DATABASE_URL": url, "SURATDESA_KEYS_DIR": str(keys),
               "SURATDESA_PUBLIC_URL": settings.public_url, "SURATDESA_RATE_V": "100000000",
               "SURATDESA_RATE_VERIFY": "100000"}  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "suratdesa.web:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(args.port), "--workers", "2",
             "--log-level", "warning", "--no-access-log", "--no-proxy-headers",
             *(["--http", "httptools", "--loop", "uvloop"] if args.fast
               else ["--http", "h11", "--loop", "asyncio"])],
            cwd=PROJECT_ROOT, env=env,
        )  # fmt: skip
        base = settings.public_url
        for _ in range(100):
            try:
                if httpx.get(f"{base}/verify", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        script = tmp / "codes.lua"
        script.write_text(
            "codes = {" + ",".join(f'"{c}"' for c in codes) + "}\n"
            "request = function()\n"
            "  return wrk.format('GET', '/v/' .. codes[math.random(#codes)])\nend\n"
        )
        wrk(f"{base}/v/{codes[0]}", 3, args.connections, script)  # warm-up
        base_run = wrk(f"{base}/verify", args.duration, args.connections, None)
        v_run = wrk(base, args.duration, args.connections, script)
        with httpx.Client(base_url=base, timeout=60) as client:
            client.post("/api/public/verify", content=pdf,
                        headers={"content-type": "application/pdf"})  # fmt: skip
            times = []
            for _ in range(30):
                t = time.perf_counter()
                r = client.post("/api/public/verify", content=pdf,
                                headers={"content-type": "application/pdf"})  # fmt: skip
                times.append((time.perf_counter() - t) * 1000)
                assert r.json()["status"] == "VALID", r.text
        stack = "httptools + uvloop" if args.fast else "h11 + asyncio"
        print(f"cores: {os.cpu_count()}, wrk -t2 -c{args.connections} -d{args.duration}s, "
              f"uvicorn --workers 2 ({stack}), PostgreSQL")  # fmt: skip
        print(f"baseline GET /verify (no DB): {base_run['rps']:.0f} req/s, "
              f"p50 {base_run['p50']:.1f} ms, p99 {base_run['p99']:.1f} ms")  # fmt: skip
        print(f"GET /v/{{code}}: {v_run['rps']:.0f} req/s, p50 {v_run['p50']:.1f} ms, "
              f"p99 {v_run['p99']:.1f} ms, non-2xx {v_run['non2xx']:.0f}")  # fmt: skip
        print(f"POST /api/public/verify (one-page letter, {len(pdf)} bytes): "
              f"p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms")  # fmt: skip
        print(f"letter: {letter['number']}; codes: {len(codes)}, e.g. {random.choice(codes)}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
