"""Staff pages: "Penduduk": search the registry, a resident's page with their letter history
and changes, the forms to add and correct a resident and to record a move or a death; and the
letter form's live resident look-up, whose dead end ("not registered") offers to add the
resident and come back to the letter. Who may see and change whom is the engine's rule
(engine.people.resident_admin)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.errors import Conflict, InvalidInput
from engine.http_status import http_status
from engine.people import resident_admin, resident_history
from engine.people.nik import NikError, parse_nik
from engine.people.residents import (
    CITIZENSHIPS,
    FAMILY_RELATIONS,
    MARITAL_STATUSES,
    RELIGIONS,
    SEX_LABELS,
)
from engine.storage.db import transaction
from staff_app.deps import Svc, WebDep, nav, require, resident_info, router, spec_or_404
from staff_app.rendering import render, state_label
from staff_app.session import PREFIX, Web, check_csrf

# The form: field name, label, input kind, choices (value, label) for a select.
FORM_FIELDS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("nik", "NIK", "nik", []),
    ("kk", "No. KK", "digits", []),
    ("name", "Nama lengkap", "text", []),
    ("birth_place", "Tempat lahir", "text", []),
    ("birth_date", "Tanggal lahir", "date", []),
    ("sex", "Jenis kelamin", "select", list(SEX_LABELS.items())),
    ("religion", "Agama", "select", [(r, r) for r in RELIGIONS]),
    ("marital_status", "Status perkawinan", "select", [(m, m) for m in MARITAL_STATUSES]),
    ("occupation", "Pekerjaan", "text", []),
    ("citizenship", "Kewarganegaraan", "select", [(c, c) for c in CITIZENSHIPS]),
    (
        "family_relation",
        "Hubungan dalam keluarga (SHDK)",
        "select",
        [("", "—"), *((f, f) for f in FAMILY_RELATIONS)],
    ),
    ("address", "Alamat (jalan, dukuh)", "text", []),
    ("rt", "RT", "digits", []),
    ("rw", "RW", "digits", []),
    ("dusun", "Dusun", "text", []),
]
OPTIONAL = {"family_relation", "dusun"}
ACTION_NAMES = {
    "resident.add": "Ditambahkan",
    "resident.correct": "Dikoreksi",
    "resident.move": "Pindah dicatat",
    "resident.death": "Kematian dicatat",
}
FIELD_LABELS = {name: label for name, label, _, _ in FORM_FIELDS} | {
    "moved_on": "Tanggal pindah",
    "moved_to": "Tujuan pindah",
    "alive": "Status hidup",
    "died_on": "Tanggal meninggal",
}
OK_MESSAGES = {
    "tambah": "Penduduk ditambahkan.",
    "ubah": "Data penduduk dikoreksi.",
    "pindah": "Kepindahan dicatat.",
    "meninggal": "Kematian dicatat.",
}


@router.get("/penduduk")
def residents_page(
    request: Request,
    web: WebDep,
    svc: Svc,
    jenis: str = "",
    subjek: str = "",
    nik: str = "",
    q: str = "",
    setelah: str = "",
) -> HTMLResponse:
    """With ``jenis`` and ``subjek``: the letter form's live look-up (a fragment). Without:
    the registry search page."""
    if jenis:
        return _lookup_fragment(request, web, svc, jenis, subjek, nik)
    _require_staff(web)
    with transaction(svc.factory) as session:
        counts = nav(session, svc, web)
        try:
            page = resident_history.search(session, web.actor, q, after=setelah or None)
            error = None
        except InvalidInput as exc:
            page, error = resident_history.ResidentPage([], None), str(exc)
        return render(
            request,
            "penduduk.html",
            422 if error else 200,
            web=web,
            nav=counts,
            page=page,
            q=q,
            error=error,
            first=not setelah,
            next_url=f"?{urlencode({'q': q, 'setelah': page.next_cursor})}"
            if page.next_cursor
            else None,
            may_add=resident_admin.may_change(web.actor, web.actor.village_code),
        )


def _lookup_fragment(request, web, svc, jenis: str, subjek: str, nik: str) -> HTMLResponse:
    require(web, "operator")
    spec = spec_or_404(svc, jenis)
    try:
        spec.subject(subjek)
    except KeyError:
        raise HTTPException(404) from None
    nik = nik or request.query_params.get(f"subject_{subjek}", "")
    with transaction(svc.factory) as session:
        info = resident_info(session, web.actor, spec, subjek, nik)
    add_url = None
    if info.get("error") and not info.get("resident") and not info.get("elsewhere"):
        try:
            typed = parse_nik(nik).nik  # a well-formed NIK nobody here has: the dead end
        except NikError:
            typed = None
        if typed:
            query = {"nik": typed, "jenis": spec.id, "subjek": subjek}
            add_url = f"{PREFIX}/penduduk/baru?{urlencode(query)}"
    return render(request, "_resident.html", web=web, info=info, add_url=add_url)


def _require_staff(web: Web) -> None:
    if web.actor.village_code is None and web.actor.role != "admin":
        raise HTTPException(403)


def _return_to(svc, jenis: str, subjek: str, nik: str) -> str | None:
    """The letter form to come back to after adding a resident from its dead end."""
    spec = svc.catalog.specs.get(jenis) if jenis else None
    if spec is None or subjek not in {s.name for s in spec.subjects}:
        return None
    return f"{PREFIX}/baru?{urlencode({'jenis': spec.id, f'subject_{subjek}': nik})}"


@router.get("/penduduk/baru")
def add_form(
    request: Request, web: WebDep, svc: Svc, nik: str = "", jenis: str = "", subjek: str = ""
) -> HTMLResponse:
    values = {"citizenship": "WNI"}
    if nik:
        values["nik"] = nik
        try:  # what the NIK says: birth date and sex
            parsed = parse_nik(nik)
            values.update(birth_date=parsed.birth_date.isoformat(), sex=parsed.sex)
        except NikError:
            pass
    with transaction(svc.factory) as session:
        return _form_page(request, session, svc, web, "add", values, {}, jenis, subjek)


@router.post("/penduduk/baru")
async def add_post(request: Request, web: WebDep, svc: Svc) -> Response:
    await check_csrf(request, web)
    form = await request.form()
    values = {name: str(form.get(name, "")) for name, *_ in FORM_FIELDS}
    jenis, subjek = str(form.get("jenis", "")), str(form.get("subjek", ""))
    reason = str(form.get("reason", ""))
    try:
        with transaction(svc.factory) as session:
            added = resident_admin.add_resident(session, web.actor, values, reason)
            resident_id, nik = added.id, added.nik
    except (InvalidInput, Conflict) as exc:
        with transaction(svc.factory) as session:
            return _form_page(
                request, session, svc, web, "add", values, exc, jenis, subjek, reason=reason
            )
    back = _return_to(svc, jenis, subjek, nik)
    return RedirectResponse(back or f"{PREFIX}/penduduk/{resident_id}?ok=tambah", 303)


def _form_page(
    request, session, svc, web, mode, values, problem, jenis="", subjek="", *, reason="", rid=0
):
    """The add or correct form; ``problem`` (an engine error or {}) shown with what was typed."""
    if not resident_admin.may_change(web.actor, web.actor.village_code):
        raise HTTPException(403)
    errors = getattr(problem, "errors", {}) if problem else {}
    return render(
        request,
        "penduduk_form.html",
        http_status(problem) if problem else 200,
        web=web,
        nav=nav(session, svc, web),
        mode=mode,
        fields=[f for f in FORM_FIELDS if mode == "add" or f[0] != "nik"],
        optional=OPTIONAL,
        values=values,
        errors=errors,
        error=str(problem) if problem else None,
        reason=reason,
        jenis=jenis,
        subjek=subjek,
        back=_return_to(svc, jenis, subjek, values.get("nik", "")),
        resident_id=rid,
    )


@router.get("/penduduk/{resident_id}")
def resident_page(
    request: Request, resident_id: int, web: WebDep, svc: Svc, setelah: str = "", ok: str = ""
) -> HTMLResponse:
    _require_staff(web)
    with transaction(svc.factory) as session:
        person = resident_history.detail(session, web.actor, resident_id)
        history = resident_history.letter_history(
            session, web.actor, resident_id, after=setelah or None
        )
        specs = svc.catalog.specs
        rows = [
            {
                "item": item,
                "title": specs[item.workflow_id].title
                if item.workflow_id in specs
                else item.workflow_id,
                "state": state_label(svc, item.state, web.village_kind),
                "roles": _role_labels(specs.get(item.workflow_id), item.roles),
            }
            for item in history.items
        ]
        return render(
            request,
            "penduduk_detail.html",
            web=web,
            nav=nav(session, svc, web),
            person=person,
            rows=rows,
            next_url=f"?{urlencode({'setelah': history.next_cursor})}"
            if history.next_cursor
            else None,
            first=not setelah,
            changes=resident_admin.changes_of(session, web.actor, resident_id),
            action_names=ACTION_NAMES,
            field_labels=FIELD_LABELS,
            ok=OK_MESSAGES.get(ok),
        )


def _role_labels(spec, roles) -> str:
    """The subject roles as the letter type names them ("Pemohon", "Pelapor")."""
    labels = {s.name: s.label for s in spec.subjects} if spec else {}
    return ", ".join(labels.get(role, role) for role in roles)


@router.get("/penduduk/{resident_id}/ubah")
def correct_form(request: Request, resident_id: int, web: WebDep, svc: Svc) -> HTMLResponse:
    if not resident_admin.may_change(web.actor, web.actor.village_code):
        raise HTTPException(403)
    with transaction(svc.factory) as session:
        resident = resident_admin.resident_for(session, web.actor, resident_id)
        values = resident_admin.current_values(resident)
        return _form_page(request, session, svc, web, "correct", values, {}, rid=resident_id)


@router.post("/penduduk/{resident_id}/ubah")
async def correct_post(request: Request, resident_id: int, web: WebDep, svc: Svc) -> Response:
    await check_csrf(request, web)
    form = await request.form()
    values = {name: str(form.get(name, "")) for name, *_ in FORM_FIELDS if name != "nik"}
    reason = str(form.get("reason", ""))
    try:
        with transaction(svc.factory) as session:
            resident_admin.correct_resident(session, web.actor, resident_id, values, reason)
    except (InvalidInput, Conflict) as exc:
        with transaction(svc.factory) as session:
            resident = resident_admin.resident_for(session, web.actor, resident_id)
            values["nik"] = resident.nik
            return _form_page(
                request, session, svc, web, "correct", values, exc, reason=reason, rid=resident_id
            )
    return RedirectResponse(f"{PREFIX}/penduduk/{resident_id}?ok=ubah", 303)


EVENTS = {
    "pindah": ("Catat pindah", ("moved_on", "moved_to")),
    "meninggal": ("Catat kematian", ("died_on",)),
}


@router.get("/penduduk/{resident_id}/pindah")
def move_form(request: Request, resident_id: int, web: WebDep, svc: Svc) -> HTMLResponse:
    with transaction(svc.factory) as session:
        return _event_page(request, session, svc, web, resident_id, "pindah", {}, None)


@router.get("/penduduk/{resident_id}/meninggal")
def death_form(request: Request, resident_id: int, web: WebDep, svc: Svc) -> HTMLResponse:
    with transaction(svc.factory) as session:
        return _event_page(request, session, svc, web, resident_id, "meninggal", {}, None)


@router.post("/penduduk/{resident_id}/pindah")
async def move_post(request: Request, resident_id: int, web: WebDep, svc: Svc) -> Response:
    return await _event_post(request, resident_id, web, svc, "pindah")


@router.post("/penduduk/{resident_id}/meninggal")
async def death_post(request: Request, resident_id: int, web: WebDep, svc: Svc) -> Response:
    return await _event_post(request, resident_id, web, svc, "meninggal")


async def _event_post(request: Request, resident_id: int, web: Web, svc, event: str) -> Response:
    await check_csrf(request, web)
    form = await request.form()
    values = {name: str(form.get(name, "")) for name in (*EVENTS[event][1], "reason")}
    try:
        with transaction(svc.factory) as session:
            if event == "pindah":
                resident_admin.record_move(
                    session,
                    web.actor,
                    resident_id,
                    values["moved_on"],
                    values["moved_to"],
                    values["reason"],
                )
            else:
                resident_admin.record_death(
                    session, web.actor, resident_id, values["died_on"], values["reason"]
                )
    except (InvalidInput, Conflict) as exc:
        with transaction(svc.factory) as session:
            return _event_page(request, session, svc, web, resident_id, event, values, exc)
    return RedirectResponse(f"{PREFIX}/penduduk/{resident_id}?ok={event}", 303)


def _event_page(request, session, svc, web, resident_id, event, values, problem):
    if not resident_admin.may_change(web.actor, web.actor.village_code):
        raise HTTPException(403)
    person = resident_history.detail(session, web.actor, resident_id)
    return render(
        request,
        "penduduk_event.html",
        http_status(problem) if problem else 200,
        web=web,
        nav=nav(session, svc, web),
        person=person,
        event=event,
        title=EVENTS[event][0],
        values=values,
        errors=getattr(problem, "errors", {}) if problem else {},
        error=str(problem) if problem else None,
    )
