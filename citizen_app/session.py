"""What a citizen page knows about its visitor: the citizen pass (an HttpOnly cookie holding
the engine's encrypted, time-limited pass: engine.citizens.identity), the CSRF token, and the
client address the rate limits count.

CSRF: a double-submit token. A random token lives in an HttpOnly, SameSite=Lax cookie and in a
hidden field of every form; a POST whose field does not match the cookie is refused (403). Nothing
is kept in the process, so any app process serves any request."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response

from engine.citizens.errors import NotIdentified
from engine.citizens.identity import PASS_SECONDS, read_pass
from engine.config import _dev_secret_key

PREFIX = "/warga"
PASS_COOKIE = "sd_warga"
CSRF_COOKIE = "sd_warga_csrf"
CSRF_FIELD = "csrf"


def secret(request: Request) -> str:
    return request.app.state.services.settings.secret_key or _dev_secret_key()


def client(request: Request) -> str:
    """The client address (suratdesa.security decides which proxy headers are believed)."""
    return request.client.host if request.client else "unknown"


def _cookie_options(request: Request) -> dict[str, Any]:
    secure = request.app.state.services.settings.https
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": PREFIX}


def csrf_token(request: Request) -> tuple[str, bool]:
    """(token, whether the cookie must be set): the cookie's token, or a fresh one."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(current) <= 64 and current.replace("-", "").replace("_", "").isalnum():
        return current, False
    return secrets.token_urlsafe(24), True


def set_csrf_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, max_age=12 * 3600, **_cookie_options(request))


def check_csrf(request: Request, submitted: object) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if (
        not isinstance(submitted, str)
        or not cookie
        or not secrets.compare_digest(submitted.encode(), cookie.encode())
    ):
        raise HTTPException(403, "csrf")


def nik_or_none(request: Request) -> str | None:
    """The NIK of the identified visitor, or None."""
    try:
        return read_pass(secret(request), request.cookies.get(PASS_COOKIE))
    except NotIdentified:
        return None


def set_pass(request: Request, response: Response, token: str) -> None:
    response.set_cookie(PASS_COOKIE, token, max_age=PASS_SECONDS, **_cookie_options(request))


def clear_pass(request: Request, response: Response) -> None:
    response.delete_cookie(PASS_COOKIE, path=PREFIX)
