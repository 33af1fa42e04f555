"""Sign-in state for the staff app: a signed, expiring cookie (itsdangerous) carrying the user id
and a CSRF token; nothing is kept in the process, so any app process can serve any request.
A password change invalidates older sessions: each cookie carries the time of the password it
was issued under, and a cookie whose time differs from the user's current one is refused."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from fastapi import HTTPException, Request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from engine.config import _dev_secret_key
from engine.db import transaction
from engine.models import User
from engine.users import Actor

SESSION_COOKIE = "sd_session"
PRE_COOKIE = "sd_csrf"  # double-submit token for the sign-in form
SESSION_MAX_AGE = 8 * 3600  # one office day
PREFIX = "/staf"


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


def serializer(request: Request) -> URLSafeTimedSerializer:
    secret = request.app.state.services.settings.secret_key or _dev_secret_key()
    return URLSafeTimedSerializer(secret, salt="suratdesa-staff")


def password_stamp(changed: datetime | None) -> int:
    """The password's generation as carried in a session cookie (microseconds; 0: never)."""
    return 0 if changed is None else int(changed.timestamp() * 1_000_000)


def make_session_cookie(request: Request, user_id: int) -> str:
    with transaction(request.app.state.services.factory) as session:
        changed = session.scalar(select(User.password_changed_at).where(User.id == user_id))
    payload = {"u": user_id, "c": secrets.token_urlsafe(24), "p": password_stamp(changed)}
    return serializer(request).dumps(payload)


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
    if not token or not submitted or not secrets.compare_digest(token, submitted):
        raise HTTPException(403, "csrf")


def _next_of(request: Request) -> str:
    if request.method != "GET" or request.headers.get("HX-Request"):
        return PREFIX + "/beranda"
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(path, safe="/?=&")


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
    factory = request.app.state.services.factory
    with transaction(factory) as session:
        user = session.get(User, payload["u"])
        if user is None or not user.active:
            raise NeedSignIn(_next_of(request))
        if payload.get("p", 0) != password_stamp(user.password_changed_at):
            raise NeedSignIn(_next_of(request), expired=True)  # the password changed since
        village = user.village.name if user.village else None
        web = Web(Actor.of(user), payload["c"], village)
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
