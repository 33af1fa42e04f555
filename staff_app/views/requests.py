"""Staff pages: New requests, the request lists and queues, one request's page and its actions,
attachments, hand-over."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from engine import attachments
from engine.citizens import history
from engine.citizens.requests import operator_queue_page as citizen_queue_page
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.http_status import http_status
from engine.letters import pickup
from engine.people import acting
from engine.people.users import STAFF_ROLES, hash_password
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
    password_work,
)


@router.get("/baru")
def new_request_page(request: Request, web: WebDep, svc: Svc, jenis: str = "") -> HTMLResponse:
    require(web, "operator")
    spec = spec_or_404(svc, jenis) if jenis else None
    # A NIK given in the address (subject_<name>=...): the form comes back prefilled after the
    # operator added the resident from the look-up's dead end (staff_app.views.residents).
    typed = {
        s.name: request.query_params.get(f"subject_{s.name}", "")[:40]
        for s in (spec.subjects if spec else [])
    }
    with transaction(svc.factory) as session:
        infos = {
            name: resident_info(session, web.actor, spec, name, nik)
            for name, nik in typed.items()
            if nik
        }
        return render(
            request,
            "new.html",
            web=web,
            nav=nav(session, svc, web),
            specs=list(svc.catalog.specs.values()),
            spec=spec,
            values={f"subject_{name}": nik for name, nik in typed.items() if nik},
            errors={},
            infos=infos,
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


def _list_page(
    request: Request, session, svc: Services, web: Web, heading: str, load, **extra
) -> HTMLResponse:
    """A paged request list: ``load(after)`` is the engine's page function; ?setelah= holds
    the cursor. A cursor or search the engine refuses is a 422 page saying so."""
    params = dict(request.query_params)
    keep = {"cari": params["cari"]} if params.get("cari") else {}
    try:
        page = load(params.get("setelah") or None)
    except InvalidInput as exc:
        fields = {"cursor": "setelah", "search": "cari"}
        errors = {fields.get(k, k): v for k, v in exc.errors.items()}
        page, status, error = queues.RequestPage([], None), 422, str(exc)
    else:
        errors, status, error = {}, 200, None
    return render(
        request,
        "list.html",
        status,
        web=web,
        nav=nav(session, svc, web),
        rows=[row(svc, session, r) for r in page.rows],
        heading=heading,
        error=error,
        errors=errors,
        first_url=f"?{urlencode(keep)}" if params.get("setelah") else None,
        next_url=f"?{urlencode({**keep, 'setelah': page.next_cursor})}"
        if page.next_cursor
        else None,
        **{"search": None, "total": None, **extra},
    )


@router.get("/permohonan")
def my_requests(request: Request, web: WebDep, svc: Svc, cari: str = "") -> HTMLResponse:
    require(web, "operator")
    with transaction(svc.factory) as session:
        return _list_page(
            request,
            session,
            svc,
            web,
            _("My requests"),
            lambda after: queues.own_requests_page(
                session, svc.catalog, web.actor.user_id, search=cari, after=after
            ),
            search=cari,
        )


@router.get("/antrean")
def review_queue(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    require(web, "kasi", "sekdes")
    village, role = web.actor.village_code or "", web.actor.role
    with transaction(svc.factory) as session:
        return _list_page(
            request,
            session,
            svc,
            web,
            _("Review queue"),
            lambda after: queues.queue_page(session, svc.catalog, village, role, after=after),
            total=queues.queue_count(session, svc.catalog, village, role),
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
        relations=pickup.RELATIONS,
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
    form = await request.form()
    receiver = {
        "receiver_name": form.get("receiver_name"),
        "relation": form.get("receiver_relation"),
        "id_number": form.get("receiver_id_number"),
    }
    try:
        with transaction(svc.factory) as session:
            load_request(session, web.actor, request_id)
            pickup.hand_over(session, web.actor, request_id, **receiver)
    except (InvalidInput, Conflict) as exc:
        with transaction(svc.factory) as session:
            return _request_page(
                request,
                session,
                svc,
                web,
                request_id,
                error=str(exc),
                errors=getattr(exc, "errors", {}),
                values={k: str(v or "") for k, v in form.items() if k.startswith("receiver_")},
                status=http_status(exc),
            )
    return RedirectResponse(f"{PREFIX}/permohonan/{request_id}?ok=handover", 303)


@router.get("/warga")
def citizen_requests(request: Request, web: WebDep, svc: Svc, setelah: str = "") -> HTMLResponse:
    """Requests residents sent online, waiting for the operator to complete them; one page
    (?setelah= holds the cursor; a cursor the engine refuses is a 422 page saying so)."""
    require(web, "operator")
    with transaction(svc.factory) as session:
        return _citizen_page(request, session, svc, web, after=setelah)


def _citizen_page(
    request: Request, session, svc: Services, web: Web, status: int = 200, after: str = "", **extra
):
    village = web.actor.village_code or ""
    try:
        page = citizen_queue_page(session, svc.catalog, village, after=after or None)
    except InvalidInput as exc:
        page, status, extra["list_error"] = queues.RequestPage([], None), 422, str(exc)
    return render(
        request,
        "citizens.html",
        status,
        web=web,
        nav=nav(session, svc, web),
        rows=[row(svc, session, r) for r in page.rows],
        heading=_("Citizen requests"),
        first_url="?" if after else None,
        next_url=f"?{urlencode({'setelah': page.next_cursor})}" if page.next_cursor else None,
        **extra,
    )


@router.post("/warga/pin")
async def citizen_pin(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    """Give a resident of the village a PIN for their history page (shown once)."""
    require(web, "operator")
    await check_csrf(request, web)
    form = await request.form()
    nik = "".join(str(form.get("nik", ""))[:40].split())
    pin = history.new_pin()
    pin_hash = await password_work(hash_password, pin)
    try:
        with transaction(svc.factory) as session:
            history.issue_pin(session, web.actor, nik, pin_hash)
    except (InvalidInput, NotFound) as exc:
        with transaction(svc.factory) as session:
            return _citizen_page(request, session, svc, web, http_status(exc), error=str(exc))
    with transaction(svc.factory) as session:
        return _citizen_page(request, session, svc, web, pin=pin, pin_nik=nik)
