"""Pages of the staff web app. Every rule lives in the engine; a route reads the form, calls the
engine and renders a template. Engine errors become pages with the engine's message."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Coroutine, Iterator
from datetime import date, time
from pathlib import Path
from time import monotonic
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from engine import acting, admin, archive, attachments, batches, queues, signer_limit, signers
from engine.auth import SignInFailed, change_password, floor_remaining, sign_in
from engine.bootstrap import enroll_signer
from engine.dates import WIB, format_jam, format_tanggal
from engine.db import transaction
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, SuratDesaError
from engine.letter_requests import act, create_request, timeline
from engine.models import Letter, LetterRequest, Resident, User, Village
from engine.residents import ELSEWHERE, lookup_subject_for
from engine.sessions import end as end_session
from engine.signing import SigningError, WrongPassphrase
from engine.statemachine import available_actions
from engine.timeutil import now_utc
from engine.users import ALL_ROLES, STAFF_ROLES, Actor, active_head, create_user, disable_user
from engine.workflows import TERMINAL_STATES, WorkflowSpec
from staff_app.i18n import _, translations
from staff_app.session import (
    PRE_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    NeedSignIn,
    Web,
    check_csrf,
    check_pre_csrf,
    cookie_options,
    current,
    password_work,
    pre_csrf,
    safe_next,
    session_cookie,
)
from suratdesa.services import Services

TEMPLATES = Path(__file__).parent / "templates"
# Labels through the catalog (English source, Indonesian in locale/id); the locale is fixed
# per process, so they are translated once at import.
ROLE_LABELS = {
    "operator": _("Operator"),
    "kasi": _("Section head"),
    "sekdes": _("Village secretary"),
    "head": _("Village head"),
    "admin": _("Regency admin"),
}
STATE_LABELS = {
    "draft": _("Clerk's entry"),
    "issued": _("Issued"),
    "rejected": _("Rejected"),
    "cancelled": _("Cancelled"),
}
ACTION_LABELS = {
    "create": _("Created"),
    "submit": _("Submitted"),
    "approve": _("Approved"),
    "return": _("Returned"),
    "reject": _("Rejected"),
    "cancel": _("Cancelled"),
    "sign": _("Signed"),
    "sign_failed": _("Signing failed"),
    "handover": _("Handed over"),
    "letter.handover": _("Handed over"),
    "attach": _("Attachment saved"),
}
# What a button says: the imperative, where the timeline says what happened.
BUTTON_LABELS = {
    "approve": _("Approve"),
    "return": _("Return for revision"),
    "reject": _("Reject"),
    "cancel": _("Cancel request"),
}


def shown_value(spec_field, value: object) -> str:
    """A stored field value as staff read it: Indonesian dates, "14.30" times, "-" for empty."""
    if value is None or value == "":
        return "-"
    try:
        if spec_field.type == "date":
            return format_tanggal(date.fromisoformat(str(value)))
        if spec_field.type == "time":
            return format_jam(time.fromisoformat(str(value)))
    except ValueError:
        pass
    return str(value)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        P=PREFIX,
        ROLE_LABELS=ROLE_LABELS,
        ACTION_LABELS=ACTION_LABELS,
        BUTTON_LABELS=BUTTON_LABELS,
        tanggal=format_tanggal,
        shown=shown_value,
        wib=lambda dt: dt.astimezone(WIB).strftime("%d-%m-%Y %H:%M") if dt else "",
    )
    return env


ENV = _env()


class HtmlErrorRoute(APIRoute):
    """Engine errors and HTTP errors as pages, not the JSON API's answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except NeedSignIn as exc:
                query = {"next": exc.next_url}
                if exc.expired:
                    query["habis"] = "1"
                target = f"{PREFIX}/masuk?{urlencode(query)}"
                if request.headers.get("HX-Request"):
                    return Response(status_code=204, headers={"HX-Redirect": target})
                return RedirectResponse(target, 303)
            except HTTPException as exc:
                if exc.status_code == 403 and exc.detail == "csrf":
                    message = _("The form has expired. Go back, reload the page and try again.")
                elif exc.status_code == 403:
                    message = _("You may not open this page.")
                elif exc.status_code == 404:
                    message = _("Not found.")
                else:
                    message = str(exc.detail)
                return error_page(request, exc.status_code, message)
            except SuratDesaError as exc:
                status = 400
                for cls, code in ((InvalidInput, 422), (NotFound, 404), (Forbidden, 403)):
                    if isinstance(exc, cls):
                        status = code
                if isinstance(exc, Conflict):
                    status = 409
                return error_page(request, status, str(exc))

        return wrapped


