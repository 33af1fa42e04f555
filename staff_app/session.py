"""Sign-in state for the staff app: a server-side session (engine.people.sessions) whose random id
is the only thing the cookie carries (signed with itsdangerous, so a forged value is refused before
any database look-up). Sign-out, a password change and disabling the account end the session row, so
a copied cookie stops working at once. The CSRF token is derived from the session id
(HMAC with the secret key): nothing is kept in the process, so any app process can serve any
request.

Password hashing (argon2) never runs on the event loop: `password_work` runs it on a small
thread pool of its own, at a lower CPU priority, and engine.people.users caps how many hashes run at
once, so a burst of sign-ins neither blocks the loop nor takes the worker threads or the CPU the
other pages need."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import HTTPException, Request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from engine.config import _dev_secret_key
from engine.notify.outbox import unread_count
from engine.people import sessions
from engine.people.users import Actor
from engine.storage.db import transaction

SESSION_COOKIE = "sd_session"
PRE_COOKIE = "sd_csrf"  # double-submit token for the sign-in form
SESSION_MAX_AGE = int(sessions.LIFETIME.total_seconds())  # one office day
PREFIX = "/staf"
T = TypeVar("T")


def _lower_priority() -> None:
    """Password threads yield the CPU to page threads: on Linux the nice value is per thread,
    so a burst of sign-ins takes only the CPU the pages leave over (best effort elsewhere)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


# Sign-in and password work (argon2 + two short transactions) runs here, not in Starlette's
# shared pool: 64 waiting sign-ins queue on this executor and leave the shared pool to pages.
_password_pool = ThreadPoolExecutor(
    max_workers=4, thread_name_prefix="password", initializer=_lower_priority
)


async def password_work(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking, CPU-heavy password work (engine.people.auth) off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_password_pool, partial(fn, *args, **kwargs))


class NeedSignIn(Exception):
    def __init__(self, next_url: str, expired: bool = False) -> None:
        self.next_url = next_url
        self.expired = expired


@dataclass(frozen=True)
class Web:
    """The signed-in staff member as a page sees them."""

    actor: Actor
    csrf: str
    village_name: str | None
    session_token: str  # the raw session id (sign-out and password change end by it)
    village_kind: str | None = None  # "desa" | "kelurahan": the titles the pages show
    unread_notices: int = 0  # the header's Pemberitahuan badge (engine.notify)


def _secret(request: Request) -> str:
    return request.app.state.services.settings.secret_key or _dev_secret_key()


def serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(request), salt="suratdesa-staff")


def cookie_options(request: Request, path: str = "/") -> dict[str, Any]:
    """Cookie attributes: HttpOnly, SameSite=Lax, and Secure when the public URL is https."""
    secure = request.app.state.services.settings.https
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": path}


def session_cookie(request: Request, token: str) -> str:
    return serializer(request).dumps({"s": token})


def csrf_for(request: Request, token: str) -> str:
    mac = hmac.new(_secret(request).encode(), b"csrf\x00" + token.encode(), hashlib.sha256)
    return mac.hexdigest()[:43]


def pre_csrf(request: Request) -> tuple[str, str | None]:
    """(token, cookie value to set or None when the browser already has one)."""
    raw = request.cookies.get(PRE_COOKIE)
    if raw:
        try:
            return serializer(request).loads(raw, max_age=SESSION_MAX_AGE), None
        except BadSignature:
            pass
    token = secrets.token_urlsafe(24)
    return token, serializer(request).dumps(token)


def check_pre_csrf(request: Request, submitted: str | None) -> None:
    raw = request.cookies.get(PRE_COOKIE)
    try:
        token = serializer(request).loads(raw or "", max_age=SESSION_MAX_AGE)
    except BadSignature:
        token = None
    if (
        not isinstance(token, str)
        or not isinstance(submitted, str)
        or not token
        or not secrets.compare_digest(token, submitted)
    ):
        raise HTTPException(403, "csrf")


def _next_of(request: Request) -> str:
    if request.method != "GET" or request.headers.get("HX-Request"):
        return PREFIX + "/beranda"
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(path, safe="/?=&")


def session_token(request: Request) -> str | None:
    """The session id in the request's cookie, if the cookie is ours and not too old."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        payload = serializer(request).loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return None
    token = payload.get("s") if isinstance(payload, dict) else None
    return token if isinstance(token, str) and token else None


def current(request: Request) -> Web:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        raise NeedSignIn(_next_of(request))
    try:
        payload = serializer(request).loads(raw, max_age=SESSION_MAX_AGE)
    except SignatureExpired:
        raise NeedSignIn(_next_of(request), expired=True) from None
    except BadSignature:
        raise NeedSignIn(_next_of(request)) from None
    token = payload.get("s") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise NeedSignIn(_next_of(request), expired=True)  # a cookie of the old format
    with transaction(request.app.state.services.factory) as session:
        user = sessions.resolve(session, token)
        if user is None:
            raise NeedSignIn(_next_of(request), expired=True)  # ended, expired or disabled
        village = user.village.name if user.village else None
        kind = user.village.kind if user.village else None
        web = Web(
            Actor.of(user),
            csrf_for(request, token),
            village,
            token,
            kind,
            unread_notices=unread_count(session, user.id),
        )
    return web


async def check_csrf(request: Request, web: Web) -> None:
    form = await request.form()
    submitted = form.get("csrf") or request.headers.get("X-CSRF-Token")
    if not isinstance(submitted, str) or not secrets.compare_digest(submitted, web.csrf):
        raise HTTPException(403, "csrf")


def safe_next(value: str | None) -> str:
    """Only a path inside the staff app: never an open redirect."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//"):
        return value
    return PREFIX + "/beranda"


def now() -> float:
    return time.time()
