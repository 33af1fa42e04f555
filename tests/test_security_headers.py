"""Security headers on every face (staff app, portal, API, docs, static files), and forwarded
headers believed only from configured proxies."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import replace

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.bootstrap import DEMO_PASSWORD
from engine.config import PROJECT_ROOT, parse_trusted_proxies
from engine.storage.db import transaction
from engine.storage.models import RateLimitCounter
from suratdesa.web import create_app

P = "/staf"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def assert_hardened(response, referrer: str = "same-origin") -> None:
    h = response.headers
    csp = h["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    script_src = re.search(r"script-src ([^;]*)", csp).group(1)
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == referrer


def test_headers_on_every_face(services):
    app = create_app(services.settings)
    client = TestClient(app, follow_redirects=False)
    signin = client.get(f"{P}/masuk")
    for path in (f"{P}/masuk", f"{P}/static/app.css", "/verify", "/pki/", "/openapi.json"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert_hardened(r)
    assert_hardened(client.get(f"{P}/beranda"))  # 303 to sign-in
    assert_hardened(client.get("/api/workflows"))  # 401
    assert_hardened(client.get("/v/" + "A" * 32), referrer="no-referrer")  # 404, code in URL
    client.post(
        f"{P}/masuk",
        data={
            "username": "operator.grogol",
            "password": DEMO_PASSWORD,
            "csrf": csrf_of(signin.text),
        },
    )
    home = client.get(f"{P}/beranda")
    assert home.status_code == 200
    assert_hardened(home)
    assert "<script>" not in home.text and " onclick=" not in home.text


def test_docs_allow_only_their_own_inline_script(services):
    client = TestClient(create_app(services.settings))
    r = client.get("/docs")
    assert_hardened(r)
    csp = r.headers["content-security-policy"]
    hashes = re.findall(r"'sha256-([^']+)'", csp)
    assert len(hashes) == 1 and "cdn" not in r.text.lower()


def test_trusted_proxies_setting_refuses_nonsense():
    assert parse_trusted_proxies(" 10.0.0.1, 192.168.0.0/16 ,::1") == (
        "10.0.0.1",
        "192.168.0.0/16",
        "::1",
    )
    assert parse_trusted_proxies("") == ()
    with pytest.raises(ValueError, match="proxy.example"):
        parse_trusted_proxies("proxy.example")


def addr_clients(services) -> set[str]:
    with transaction(services.factory) as session:
        return set(
            session.scalars(
                select(RateLimitCounter.client).where(RateLimitCounter.bucket == "signin_addr")
            )
        )


def bad_sign_in(client) -> None:
    token = csrf_of(client.get(f"{P}/masuk").text)
    r = client.post(
        f"{P}/masuk",
        data={"username": "x", "password": "y", "csrf": token},
        headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"},
    )
    assert r.status_code == 401


def test_spoofed_forwarded_for_from_an_unconfigured_peer_counts_as_the_peer(services):
    for peer in ("203.0.113.9", "127.0.0.1"):  # loopback is not trusted either
        bad_sign_in(TestClient(create_app(services.settings), client=(peer, 40000)))
    assert addr_clients(services) == {"203.0.113.9", "127.0.0.1"}


def test_forwarded_for_honoured_from_a_configured_proxy(services):
    settings = replace(services.settings, trusted_proxies=("203.0.113.0/24",))
    bad_sign_in(TestClient(create_app(settings), client=("203.0.113.9", 40000)))
    bad_sign_in(TestClient(create_app(settings), client=("192.0.2.50", 40000)))  # not a proxy
    assert addr_clients(services) == {"198.51.100.7", "192.0.2.50"}


def test_portal_rate_limit_counts_the_real_peer(services, one_rate_window):
    """The public QR page's per-address limit: a spoofed header does not give a fresh budget."""
    app = create_app(replace(services.settings, rate_v_per_minute=3))
    client = TestClient(app, client=("203.0.113.20", 40000))
    codes = [
        client.get("/v/" + "A" * 32, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(6)
    ]
    assert codes[:3] == [404, 404, 404] and 429 in codes[3:]


def test_served_app_ignores_forwarded_for_from_loopback(services, settings, tmp_path):
    """`suratdesa serve` for real (uvicorn): a loopback peer's X-Forwarded-For is not believed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "SURATDESA_DATABASE_URL": settings.database_url,
        "SURATDESA_KEYS_DIR": str(settings.keys_dir),
        "SURATDESA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SURATDESA_AUDIT_DIR": str(tmp_path / "audit"),
        "SURATDESA_AUDIT_CHECKPOINT_HOURS": "0",
    }
    env.pop("SURATDESA_TRUSTED_PROXIES", None)
    cmd = [sys.executable, "-m", "suratdesa.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/verify", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            bad_sign_in(client)
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert addr_clients(services) == {"127.0.0.1"}
