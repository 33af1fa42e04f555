"""Staff pages: Sign-in, sign-out and password change."""

from __future__ import annotations

import asyncio
from time import monotonic

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.errors import InvalidInput
from engine.people.auth import SignInFailed, change_password, floor_remaining, sign_in
from engine.people.sessions import end as end_session
from engine.storage.db import transaction
from staff_app.deps import Svc, WebDep, router
from staff_app.i18n import _
from staff_app.rendering import render
from staff_app.session import (
    PRE_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    check_csrf,
    check_pre_csrf,
    cookie_options,
    password_work,
    pre_csrf,
    safe_next,
    session_cookie,
)


@router.get("/masuk")
def signin_page(request: Request, next: str = "", habis: str = "") -> HTMLResponse:
    token, cookie = pre_csrf(request)
    message = _("Your session has ended. Sign in again.") if habis else None
    response = render(request, "signin.html", csrf=token, next=safe_next(next), message=message)
    if cookie:
        response.set_cookie(PRE_COOKIE, cookie, **cookie_options(request, PREFIX))
    return response


@router.post("/masuk")
async def signin_post(request: Request, svc: Svc) -> Response:
    """Sign-in: argon2 and the throttle run on the password thread pool, never on the event
    loop. Every failure (unknown name, wrong password, disabled, throttled) gets the same page,
    status and cookies, no sooner than engine.people.auth.FAILURE_FLOOR after the request came."""
    started = monotonic()
    form = await request.form()
    check_pre_csrf(request, form.get("csrf"))  # type: ignore[arg-type]
    username = str(form.get("username", ""))[:200]
    next_url = safe_next(str(form.get("next", "")))
    client = request.client.host if request.client else "unknown"
    try:
        signed_in = await password_work(
            sign_in, svc.factory, username, str(form.get("password", ""))[:1024], client=client
        )
    except SignInFailed as exc:
        await asyncio.sleep(floor_remaining(started))
        token, _cookie = pre_csrf(request)
        return render(
            request,
            "signin.html",
            401,
            csrf=token,
            next=next_url,
            error=str(exc),
            username=username,
        )
    response = RedirectResponse(next_url, 303)
    response.set_cookie(
        SESSION_COOKIE,
        session_cookie(request, signed_in.session_token),
        max_age=SESSION_MAX_AGE,
        **cookie_options(request),
    )
    return response


@router.post("/keluar")
async def signout(request: Request, web: WebDep, svc: Svc) -> Response:
    """Ends the session in the database: a copy of the cookie stops working at once."""
    await check_csrf(request, web)
    with transaction(svc.factory) as session:
        end_session(session, web.session_token, "signout")
    response = RedirectResponse(f"{PREFIX}/masuk", 303)
    options = cookie_options(request)
    response.delete_cookie(SESSION_COOKIE, **options)
    return response


@router.get("/sandi")
def password_page(request: Request, web: WebDep) -> HTMLResponse:
    return render(request, "password.html", web=web, errors={})


@router.post("/sandi")
async def password_post(request: Request, web: WebDep, svc: Svc) -> Response:
    """Change the password (argon2 on the password thread pool); this session stays, every
    other session of the user ends and all their API tokens are revoked."""
    await check_csrf(request, web)
    form = await request.form()
    try:
        await password_work(
            change_password,
            svc.factory,
            web.actor.user_id,
            str(form.get("current", ""))[:1024],
            str(form.get("new", ""))[:1024],
            str(form.get("repeat", ""))[:1024],
            keep_session=web.session_token,
        )
    except InvalidInput as exc:
        return render(request, "password.html", 422, web=web, errors=exc.errors)
    return RedirectResponse(f"{PREFIX}/beranda?ok=sandi", 303)


# --------------------------------------------------------------------------- home
