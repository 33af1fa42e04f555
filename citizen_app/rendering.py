"""How citizen pages are rendered: the Jinja2 environment, the page answer (with the CSRF cookie
and no caching of anything personal), and the route class that turns engine and HTTP errors into
pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from citizen_app.session import PREFIX, csrf_token, nik_or_none, set_csrf_cookie
from engine.citizens.errors import NotIdentified
from engine.dates import WIB, format_tanggal
from engine.errors import SuratDesaError
from engine.http_status import http_status

TEMPLATES = Path(__file__).parent / "templates"
PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}


def _wib(value) -> str:  # noqa: ANN001 - a datetime or None
    if value is None:
        return ""
    local = value.astimezone(WIB)
    return f"{format_tanggal(local.date())} pukul {local:%H.%M} WIB"


ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
ENV.globals.update(P=PREFIX, wib=_wib, tanggal=lambda d: format_tanggal(d) if d else "")


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    token, new = csrf_token(request)
    context.setdefault("identified", nik_or_none(request) is not None)
    html = ENV.get_template(name).render(request=request, csrf=token, **context)
    response = HTMLResponse(html, status, headers=PRIVATE)
    if new:
        set_csrf_cookie(request, response, token)
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return page(request, "error.html", status, message=message, code=status)


def to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path if request.method == "GET" else PREFIX + "/ajukan"
    return RedirectResponse(f"{PREFIX}/masuk?next={quote(target)}", 303)


class CitizenRoute(APIRoute):
    """Engine errors and HTTP errors as citizen pages; an expired pass leads to the sign-in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except NotIdentified:
                return to_sign_in(request)
            except HTTPException as exc:
                if exc.status_code == 403 and exc.detail == "csrf":
                    message = "Formulir sudah kedaluwarsa. Muat ulang halaman lalu coba lagi."
                elif exc.status_code == 404:
                    message = "Halaman tidak ditemukan."
                else:
                    message = str(exc.detail)
                return error_page(request, exc.status_code, message)
            except SuratDesaError as exc:
                return error_page(request, http_status(exc), str(exc))

        return wrapped
