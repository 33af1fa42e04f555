"""The citizen pages under /warga/: home, identification, the letter types and their form, the
status page by tracking code (with its QR) and the correction of a returned request."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from citizen_app.rendering import PRIVATE, CitizenRoute, page, to_sign_in
from citizen_app.session import (
    CSRF_FIELD,
    PREFIX,
    check_csrf,
    clear_pass,
    client,
    nik_or_none,
    secret,
    set_pass,
)
from engine import attachments
from engine.citizens import codes
from engine.citizens.errors import IdentityFailed, UnknownCode
from engine.citizens.history import history
from engine.citizens.identity import IDENTIFY_FLOOR, identify
from engine.citizens.requests import (
    correct_returned,
    create_citizen_request,
    owned_request,
    requestable,
    requestable_spec,
    status_by_code,
)
from engine.errors import InvalidInput, TooManyAttempts
from engine.http_status import http_status
from engine.letters.qr import qr_png
from engine.services import Services
from engine.storage.db import transaction

router = APIRouter(prefix=PREFIX, route_class=CitizenRoute, include_in_schema=False)


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


def _safe_next(value: str | None) -> str:
    if value and value.startswith(PREFIX + "/") and not value.startswith("//"):
        return value
    return PREFIX + "/ajukan"


async def _uploads(form) -> list[attachments.Upload]:  # noqa: ANN001 - a Starlette form
    found = []
    for item in form.getlist(attachments.FIELD):
        if isinstance(item, str):
            continue
        data = await item.read(attachments.MAX_SIZE + 1)
        found.append(attachments.Upload(item.filename or "", data, item.size))
    return found


@router.get("/")
def home(request: Request) -> HTMLResponse:
    return page(request, "home.html")


@router.get("/masuk")
def sign_in_page(request: Request, next: str = "") -> HTMLResponse:
    return page(request, "identify.html", next=_safe_next(next), values={}, errors={})


@router.post("/masuk")
async def sign_in(request: Request, svc: Svc) -> Response:
    started = time.monotonic()
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    values = {k: str(form.get(k, ""))[:40] for k in ("nik", "kk", "birth_date")}
    target = _safe_next(str(form.get("next", "")))
    try:
        found = await run_in_threadpool(
            identify,
            svc.factory,
            secret(request),
            values["nik"],
            values["kk"],
            values["birth_date"],
            client=client(request),
        )
    except (IdentityFailed, TooManyAttempts, InvalidInput) as exc:
        # Every answer, failed or not, comes after the same floor: the time tells nothing.
        await asyncio.sleep(max(0.0, started + IDENTIFY_FLOOR - time.monotonic()))
        errors = exc.errors if isinstance(exc, InvalidInput) else {}
        return page(
            request,
            "identify.html",
            http_status(exc),
            next=target,
            values=values,
            errors=errors,
            error=str(exc),
        )
    await asyncio.sleep(max(0.0, started + IDENTIFY_FLOOR - time.monotonic()))
    response = RedirectResponse(target, 303)
    set_pass(request, response, found.token)
    return response


@router.post("/keluar")
async def sign_out(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    response = RedirectResponse(PREFIX + "/", 303)
    clear_pass(request, response)
    return response


@router.get("/ajukan")
def letter_types(request: Request, svc: Svc) -> Response:
    if nik_or_none(request) is None:
        return to_sign_in(request)
    return page(request, "types.html", specs=requestable(svc.catalog))


@router.get("/ajukan/{workflow_id}")
def request_form(request: Request, workflow_id: str, svc: Svc) -> Response:
    if nik_or_none(request) is None:
        return to_sign_in(request)
    spec = requestable_spec(svc.catalog, workflow_id[:100])
    return page(request, "form.html", spec=spec, values={}, errors={})


@router.post("/ajukan/{workflow_id}")
async def request_post(request: Request, workflow_id: str, svc: Svc) -> Response:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    nik = nik_or_none(request)
    if nik is None:
        return to_sign_in(request)
    spec = requestable_spec(svc.catalog, workflow_id[:100])
    data = {f.name: str(form.get(f"field_{f.name}", "")) for f in spec.fields}
    contact = str(form.get("contact", ""))
    uploads = await _uploads(form)
    try:
        with transaction(svc.factory) as session:
            _req, code = create_citizen_request(
                session,
                svc.catalog,
                nik,
                spec.id,
                data,
                contact=contact,
                uploads=uploads,
                open_limit=svc.settings.citizen_open_limit,
            )
    except InvalidInput as exc:
        values = {**data, "contact": contact}
        return page(
            request, "form.html", 422, spec=spec, values=values, errors=exc.errors, error=str(exc)
        )
    return RedirectResponse(f"{PREFIX}/status/{code}?baru=1", 303)


@router.get("/status")
def status_search(request: Request, kode: str = "") -> Response:
    chars = codes.normalize(kode)
    if chars is None:
        return page(
            request,
            "home.html",
            404,
            code_error=UnknownCode().args[0],
            code_value=kode[:40],
        )
    return RedirectResponse(f"{PREFIX}/status/{codes.group(chars)}", 303)


@router.get("/status/{code}")
async def status_page(
    request: Request, code: str, svc: Svc, baru: str = "", diperbaiki: str = ""
) -> Response:
    view = await run_in_threadpool(
        status_by_code, svc.factory, svc.catalog, code[:40], client=client(request)
    )
    return _status_answer(request, svc, code, view, new=baru == "1", corrected=diperbaiki == "1")


def _status_answer(request: Request, svc: Services, code: str, view, **extra) -> HTMLResponse:  # noqa: ANN001
    chars = codes.normalize(code) or ""
    nik = nik_or_none(request)
    spec = values = None
    if view.correctable and nik is not None:
        with transaction(svc.factory) as session:
            try:
                req = owned_request(session, nik, chars)
            except UnknownCode:
                req = None
            if req is not None:
                spec = svc.catalog.pinned(session, req)
                values = {k: "" if v is None else str(v) for k, v in req.data.items()}
    status = extra.pop("status", 200)
    return page(
        request,
        "status.html",
        status,
        view=view,
        code=codes.group(chars),
        spec=spec,
        values=extra.pop("values", None) or values or {},
        errors=extra.pop("errors", {}),
        error=extra.pop("error", None),
        **extra,
    )


@router.get("/status/{code}/qr.png")
def status_qr(request: Request, code: str, svc: Svc) -> Response:
    """The QR of the status page's address (drawn from the address alone: no look-up)."""
    chars = codes.normalize(code[:40])
    if chars is None:
        raise UnknownCode()
    url = f"{svc.settings.public_url}{PREFIX}/status/{codes.group(chars)}"
    return Response(qr_png(url, box_size=8), media_type="image/png", headers=PRIVATE)


