"""Mount the staff app on the ASGI app: its pages under /staf, its static files, and an HTML
page (not the API's JSON) for an unknown /staf address."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from staff_app.i18n import _
from staff_app.rendering import error_page
from staff_app.session import PREFIX
from staff_app.views import router

STATIC = Path(__file__).parent / "static"


async def _not_found(request: Request, exc: StarletteHTTPException) -> Response:
    """A mistyped /staf/... address is a page staff can read; elsewhere FastAPI's answer."""
    path = request.url.path
    staff_page = path == PREFIX or (
        path.startswith(PREFIX + "/") and not path.startswith(PREFIX + "/static/")
    )
    if exc.status_code == 404 and staff_page:
        return error_page(
            request,
            404,
            _("This page does not exist. Check the address, or go back to the home page."),
        )
    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    app.mount("/staf/static", StaticFiles(directory=STATIC), name="staff-static")
    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _not_found)  # type: ignore[arg-type]