router = APIRouter(prefix=PREFIX, route_class=HtmlErrorRoute, include_in_schema=False)


def services(request: Request) -> Services:
    return request.app.state.services


WebDep = Annotated[Web, Depends(current)]
Svc = Annotated[Services, Depends(services)]


def render(
    request: Request, name: str, status: int = 200, web: Web | None = None, **context: Any
) -> HTMLResponse:
    html = ENV.get_template(name).render(request=request, web=web, **context)
    return HTMLResponse(html, status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        web = current(request)
    except NeedSignIn:
        web = None
    return render(request, "error.html", status, web=web, message=message, code=status)


def nav(session, svc: Services, web: Web) -> dict[str, int]:
    """Counts shown in the navigation."""
    actor = web.actor
    if actor.village_code is None:
        return {}
    counts: dict[str, int] = {}
    if actor.role in ("kasi", "sekdes"):
        counts["queue"] = queues.queue_count(session, svc.catalog, actor.village_code, actor.role)
    pairs = signing_pairs(session, svc, actor)
    if pairs:
        counts["sign"] = queues.queue_count(
            session, svc.catalog, actor.village_code, "head", pairs=pairs
        )
    if actor.role == "operator":
        counts["draft"] = len(
            [r for r in queues.own_requests(session, actor.user_id) if r.state == "draft"]
        )
    return counts


def signing_pairs(session, svc: Services, actor: Actor) -> list[tuple[str, str]]:
    """The (workflow, state) pairs the actor signs today: as head or acting head, and/or on
    the head's behalf where a workflow's signing step names their role."""
    if actor.village_code is None:
        return []
    as_head = acting.capacity(session, actor, today()).role == "head"
    return queues.signing_states(svc.catalog, actor.role, as_head=as_head)


def require(web: Web, *roles: str) -> None:
    if web.actor.role not in roles:
        raise HTTPException(403)


def load_request(session, actor: Actor, request_id: int) -> LetterRequest:
    """Another village's request is 404: its existence is not the user's business."""
    if not 1 <= request_id <= archive.MAX_ID:  # not a 32-bit id: no such request, no query
        raise HTTPException(404)
    req = session.get(LetterRequest, request_id)
    if req is None or (actor.role != "admin" and req.village_code != actor.village_code):
        raise HTTPException(404)
    return req


def today() -> date:
    return now_utc().astimezone(WIB).date()


# --------------------------------------------------------------------------- sign-in


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
    status and cookies, no sooner than engine.auth.FAILURE_FLOOR after the request came."""
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


@router.get("/beranda")
def home(request: Request, web: WebDep, svc: Svc, ok: str = "") -> HTMLResponse:
    with transaction(svc.factory) as session:
        counts = queues.counts_by_state(session, web.actor.village_code)
        mine = (
            queues.own_requests(session, web.actor.user_id, 20)
            if web.actor.role == "operator"
            else []
        )
        return render(
            request,
            "home.html",
            web=web,
            nav=nav(session, svc, web),
            counts=counts,
            state_label=lambda s: state_label(svc, s),
            mine=[row(svc, session, r) for r in mine],
            ok=ok,
        )


def state_label(svc: Services, state: str) -> str:
    if state in STATE_LABELS:
        return STATE_LABELS[state]
    for spec in svc.catalog.specs.values():
        if state in spec.steps and spec.steps[state].label:
            return spec.steps[state].label or state
    return state


def row(svc: Services, session, req: LetterRequest) -> dict[str, Any]:
    spec = svc.catalog.pinned(session, req)
    first = next(iter(req.subjects.values()), "")
    name = session.scalar(select(Resident.name).where(Resident.nik == first)) or ""
    return {
        "id": req.id,
        "title": spec.title,
        "state": req.state,
        "state_label": (spec.steps[req.state].label if req.state in spec.steps else None)
        or STATE_LABELS.get(req.state, req.state),
        "name": name,
        "updated_at": req.updated_at,
        "overdue": queues.is_overdue(req) and req.state not in ("issued", "rejected", "cancelled"),
        "version": req.version,
    }


# --------------------------------------------------------------------------- operator


def _spec_or_404(svc: Services, workflow_id: str) -> WorkflowSpec:
    spec = svc.catalog.specs.get(workflow_id)
    if spec is None:
        raise HTTPException(404)
    return spec


@router.get("/baru")
def new_request_page(request: Request, web: WebDep, svc: Svc, jenis: str = "") -> HTMLResponse:
    require(web, "operator")
    spec = _spec_or_404(svc, jenis) if jenis else None
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


def resident_info(
    session, actor: Actor, spec: WorkflowSpec, subject_name: str, nik: str
) -> dict[str, Any]:
    """What the form shows under a NIK box: the resident, or exactly what is wrong. Who may see
    whom is the engine's rule (residents.lookup_subject_for), the same the JSON API applies."""
    if not nik.strip():
        return {}
    try:
        found = lookup_subject_for(session, actor, spec, subject_name, nik)
    except (InvalidInput, NotFound) as exc:
        return {"error": str(exc)}
    r = found.resident
    return {
        "resident": {
            "name": r.name,
            "nik": r.nik,
            "born": f"{r.birth_place}, {format_tanggal(r.birth_date)}",
            "sex": r.sex,
            "address": r.address,
        }
        if r is not None
        else None,
        "elsewhere": ELSEWHERE if found.elsewhere else None,
        "error": found.problem,
    }


@router.get("/penduduk")
def resident_lookup(
    request: Request, web: WebDep, svc: Svc, jenis: str, subjek: str, nik: str = ""
) -> HTMLResponse:
    require(web, "operator")
    spec = _spec_or_404(svc, jenis)
    try:
        spec.subject(subjek)
    except KeyError:
        raise HTTPException(404) from None
    nik = nik or request.query_params.get(f"subject_{subjek}", "")
    with transaction(svc.factory) as session:
        info = resident_info(session, web.actor, spec, subjek, nik)
    return render(request, "_resident.html", web=web, info=info)


async def uploads_of(form) -> list[attachments.Upload]:
    """The files of the form's attachment inputs, read up to one byte past the limit."""
    found = []
    for item in form.getlist(attachments.FIELD):
        if isinstance(item, str):
            continue
        data = await item.read(attachments.MAX_SIZE + 1)
        found.append(attachments.Upload(item.filename or "", data, item.size))
    return found


def _form_values(form, spec: WorkflowSpec) -> tuple[dict[str, str], dict[str, str]]:
    subjects = {s.name: str(form.get(f"subject_{s.name}", "")).strip() for s in spec.subjects}
    data = {f.name: str(form.get(f"field_{f.name}", "")) for f in spec.fields}
    return subjects, data


@router.post("/baru")
async def new_request_post(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "operator")
    await check_csrf(request, web)
    form = await request.form()
    spec = _spec_or_404(svc, str(form.get("jenis", "")))
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
        on_behalf=capacity.on_behalf,
        state=row(svc, session, req)["state_label"],
        ok=ok,
        error=error,
        errors=errors or {},
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
        status = 409 if isinstance(exc, Conflict) else 422
        if isinstance(exc, Forbidden):
            status = 403
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


@router.get("/permohonan/{request_id}/pratinjau.pdf")
def preview(request: Request, request_id: int, web: WebDep, svc: Svc) -> Response:
    with transaction(svc.factory) as session:
        load_request(session, web.actor, request_id)
    pdf = svc.issuer.preview(web.actor, request_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="draf-{request_id}.pdf"'},
    )


@router.get("/permohonan/{request_id}/surat.pdf")
def letter_pdf(
    request: Request, request_id: int, web: WebDep, svc: Svc, unduh: str = ""
) -> Response:
    with transaction(svc.factory) as session:
        load_request(session, web.actor, request_id)
        letter = session.scalar(select(Letter).where(Letter.request_id == request_id))
        if letter is None:
            raise HTTPException(404)
        filename = letter.number.replace("/", "-") + ".pdf"
        disposition = "attachment" if unduh else "inline"
        return Response(
            letter.pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'{disposition}; filename="{filename}"'},
        )


