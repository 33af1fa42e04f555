"""Staff pages: Acting heads (Plt./Plh./Pj.)."""

from __future__ import annotations

from datetime import date

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from engine.errors import InvalidInput
from engine.people import acting
from engine.storage.db import transaction
from engine.storage.models import User
from staff_app.deps import Svc, WebDep, nav, require, router, today
from staff_app.i18n import _
from staff_app.rendering import render
from staff_app.session import (
    PREFIX,
    check_csrf,
)


@router.get("/plt")
def acting_page(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    require(web, "admin", "head")
    with transaction(svc.factory) as session:
        return _acting_page(request, session, svc, web)


def _acting_page(request, session, svc, web, *, error=None, errors=None, status=200):
    village = web.actor.village_code
    staff_query = (
        select(User).where(User.role != "head", User.role != "admin").order_by(User.username)
    )
    if village is not None:
        staff_query = staff_query.where(User.village_code == village)
    return render(
        request,
        "acting.html",
        status,
        web=web,
        nav=nav(session, svc, web),
        rows=acting.assignments(session, village),
        staff=list(session.scalars(staff_query.limit(500))),
        prefixes=acting.PREFIXES,
        today=today(),
        error=error,
        errors=errors or {},
    )


@router.post("/plt")
async def acting_post(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "admin", "head")
    await check_csrf(request, web)
    form = await request.form()
    try:
        user_id = int(str(form.get("user_id", "0")))
        starts = date.fromisoformat(str(form.get("starts_on", "")))
        ends = date.fromisoformat(str(form.get("ends_on", "")))
    except ValueError:
        with transaction(svc.factory) as session:
            return _acting_page(
                request,
                session,
                svc,
                web,
                error=_("Fill in the person and both dates."),
                status=422,
            )
    try:
        with transaction(svc.factory) as session:
            user = session.get(User, user_id)
            village = user.village_code if user else None
            acting.record(
                session,
                web.actor,
                village_code=village or "",
                user_id=user_id,
                prefix=str(form.get("prefix", "")),
                starts_on=starts,
                ends_on=ends,
                note=str(form.get("note", "")),
            )
    except InvalidInput as exc:
        with transaction(svc.factory) as session:
            return _acting_page(
                request, session, svc, web, error=str(exc), errors=exc.errors, status=422
            )
    return RedirectResponse(f"{PREFIX}/plt", 303)


@router.post("/plt/{assignment_id}/akhiri")
async def acting_end(request: Request, assignment_id: int, web: WebDep, svc: Svc) -> Response:
    require(web, "admin", "head")
    await check_csrf(request, web)
    with transaction(svc.factory) as session:
        acting.end(session, web.actor, assignment_id)
    return RedirectResponse(f"{PREFIX}/plt", 303)


# --------------------------------------------------------------------------- regency admin
