"""Mount the staff app on the ASGI app: its pages under /staf and its static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from staff_app.views import router

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    app.mount("/staf/static", StaticFiles(directory=STATIC), name="staff-static")
    app.include_router(router)
