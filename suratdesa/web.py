"""The ASGI application: the JSON API and the public verification portal on one server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import logging
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api import install_error_handlers, router
from citizen_app.web import install as install_citizen_app
from engine.config import Settings
from engine.services import Services
from staff_app.web import install as install_staff_app
from suratdesa import security
from suratdesa.body_limit import BodySizeLimit
from suratdesa.security import docs_csp
from verify_portal.app import router as portal_router


def mount_api_docs(app: FastAPI) -> None:
    """OpenAPI UI at /docs with the Swagger UI files of the fastapi-offline package, not a CDN."""
    static = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"
    app.mount("/docs-static", StaticFiles(directory=static), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Surat Desa API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
        )
        # Its one inline start-up script is allowed by its hash, nothing else inline.
        inline = re.findall(rb"<script>(.*?)</script>", bytes(page.body), re.S)
        hashes = [base64.b64encode(hashlib.sha256(code).digest()).decode() for code in inline]
        page.headers["Content-Security-Policy"] = docs_csp(hashes)
        return page


log = logging.getLogger("suratdesa.audit")
# The automatic audit checkpoint: every app process looks every CHECKPOINT_POLL (with jitter, so
# processes started together do not knock at once) and makes one when the newest is older than
# Settings.audit_checkpoint_hours. engine.storage.audit_checkpoints.ensure_checkpoint makes that
# safe to race.
CHECKPOINT_FIRST_DELAY = (30.0, 120.0)  # seconds after start-up, drawn at random
CHECKPOINT_POLL = 15 * 60.0


async def audit_checkpoint_loop(services: Services, hours: float) -> None:
    from engine.storage.audit_checkpoints import ensure_checkpoint

    await asyncio.sleep(random.uniform(*CHECKPOINT_FIRST_DELAY))
    while True:
        try:
            made = await asyncio.to_thread(
                ensure_checkpoint,
                services.factory,
                services.settings,
                max_age=timedelta(hours=hours),
            )
            if made is not None:
                log.info("audit checkpoint written: %s", made.path)
        except Exception:  # keep serving; the next round tries again and logs again
            log.exception("audit checkpoint failed")
        await asyncio.sleep(CHECKPOINT_POLL * random.uniform(0.8, 1.2))


def start_notice_dispatcher(services: Services):
    """Deliver notices from this process (engine.notify), unless SURATDESA_NOTIFY_DISPATCH=0
    leaves it to `suratdesa notify run --loop` elsewhere."""
    if not services.settings.notify_dispatch:
        return None
    from engine.notify.dispatcher import BackgroundDispatcher, Dispatcher

    dispatcher = Dispatcher(services.factory, services.settings)
    return BackgroundDispatcher(dispatcher, services.settings.notify_poll_seconds).start()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    services: Services = app.state.services
    task = None
    if services.settings.audit_checkpoint_hours > 0:
        task = asyncio.create_task(
            audit_checkpoint_loop(services, services.settings.audit_checkpoint_hours)
        )
    notices = start_notice_dispatcher(services)
    try:
        yield
    finally:
        if notices is not None:
            await asyncio.to_thread(notices.stop)
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Surat Desa",
        description="Layanan surat desa/kelurahan Kabupaten Sukoharjo",
        version="0.1.0",
        docs_url=None,  # served below from a vendored Swagger UI: no CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    mount_api_docs(app)
    app.state.services = Services.from_settings(settings)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    app.include_router(router)
    app.include_router(portal_router)
    install_staff_app(app)
    install_citizen_app(app)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/staf/masuk")

    security.install(app, app.state.services.settings.trusted_proxies)  # outermost
    return app
