"""The ASGI application: the JSON API and the public verification portal on one server."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from engine.config import Settings
from suratdesa.api import install_error_handlers, router
from suratdesa.services import Services
from verify_portal.app import router as portal_router


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Surat Desa",
        description="Layanan surat desa/kelurahan Kabupaten Sukoharjo",
        version="0.1.0",
    )
    app.state.services = Services.from_settings(settings)
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(portal_router)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
