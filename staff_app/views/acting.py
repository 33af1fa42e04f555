"""Staff pages: Acting heads (Plt./Plh./Pj.)."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from engine.errors import InvalidInput
from engine.people import acting, admin
from engine.storage.db import transaction
from engine.storage.models import User, Village
from staff_app.deps import Svc, WebDep, nav, require, router, today
from staff_app.i18n import _
from staff_app.rendering import render
from staff_app.session import (
    PREFIX,
    check_csrf,
)


@router.get("/plt")
def acting_page(request: Request, web: WebDep, svc: Svc, setelah: str = "") -> HTMLResponse:
    require(web, "admin", "head")
    with transaction(svc.factory) as session:
        return _acting_page(request, session, svc, web, after=setelah)


def _acting_page(request, session, svc, web, *, error=None, errors=None, status=200, after=""):
    """One page of assignments (``after``: the ?setelah= cursor; one the engine refuses is a
    422 page saying so) and the form to record one."""
    village = web.actor.village_code
    try:
        page = acting.assignments_page(session, village, after=after or None)
    except InvalidInput as exc:
        page, after, status, error = acting.AssignmentPage([], None), "", 422, str(exc)
    rows = page.rows
    staff_query = (
        select(User)
        .where(User.role != "head", User.role != "admin", User.active.is_(True))
        .order_by(User.village_code, User.username)
    )
    if village is not None:
        staff_query = staff_query.where(User.village_code == village)
    staff = list(session.scalars(staff_query.limit(500)))
    # The regency admin picks among all villages' staff: grouped under each village's name
    # and kecamatan ("Desa Grogol, Kec. Weru"), never a bare code.
    codes = {u.village_code for u in staff} | {a.village_code for a in rows}
    places = {
        v.code: admin.village_choice(v).rsplit(" (", 1)[0]
        for v in session.scalars(select(Village).where(Village.code.in_(codes)))
    }
    groups: dict[str, list[User]] = {}
    for user in staff:
        groups.setdefault(places.get(user.village_code or "", user.village_code or "-"), []).append(
            user
        )
    return render(
        request,
        "acting.html",
        status,
        web=web,
        nav=nav(session, svc, web),
        rows=rows,
        groups=groups,
        places=places,
        grouped=village is None,
        prefixes=acting.PREFIXES,
        today=today(),
        error=error,
        errors=errors or {},
        first_url="?" if after else None,
        next_url=f"?{urlencode({'setelah': page.next_cursor})}" if page.next_cursor else None,
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