@router.post("/status/{code}/perbaiki")
async def correct(request: Request, code: str, svc: Svc) -> Response:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    nik = nik_or_none(request)
    if nik is None:
        return RedirectResponse(f"{PREFIX}/masuk?next={quote(f'{PREFIX}/status/{code[:40]}')}", 303)
    try:
        version = int(str(form.get("version", "")))
    except ValueError:
        version = 0
    data = {k.removeprefix("field_"): str(v) for k, v in form.items() if k.startswith("field_")}
    uploads = await _uploads(form)
    try:
        with transaction(svc.factory) as session:
            correct_returned(
                session, svc.catalog, nik, code[:40], data, version=version, uploads=uploads
            )
    except InvalidInput as exc:
        view = await run_in_threadpool(
            status_by_code, svc.factory, svc.catalog, code[:40], client=client(request)
        )
        return _status_answer(
            request, svc, code, view, status=422, values=data, errors=exc.errors, error=str(exc)
        )
    return RedirectResponse(f"{PREFIX}/status/{code[:40]}?diperbaiki=1", 303)


@router.get("/riwayat")
def history_page(request: Request) -> Response:
    if nik_or_none(request) is None:
        return to_sign_in(request)
    return page(request, "history.html", found=None, error=None)


@router.post("/riwayat")
async def history_post(request: Request, svc: Svc) -> Response:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    nik = nik_or_none(request)
    if nik is None:
        return to_sign_in(request)
    try:
        found = await run_in_threadpool(
            history,
            svc.factory,
            svc.catalog,
            nik,
            str(form.get("pin", ""))[:20],
            client=client(request),
        )
    except (InvalidInput, TooManyAttempts) as exc:
        return page(request, "history.html", http_status(exc), found=None, error=str(exc))
    return page(request, "history.html", found=found, error=None)