# --------------------------------------------------------------------------- signing


def _require_signer(session, svc: Services, web: Web) -> list[tuple[str, str]]:
    pairs = signing_pairs(session, svc, web.actor)
    if not pairs:
        raise HTTPException(403)
    return pairs


@router.get("/tandatangan")
def sign_queue(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    with transaction(svc.factory) as session:
        _require_signer(session, svc, web)
        return _sign_queue(request, session, svc, web)


def _sign_queue(request, session, svc, web, *, error: str | None = None, status: int = 200):
    pairs = _require_signer(session, svc, web)
    items = queues.queue(session, svc.catalog, web.actor.village_code or "", "head", pairs=pairs)
    return render(
        request,
        "sign.html",
        status,
        web=web,
        nav=nav(session, svc, web),
        rows=[row(svc, session, r) for r in items],
        error=error,
        limit=signer_limit.status(session, web.actor.user_id or 0, svc.issuer.clock()),
        unlocker=signer_limit.UNLOCKER,
    )


@router.post("/tandatangan")
async def sign_post(
    request: Request, web: WebDep, svc: Svc, background: BackgroundTasks
) -> Response:
    await check_csrf(request, web)
    form = await request.form()
    with transaction(svc.factory) as session:
        _require_signer(session, svc, web)
    picked: list[tuple[int, int]] = []
    for value in form.getlist("req"):
        try:
            rid, version = (int(x) for x in str(value).split(":"))
        except ValueError:
            continue
        picked.append((rid, version))
    if not picked:
        with transaction(svc.factory) as session:
            return _sign_queue(
                request, session, svc, web, error=_("Choose at least one letter."), status=422
            )
    with transaction(svc.factory) as session:
        for rid, _version in picked:
            req = load_request(session, web.actor, rid)
            spec = svc.catalog.pinned(session, req)
            if req.state in spec.steps:  # a finished one fails in the batch, with its reason
                role = acting.step_capacity(session, web.actor, today(), spec, req.state).role
                if role != spec.steps[req.state].role:
                    raise Forbidden(
                        _("You may not sign request #%(id)s (%(title)s).")
                        % {"id": rid, "title": spec.title}
                    )
    try:
        signer = svc.issuer.unlock(web.actor, str(form.get("passphrase", "")))
    except (SigningError, Forbidden) as exc:
        message = str(exc)
        status = 403 if isinstance(exc, WrongPassphrase | Forbidden) else 409
        if isinstance(exc, WrongPassphrase):
            message = _("Wrong passphrase. Nothing was signed.")
            if isinstance(exc, signer_limit.CountedWrongPassphrase):
                message = f"{message} {exc.hint}"
        elif isinstance(exc, signer_limit.SignerLocked):
            status = 423
        elif isinstance(exc, signer_limit.SignTooSoon):
            status = 429
        with transaction(svc.factory) as session:
            return _sign_queue(request, session, svc, web, error=message, status=status)
    try:
        batch_id = batches.start(svc.issuer, web.actor, picked)
    except BaseException:
        signer.close()  # a token session must not outlive a batch that never starts
        raise
    background.add_task(batches.run, svc.issuer, web.actor, batch_id, signer)
    return RedirectResponse(f"{PREFIX}/tandatangan/{batch_id}", 303)


@router.get("/tandatangan/{batch_id}")
def batch_page(request: Request, batch_id: int, web: WebDep, svc: Svc) -> HTMLResponse:
    view = batches.view(svc.issuer, web.actor, batch_id)
    with transaction(svc.factory) as session:
        return render(request, "batch.html", web=web, nav=nav(session, svc, web), batch=view)


@router.get("/tandatangan/{batch_id}/status")
def batch_status(request: Request, batch_id: int, web: WebDep, svc: Svc) -> HTMLResponse:
    view = batches.view(svc.issuer, web.actor, batch_id)
    return render(request, "_batch.html", web=web, batch=view)


# --------------------------------------------------------------------------- archive


# ArchiveQuery's fields -> this page's parameters, to show the engine's errors beside them.
_ARCHIVE_PARAMS = {
    "number": "nomor",
    "name": "nama",
    "nik": "nik",
    "workflow_id": "jenis",
    "date_from": "dari",
    "date_to": "sampai",
    "cursor": "setelah",
}


def _archive_query(web: Web, params: dict[str, str]) -> tuple[archive.ArchiveQuery, dict]:
    """The query, checked (archive.check: InvalidInput keyed by this page's parameters)."""
    bad_dates: dict[str, str] = {}

    def day(name: str) -> date | None:
        try:
            return date.fromisoformat(params.get(name, "")) if params.get(name) else None
        except ValueError:
            bad_dates[name] = _("Not a date; use the date picker (YYYY-MM-DD).")
            return None

    query = archive.ArchiveQuery(
        village_code=web.actor.village_code,
        number=params.get("nomor", ""),
        name=params.get("nama", ""),
        nik=params.get("nik", ""),
        workflow_id=params.get("jenis", ""),
        date_from=day("dari"),
        date_to=day("sampai"),
    )
    keep = {
        k: v
        for k, v in params.items()
        if k in ("nomor", "nama", "nik", "jenis", "dari", "sampai") and v
    }
    errors = dict(bad_dates)
    try:
        archive.check(query)
        archive.check_cursor(params.get("setelah"))
    except InvalidInput as exc:
        errors.update({_ARCHIVE_PARAMS.get(k, k): v for k, v in exc.errors.items()})
    if errors:
        raise InvalidInput(_("The archive search is not right yet."), errors)
    return query, keep


@router.get("/arsip")
def archive_page(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    params = dict(request.query_params)
    try:
        query, keep = _archive_query(web, params)
    except InvalidInput as exc:
        with transaction(svc.factory) as session:
            return render(
                request,
                "archive.html",
                422,
                web=web,
                nav=nav(session, svc, web),
                page=archive.ArchivePage([], None),
                params={k: v for k, v in params.items() if k in _ARCHIVE_PARAMS.values()},
                specs=list(svc.catalog.specs.values()),
                next_url=None,
                csv_url=None,
                first=True,
                error=str(exc),
                errors=exc.errors,
            )
    with transaction(svc.factory) as session:
        page = archive.search(session, query, after=params.get("setelah"))
        return render(
            request,
            "archive.html",
            web=web,
            nav=nav(session, svc, web),
            page=page,
            params=keep,
            specs=list(svc.catalog.specs.values()),
            next_url=f"?{urlencode({**keep, 'setelah': page.next_cursor})}"
            if page.next_cursor
            else None,
            csv_url=f"{PREFIX}/arsip.csv?{urlencode(keep)}",
            first=not params.get("setelah"),
            errors={},
        )


@router.get("/arsip.csv")
def archive_csv(request: Request, web: WebDep, svc: Svc) -> StreamingResponse:
    # Checked before the first byte is sent: a refused query is a 422 page, never a cut-off file.
    query, _keep = _archive_query(web, dict(request.query_params))

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["nomor", "jenis", "nama", "nik", "desa", "terbit", "status", "diserahkan"])
        with transaction(svc.factory) as session:
            for r in archive.export(session, query):
                writer.writerow(
                    archive.csv_cell(cell)
                    for cell in [
                        r.number,
                        r.title,
                        r.subject_name,
                        r.subject_nik,
                        r.village_code,
                        r.issued_at.astimezone(WIB).isoformat(),
                        r.status,
                        r.handed_over_at.astimezone(WIB).isoformat() if r.handed_over_at else "",
                    ]
                )
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="arsip-surat.csv"'},
    )


