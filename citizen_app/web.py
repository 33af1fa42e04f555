"""Mount the citizen face on the ASGI app: its pages under /warga/ and its static files."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from citizen_app import pwa  # noqa: F401 - adds the manifest, service worker and offline page
from citizen_app.pwa import STATIC
from citizen_app.views import router


def install(app: FastAPI) -> None:
    app.mount("/warga/static", StaticFiles(directory=STATIC), name="citizen-static")
    app.include_router(router)
