"""Staff pages: New requests, the request lists and queues, one request's page and its actions,
attachments, hand-over."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from engine import attachments
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.http_status import http_status
from engine.people import acting, admin
from engine.people.users import (
    STAFF_ROLES,
)
from engine.requests import queues
from engine.requests.letter_requests import act, create_request, timeline
from engine.requests.statemachine import available_actions
from engine.requests.workflows import TERMINAL_STATES, WorkflowSpec
from engine.services import Services
from engine.storage.db import transaction
from engine.storage.models import Letter, Resident, Village
from staff_app.deps import (
    Svc,
    WebDep,
    load_request,
    nav,
    require,
    resident_info,
    router,
    spec_or_404,
    today,
    uploads_of,
)
from staff_app.i18n import _
from staff_app.rendering import render, row
from staff_app.session import (
    PREFIX,
    Web,
    check_csrf,
)


@router.get("/baru")
def new_request_page(request: Request, web: WebDep, svc: Svc, jenis: str = "") -> HTMLResponse:
    require(web, "operator")
    spec = spec_or_404(svc, jenis) if jenis else None
    with transaction(svc.factory) as session:
        return render(
            request,
            "new.html",
            web=web,
            nav=nav(session, svc, web),
            specs=list(svc.catalog.specs.values()),
            spec=spec,
            values={},
            errors={},
            infos={},
        )


def _form_values(form, spec: WorkflowSpec) -> tuple[dict[str, str], dict[str, str]]:
    subjects = {s.name: str(form.get(f"subject_{s.name}", "")).strip() for s in spec.subjects}
    data = {f.name: str(form.get(f"field_{f.name}", "")) for f in spec.fields}
    return subjects, data


@router.post("/baru")
async def new_request_post(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "operator")
    await check_csrf(request, web)
    form = await request.form()
    spec = spec_or_404(svc, str(form.get("jenis", "")))
    subjects, data = _form_values(form, spec)
    uploads = await uploads_of(form)
    error: str | None = None
    file_errors: dict[str, str] = {}
    try:
        attachments.check(uploads)
    except InvalidInput as exc:
        file_errors = exc.errors
    try:
        with transaction(svc.factory) as session:
            req = create_request(session, svc.catalog, web.actor, spec.id, subjects, data)
            if file_errors:  # the data is fine but a file is not: keep nothing yet
                raise InvalidInput(_("The attachments could not be saved."), file_errors)
            attachments.add(session, web.actor, req.id, uploads)
            act(session, svc.catalog, web.actor, req.id, "submit", version=req.version)
            new_id = req.id
    except InvalidInput as exc:
        error = str(exc)
        errors = {**exc.errors, **file_errors}
    else:
        return RedirectResponse(f"{PREFIX}/permohonan/{new_id}?ok=submit", 303)
    with transaction(svc.factory) as session:
        infos = {
            s.name: resident_info(session, web.actor, spec, s.name, subjects[s.name])
            for s in spec.subjects
        }
        return render(
            request,
            "new.html",
            422,
            web=web,
            nav=nav(session, svc, web),
            specs=list(svc.catalog.specs.values()),
            spec=spec,
            values={**{f"subject_{k}": v for k, v in subjects.items()}, **data},
            errors=errors,
            infos=infos,
            error=error,
        )


@router.get("/permohonan")
def my_requests(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    require(web, "operator")
    with transaction(svc.factory) as session:
        rows = [row(svc, session, r) for r in queues.own_requests(session, web.actor.user_id)]
        return render(
            request,
            "list.html",
            web=web,
            nav=nav(session, svc, web),
            rows=rows,
            heading=_("My requests"),
        )


@router.get("/antrean")
def review_queue(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    require(web, "kasi", "sekdes")
    with transaction(svc.factory) as session:
        items = queues.queue(session, svc.catalog, web.actor.village_code or "", web.actor.role)
        return render(
            request,
            "list.html",
            web=web,
            nav=nav(session, svc, web),
            rows=[row(svc, session, r) for r in items],
            heading=_("Review queue"),
        )


@router.get("/permohonan/{request_id}")
def request_page(
    request: Request, request_id: int, web: WebDep, svc: Svc, ok: str = ""
) -> HTMLResponse:
    with transaction(svc.factory) as session:
        return _request_page(request, session, svc, web, request_id, ok=ok)


def _request_page(
    request: Request,
    session,
    svc: Services,
    web: Web,
    request_id: int,
    *,
    ok: str = "",
    error: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    reason: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    req = load_request(session, web.actor, request_id)
    spec = svc.catalog.pinned(session, req)
    capacity = acting.step_capacity(session, web.actor, today(), spec, req.state)
    actions = available_actions(spec, req.state, capacity.role) if web.actor.role != "admin" else []
    if capacity.on_behalf:  # signing "a.n." is all a delegate does at the head's step
        actions = [a for a in actions if a == "sign"]
    residents = {
        r.nik: r
        for r in session.scalars(select(Resident).where(Resident.nik.in_(req.subjects.values())))
    }
    events = timeline(session, req.id)
    last_return = next((e for e in reversed(events) if e.action == "return"), None)
    letter = session.scalar(select(Letter).where(Letter.request_id == req.id))
    village = session.get(Village, req.village_code)
    return render(
        request,
        "request.html",
        status,
        web=web,
        nav=nav(session, svc, web),
        req=req,
        spec=spec,
        residents=residents,
        events=events,
        actions=actions,
        editable=req.state == spec.initial_state and "submit" in actions,
        last_return=last_return,
        letter=letter,
        files=attachments.listing(session, web.actor, req.id),
        can_attach=web.actor.role in STAFF_ROLES and req.state not in TERMINAL_STATES,
        size_label=attachments.size_label,
        on_behalf=acting.on_behalf_title(village, capacity.on_behalf)
        if capacity.on_behalf
        else None,
        own_title=acting.own_title(web.actor.role, village),
        village_kind=village.kind,
        state=row(svc, session, req)["state_label"],
        ok=ok,
        error=error,
        errors=errors or {},
        reason=reason,
        values=values
        if values is not None
        else {k: "" if v is None else str(v) for k, v in req.data.items()},
    )


@router.post("/permohonan/{request_id}/tindakan")
async def request_action(request: Request, request_id: int, web: WebDep, svc: Svc) -> Response:
    require(web, "operator", "kasi", "sekdes", "head")  # the regency admin reads, never acts
    await check_csrf(request, web)
    form = await request.form()
    action = str(form.get("action", ""))
    reason = str(form.get("reason", "")).strip() or None
    try:
        version = int(str(form.get("version", "")))
    except ValueError:
        raise HTTPException(422, _("The form is incomplete.")) from None
    with transaction(svc.factory) as session:
        moved_on = load_request(session, web.actor, request_id).version != version
    if moved_on:
        # Someone acted since this page was loaded: say so, whatever the engine would say next.
        with transaction(svc.factory) as session:
            return _request_page(
                request,
                session,
                svc,
                web,
                request_id,
                error=_("Someone else has already processed this request since you opened it."),
                status=409,
            )
    if action == "reject" and form.get("confirm_reject") != "1":
        # Rejecting is final: the page asks for a ticked confirmation, checked here so it holds
        # without JavaScript.
        with transaction(svc.factory) as session:
            return _request_page(
                request,
                session,
                svc,
                web,
                request_id,
                error=_("Not rejected: tick the confirmation first. Rejecting is final."),
                errors={"confirm_reject": _("Tick this box to reject.")},
                reason=reason,
                status=422,
            )
    data = None
    if action == "submit" and any(k.startswith("field_") for k in form):
        with transaction(svc.factory) as session:
            spec = svc.catalog.pinned(session, load_request(session, web.actor, request_id))
        data = {f.name: str(form.get(f"field_{f.name}", "")) for f in spec.fields}
    uploads = await uploads_of(form) if action == "submit" else []
    try:
        with transaction(svc.factory) as session:
            if any(u.filename or u.length for u in uploads):
                attachments.add(session, web.actor, request_id, uploads)
            act(
                session,
                svc.catalog,
                web.actor,
                request_id,
                action,
                version=version,
                reason=reason,
                data=data,
            )
    except (InvalidInput, Conflict, Forbidden) as exc:
        status = http_status(exc)
        with transaction(svc.factory) as session:
            return _request_page(
                request,
                session,
                svc,
                web,
                request_id,
                error=str(exc),
                errors=getattr(exc, "errors", {}),
                values=data,
                reason=reason,
                status=status,
            )
    return RedirectResponse(f"{PREFIX}/permohonan/{request_id}?ok={action}", 303)


@router.post("/permohonan/{request_id}/lampiran")
async def attach(request: Request, request_id: int, web: WebDep, svc: Svc) -> Response:
    require(web, *STAFF_ROLES)
    await check_csrf(request, web)
    form = await request.form()
    uploads = [u for u in await uploads_of(form) if u.filename or u.length]
    with transaction(svc.factory) as session:
        load_request(session, web.actor, request_id)  # another village's request: 404
    try:
        if not uploads:
            raise InvalidInput(
                _("Choose a file first."), {attachments.FIELD: _("Choose a file first.")}
            )
        with transaction(svc.factory) as session:
            load_request(session, web.actor, request_id)
            attachments.add(session, web.actor, request_id, uploads)
    except InvalidInput as exc:
        with transaction(svc.factory) as session:
            return _request_page(
                request,
                session,
                svc,
                web,
                request_id,
                error=str(exc),
                errors=exc.errors,
                status=422,
            )
    return RedirectResponse(f"{PREFIX}/permohonan/{request_id}?ok=attach#lampiran", 303)


@router.get("/permohonan/{request_id}/lampiran/{attachment_id}")
def attachment_file(
    request: Request, request_id: int, attachment_id: int, web: WebDep, svc: Svc
) -> Response:
    with transaction(svc.factory) as session:
        load_request(session, web.actor, request_id)
        row = attachments.fetch(session, web.actor, request_id, attachment_id)
        ascii_name = row.filename.encode("ascii", "replace").decode().replace('"', "_")
        return Response(
            row.data,
            media_type=row.content_type,
            headers={
                "Content-Disposition": f'attachment; filename="{ascii_name}"; '
                f"filename*=UTF-8''{quote(row.filename)}",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )


@router.post("/permohonan/{request_id}/diserahkan")
async def hand_over(request: Request, request_id: int, web: WebDep, svc: Svc) -> Response:
    require(web, "operator")
    await check_csrf(request, web)
    with transaction(svc.factory) as session:
        load_request(session, web.actor, request_id)
        admin.hand_over(session, web.actor, request_id)
    return RedirectResponse(f"{PREFIX}/permohonan/{request_id}?ok=handover", 303)
