"""The ASGI application: the JSON API and the public verification portal on one server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from engine.config import Settings
from staff_app.web import install as install_staff_app
from suratdesa.api import install_error_handlers, router
from suratdesa.services import Services
from verify_portal.app import router as portal_router


def mount_api_docs(app: FastAPI) -> None:
    """OpenAPI UI at /docs with the Swagger UI files of the fastapi-offline package, not a CDN."""
    static = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"
    app.mount("/docs-static", StaticFiles(directory=static), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Surat Desa API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Surat Desa",
        description="Layanan surat desa/kelurahan Kabupaten Sukoharjo",
        version="0.1.0",
        docs_url=None,  # served below from a vendored Swagger UI: no CDN
        redoc_url=None,
    )
    mount_api_docs(app)
    app.state.services = Services.from_settings(settings)
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(portal_router)
    install_staff_app(app)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/staf/masuk")

    return app