# --------------------------------------------------------------------------- acting heads


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


@router.get("/admin")
def admin_home(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    require(web, "admin")
    with transaction(svc.factory) as session:
        requests_by = dict(
            session.execute(
                select(LetterRequest.village_code, func.count()).group_by(
                    LetterRequest.village_code
                )
            ).all()
        )
        letters_by = dict(
            session.execute(
                select(Letter.village_code, func.count()).group_by(Letter.village_code)
            ).all()
        )
        villages = list(session.scalars(select(Village).order_by(Village.code)))
        return render(
            request,
            "admin/home.html",
            web=web,
            nav={},
            villages=villages,
            requests_by=requests_by,
            letters_by=letters_by,
        )


@router.get("/admin/desa/{code}")
def admin_village(request: Request, code: str, web: WebDep, svc: Svc, ok: str = "") -> HTMLResponse:
    require(web, "admin")
    with transaction(svc.factory) as session:
        return _village_page(request, session, web, code, ok=bool(ok))


def _village_page(request, session, web, code, *, ok=False, error=None, errors=None, status=200):
    village = session.get(Village, code)
    if village is None:
        raise HTTPException(404)
    return render(
        request,
        "admin/village.html",
        status,
        web=web,
        nav={},
        village=village,
        head=active_head(session, code),
        ok=ok,
        error=error,
        errors=errors or {},
    )


def _form_text(form, name: str) -> str | None:
    """A text field as typed, or None when the form did not send it (leave unchanged)."""
    value = form.get(name)
    return None if value is None else str(value)


@router.post("/admin/desa/{code}")
async def admin_village_post(request: Request, code: str, web: WebDep, svc: Svc) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    try:
        with transaction(svc.factory) as session:
            admin.update_village(
                session,
                web.actor,
                code,
                address=_form_text(form, "address"),
                head_name=_form_text(form, "head_name"),
                head_nip=_form_text(form, "head_nip"),
            )
    except NotFound as exc:
        raise HTTPException(404) from exc
    except InvalidInput as exc:
        with transaction(svc.factory) as session:
            return _village_page(
                request, session, web, code, error=str(exc), errors=exc.errors, status=422
            )
    return RedirectResponse(f"{PREFIX}/admin/desa/{code}?ok=1", 303)


@router.get("/admin/pengguna")
def admin_users(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    require(web, "admin")
    with transaction(svc.factory) as session:
        return _users_page(request, session, web)


def _users_page(request, session, web, *, error=None, errors=None, values=None, status=200):
    users = list(
        session.scalars(select(User).order_by(User.village_code, User.username).limit(1000))
    )
    live = signers.live_key_holders(session, users)
    return render(
        request,
        "admin/users.html",
        status,
        web=web,
        nav={},
        users=users,
        live=live,
        locks=signer_limit.locked_users(session),
        roles=ALL_ROLES,
        error=error,
        errors=errors or {},
        values=values or {},
        today=now_utc(),
    )


@router.post("/admin/pengguna")
async def admin_users_post(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    values = {
        k: str(form.get(k, "")).strip()
        for k in ("username", "full_name", "role", "village_code", "nip", "password")
    }
    try:
        if len(values["password"]) < 8:
            raise InvalidInput("Pengguna belum dibuat.", {"password": "Minimal 8 karakter."})

        def create() -> None:  # argon2: on the password thread pool, not the event loop
            with transaction(svc.factory) as session:
                create_user(
                    session,
                    by=web.actor,
                    username=values["username"],
                    full_name=values["full_name"] or values["username"],
                    role=values["role"],
                    village_code=values["village_code"] or None,
                    nip=values["nip"] or None,
                    password=values["password"],
                )

        await password_work(create)
    except (InvalidInput, Conflict) as exc:
        values.pop("password")
        with transaction(svc.factory) as session:
            return _users_page(
                request,
                session,
                web,
                error=str(exc),
                errors=getattr(exc, "errors", {}),
                values=values,
                status=409 if isinstance(exc, Conflict) else 422,
            )
    return RedirectResponse(f"{PREFIX}/admin/pengguna", 303)


@router.post("/admin/pengguna/{user_id}/sertifikat")
async def admin_issue_certificate(
    request: Request, user_id: int, web: WebDep, svc: Svc
) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    passphrase = str(form.get("passphrase", ""))
    try:
        with transaction(svc.factory) as session:
            user = session.get(User, user_id)
            if user is None:
                raise HTTPException(404)
            if len(passphrase) < 8:
                raise InvalidInput(
                    "Sertifikat belum diterbitkan.", {"passphrase": "Minimal 8 karakter."}
                )
            enroll_signer(session, svc.settings.keys_dir, user, passphrase, by=web.actor)
    except (InvalidInput, Conflict) as exc:
        with transaction(svc.factory) as session:
            return _users_page(
                request,
                session,
                web,
                error=str(exc),
                errors=getattr(exc, "errors", {}),
                status=409 if isinstance(exc, Conflict) else 422,
            )
    return RedirectResponse(f"{PREFIX}/admin/pengguna", 303)


async def _user_action(request: Request, user_id: int, web: Web, svc: Services, action) -> Response:
    """An admin action on one account that needs a reason: disable, revoke the certificate."""
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    reason = str(form.get("reason", ""))
    try:
        with transaction(svc.factory) as session:
            user = session.get(User, user_id)
            if user is None:
                raise HTTPException(404)
            action(session, user, reason)
    except (InvalidInput, Conflict) as exc:
        with transaction(svc.factory) as session:
            return _users_page(
                request,
                session,
                web,
                error=str(exc),
                errors=getattr(exc, "errors", {}),
                status=409 if isinstance(exc, Conflict) else 422,
            )
    return RedirectResponse(f"{PREFIX}/admin/pengguna", 303)


@router.post("/admin/pengguna/{user_id}/nonaktif")
async def admin_disable_user(request: Request, user_id: int, web: WebDep, svc: Svc) -> Response:
    return await _user_action(
        request,
        user_id,
        web,
        svc,
        lambda session, user, reason: disable_user(session, web.actor, user, reason),
    )


@router.post("/admin/pengguna/{user_id}/cabut")
async def admin_revoke_certificate(
    request: Request, user_id: int, web: WebDep, svc: Svc
) -> Response:
    def revoke(session, user, reason):
        if not signers.has_live_key(session, user):
            raise InvalidInput(f"{user.username} tidak memegang kunci tanda tangan yang berlaku.")
        signers.revoke_key(session, web.actor, user, reason)

    return await _user_action(request, user_id, web, svc, revoke)


@router.post("/admin/pengguna/{user_id}/buka-kunci")
async def admin_unlock_signer(request: Request, user_id: int, web: WebDep, svc: Svc) -> Response:
    """Lift the lock set after too many wrong signing passphrases (audited)."""
    return await _user_action(
        request,
        user_id,
        web,
        svc,
        lambda session, user, reason: signer_limit.unlock_signer(session, web.actor, user, reason),
    )


@router.get("/admin/alur")
def admin_workflows(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    require(web, "admin")
    return render(
        request, "admin/workflows.html", web=web, nav={}, specs=list(svc.catalog.specs.values())
    )
