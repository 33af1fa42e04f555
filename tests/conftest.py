"""Shared fixtures. The database under test is SQLite by default; set
SURATDESA_TEST_DATABASE_URL to a PostgreSQL URL (e.g. postgresql+psycopg://postgres@127.0.0.1/test)
to run the same tests there. Each test gets a fresh database cloned from a template that was
migrated and seeded once per session (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on
PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.bootstrap import DEMO_PASSPHRASE, DemoLogins, seed_demo
from engine.config import PROJECT_ROOT, Settings
from engine.services import Services
from engine.storage.db import session_factory, transaction
from engine.storage.migrate import upgrade
from engine.trust.pki import init_pki

PG_URL = os.environ.get("SURATDESA_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI") == "true"


def require_tool(path: str) -> str:
    """A tool a test needs: skip with the reason on a developer machine, fail in CI."""
    found = shutil.which(path)
    if found:
        return found
    if IN_CI:
        pytest.fail(f"{path} is required in CI but not installed")
    pytest.skip(f"{path} not installed")


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server key folder, as `suratdesa keys init` makes it: no root CA key in it (that
    one goes to a separate temp folder, as keys/dev-root/ beside keys/dev/)."""
    path = tmp_path_factory.mktemp("keys")
    init_pki(path, root_dir=tmp_path_factory.mktemp("keys-root"))
    return path


@dataclass
class DbTemplate:
    url: str
    logins: DemoLogins


def _admin_engine(url: str):
    # pre-ping: a test restarts PostgreSQL for real (tests/test_worker_faults.py)
    return create_engine(
        make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT", pool_pre_ping=True
    )


def _dispose(url: str) -> None:
    session_factory(url).kw["bind"].dispose()


@pytest.fixture(scope="session")
def db_template(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[DbTemplate]:
    if PG_URL:
        name = f"sd_tmpl_{uuid.uuid4().hex[:10]}"
        admin = _admin_engine(PG_URL)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'template.db'}"
    upgrade(url)
    with transaction(session_factory(url)) as session:
        logins = seed_demo(session, keys_dir)
    _dispose(url)
    if not PG_URL:
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    yield DbTemplate(url, logins)
    if PG_URL:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db_url(db_template: DbTemplate, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        name = f"sd_test_{uuid.uuid4().hex[:10]}"
        admin = _admin_engine(PG_URL)
        tmpl = make_url(db_template.url).database
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tmpl}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        yield url
        _dispose(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = tmp_path / "test.db"
        shutil.copyfile(db_template.url.removeprefix("sqlite:///"), path)
        url = f"sqlite:///{path}"
        yield url
        _dispose(url)


@pytest.fixture
def settings(db_url: str, keys_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        audit_dir=tmp_path / "audit",
        public_url="http://testserver",
        keys_dir=keys_dir,
        workflows_dir=PROJECT_ROOT / "workflows",
        paper="F4",
        tsa_url=None,
    )


@pytest.fixture
def services(settings: Settings) -> Services:
    return Services.from_settings(settings)


@pytest.fixture
def logins(db_template: DbTemplate) -> DemoLogins:
    return db_template.logins


@pytest.fixture
def one_rate_window(monkeypatch: pytest.MonkeyPatch) -> float:
    """Pin the clock of the fixed rate-limit windows to the middle of the current minute, so a
    test's few counted requests all fall in one window however slow the machine is (real time
    may cross a minute between two of them, which resets the count)."""
    import time

    from engine import ratelimit

    pinned = time.time() // 60 * 60 + 30
    monkeypatch.setattr(ratelimit, "window_clock", lambda: pinned)
    return pinned


@pytest.fixture
def passphrase() -> str:
    return DEMO_PASSPHRASE


def with_url(settings: Settings, **changes) -> Settings:
    return replace(settings, **changes)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    """The real ASGI app served by uvicorn on 127.0.0.1 (a free port), for browser tests."""
    import socket
    import threading
    import time

    import uvicorn

    from suratdesa.web import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = create_app(replace(settings, public_url=base))
    # proxy_headers off, as `suratdesa serve` runs it: forwarded headers are the app's business
    # (SURATDESA_TRUSTED_PROXIES), never trusted from any loopback peer.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser). One per test:
    Playwright's sync API holds an event loop on the main thread while it runs, which the
    synchronous asyncio users after it (pyHanko) must not inherit."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is required in CI but not installed")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="id-ID", viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


ARTIFACTS = PROJECT_ROOT / "test-artifacts"
