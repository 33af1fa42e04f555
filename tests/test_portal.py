"""The QR page: rate limits shared by every app process, a light page without JavaScript, and
the offline check of the seal in the QR with `suratdesa verify-qr`."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.config import PROJECT_ROOT
from engine.storage.db import transaction
from engine.storage.models import RateLimitCounter
from suratdesa.web import create_app
from tests.letters import decode_qr
from tests.test_tamper import issue_letter

CODE = "A" * 32  # well-formed, no such letter: the look-up runs, the answer is 404


def client_at(app, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000))


def scan(client: TestClient, code: str = CODE) -> int:
    return client.get(f"/v/{code}").status_code


def shared_count(services, client: str) -> int:
    with transaction(services.factory) as session:
        rows = session.scalars(
            select(RateLimitCounter.count).where(
                RateLimitCounter.bucket == "v", RateLimitCounter.client == client
            )
        ).all()
    return sum(rows)


@pytest.fixture
def small_limit(settings, one_rate_window):
    return replace(settings, rate_v_per_minute=3)


def test_fourth_scan_in_the_window_is_refused_in_indonesian(small_limit):
    app = create_app(small_limit)
    one, other = client_at(app, "10.0.0.1"), client_at(app, "10.0.0.2")
    assert [scan(one) for _ in range(3)] == [404, 404, 404]
    r = one.get(f"/v/{CODE}")
    assert r.status_code == 429
    assert "Terlalu banyak permintaan" in r.text and r.headers["retry-after"] == "60"
    assert one.get(f"/api/public/letters/{CODE}").status_code == 429
    assert "Terlalu banyak" in one.get(f"/api/public/letters/{CODE}").json()["detail"]
    assert scan(other) == 404  # another address is not affected


def test_the_limit_is_shared_by_two_app_processes(services, small_limit):
    first, second = (
        create_app(small_limit),
        create_app(small_limit),
    )  # two processes' worth of state
    a, b = client_at(first, "10.0.0.7"), client_at(second, "10.0.0.7")
    assert [scan(a), scan(a), scan(b)] == [404, 404, 404]
    assert scan(b) == 429  # the 4th request from this address, counted across both apps
    assert scan(a) == 429
    assert scan(client_at(first, "10.0.0.8")) == 404
    assert shared_count(services, "10.0.0.7") >= 4


def test_buffered_counts_reach_the_other_process(settings, services, one_rate_window):
    settings = replace(settings, rate_v_per_minute=10)
    first, second = create_app(settings), create_app(settings)
    a, b = client_at(first, "10.0.0.9"), client_at(second, "10.0.0.9")
    assert [scan(a) for _ in range(4)] == [404] * 4  # under half the limit: buffered
    first.state.portal.counter.flush()  # what its flusher thread does every second
    assert shared_count(services, "10.0.0.9") == 4
    # 6 more are allowed in the other process, then the 11th is refused.
    assert [scan(b) for _ in range(6)] == [404] * 6
    assert scan(b) == 429


def test_the_flusher_writes_buffered_counts_by_itself(settings, services):
    app = create_app(replace(settings, rate_v_per_minute=100))
    assert scan(client_at(app, "10.0.0.10")) == 404
    deadline = time.monotonic() + 30  # liveness, not speed: the flusher runs every second
    while shared_count(services, "10.0.0.10") == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert shared_count(services, "10.0.0.10") == 1


def test_letter_page_is_light_and_needs_no_javascript(settings, logins, passphrase):
    client = TestClient(create_app(settings))
    letter = issue_letter(client, logins, passphrase)
    (qr,) = decode_qr(letter["pdf"])
    for url in (letter["verify_url"], qr):
        r = client.get(url)
        assert r.status_code == 200 and "ASLI" in r.text, url
        assert len(r.content) < 50 * 1024, len(r.content)
        assert "<script" not in r.text.lower()
        assert "http://" not in r.text.replace(letter["verify_url"], "")  # nothing external
    for url in ("/v/" + CODE, "/verify"):
        r = client.get(url)
        assert len(r.content) < 50 * 1024 and "<script" not in r.text.lower()


def _cli(*args: str):
    return subprocess.run(
        [sys.executable, "-m", "suratdesa.cli", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SURATDESA_KEYS_DIR": "/nonexistent"},
        cwd=PROJECT_ROOT,
    )


def test_verify_qr_offline(settings, logins, passphrase, tmp_path):
    client = TestClient(create_app(settings))
    letter = issue_letter(client, logins, passphrase)
    keys = tmp_path / "seal-keys.cose"
    keys.write_bytes(client.get("/pki/seal-keys.cose").content)
    root = tmp_path / "root-ca.pem"
    root.write_bytes(client.get("/pki/root-ca.pem").content)
    (text,) = decode_qr(letter["pdf"])  # what a phone reads from the printed letter

    base = ("--base-url", settings.public_url)
    ok = _cli("verify-qr", text, "--keys", str(keys), "--root", str(root), *base)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "SEGEL SAH" in ok.stdout and letter["number"] in ok.stdout

    seal = text.rsplit("/", 1)[1]
    i = len(seal) // 2
    changed = text[: -len(seal)] + seal[:i] + ("B" if seal[i] != "B" else "C") + seal[i + 1 :]
    bad = _cli("verify-qr", changed, "--keys", str(keys), "--root", str(root), *base)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "TIDAK SAH" in bad.stdout

    no_seal = _cli(
        "verify-qr", letter["verify_url"], "--keys", str(keys), "--root", str(root), *base
    )
    assert no_seal.returncode == 1 and "TIDAK ADA SEGEL" in no_seal.stdout


def test_the_qr_page_survives_the_database_dropping_its_connections(settings, services):
    app = create_app(settings)
    client = client_at(app, "10.0.0.11")
    assert scan(client) == 404
    engine = services.factory.kw["bind"]
    if engine.dialect.name == "postgresql":  # a server restart or failover, as seen by the pool
        with engine.connect() as conn:
            killed = conn.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).scalar_one()
        assert killed >= 1
    assert scan(client) == 404
    assert scan(client) == 404
