"""What every public page shares: the router, templates and verdict labels, the portal's
database reader and rate limits, and the rate-limited and error answers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, create_engine, event

from engine.dates import format_wib
from engine.ratelimit import Limit, SharedCounter

MAX_UPLOAD = 10 * 1024 * 1024  # a one-page letter is ~100 KB

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,  # compiled once per process; no stat() per page
)
# Every time on a public page is WIB, written so ("29-11-2026 14.30.05 WIB"): engine.dates.
_templates.filters["wib"] = format_wib
VERDICTS = {
    "active": ("ASLI", "Surat ini asli dan tercatat aktif.", "ok"),
    "revoked": ("DICABUT", "Surat ini sudah dicabut dan tidak berlaku lagi.", "bad"),
    "replaced": ("DIGANTI", "Surat ini sudah diganti dengan surat pembetulan.", "warn"),
}
UPLOAD_VERDICTS = {
    "VALID": ("ASLI", "Tanda tangan sah, dokumen utuh, dan surat tercatat aktif.", "ok"),
    "INVALID": ("TIDAK SAH", "Berkas ini tidak dapat diterima sebagai surat asli.", "bad"),
    "REVOKED": ("DICABUT", "Berkas asli, tetapi surat ini sudah dicabut.", "bad"),
    "REPLACED": ("DIGANTI", "Berkas asli, tetapi surat ini sudah diganti.", "warn"),
    "UNKNOWN": ("TIDAK DIKENAL", "Surat ini tidak tercatat di registri.", "bad"),
}
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
router = APIRouter()


def _engine(request: Request) -> Engine:
    return request.app.state.services.factory.kw["bind"]


@dataclass
class _Portal:
    """Per app process: the limits (SURATDESA_RATE_V / _VERIFY, read when the app first
    serves the portal), the buffered /v/ counter and the engine the QR page reads with."""

    limit_v: Limit
    limit_verify: Limit
    counter: SharedCounter
    reader: Engine
    inline: bool  # scans may run on the event loop (PostgreSQL autocommit reader)


_portal_lock = threading.Lock()


@lru_cache(maxsize=4)
def _reader(url: str) -> Engine | None:
    """PostgreSQL: an autocommit engine for the QR page (one statement, one round trip; no
    BEGIN/COMMIT, no pre-ping; the only writes are rate counts, which need no WAL flush).
    SQLite: None (the app's engine is used)."""
    if not url.startswith("postgresql"):
        return None
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=20)

    @event.listens_for(engine, "connect")
    def _no_wal_wait(dbapi_conn, _record) -> None:
        dbapi_conn.execute("SET synchronous_commit TO off")

    return engine


def _portal(request: Request) -> _Portal:
    state = request.app.state
    portal = getattr(state, "portal", None)
    if portal is None:
        with _portal_lock:
            portal = getattr(state, "portal", None)
            if portal is None:
                settings = state.services.settings
                pg = _reader(settings.database_url)
                reader = pg or _engine(request)
                portal = _Portal(
                    Limit("v", settings.rate_v_per_minute, 60),
                    Limit("verify", settings.rate_verify_per_minute, 60),
                    SharedCounter(reader),
                    reader,
                    inline=pg is not None,
                )
                state.portal = portal
    return portal


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(**ctx)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def _too_many(json_body: bool) -> Response:
    headers = {**NO_STORE, "Retry-After": "60"}
    message = "Terlalu banyak permintaan dari alamat Anda. Coba lagi dalam satu menit."
    if json_body:
        return JSONResponse({"status": "rate_limited", "detail": message}, 429, headers=headers)
    html = _templates.get_template("message.html").render(title="Terlalu banyak", text=message)
    return HTMLResponse(html, status_code=429, headers=headers)
