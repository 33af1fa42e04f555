"""Staff pages: Regency admin: letter numbering, the numbering mode and each letter type's
classification code (engine.letters.number_settings; docs/numbering.md)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.errors import InvalidInput
from engine.letters import number_settings
from engine.letters.numbering import MODES
from engine.storage.db import read_only, transaction
from staff_app.deps import Svc, WebDep, require, router
from staff_app.rendering import render
from staff_app.session import PREFIX, check_csrf

PAGE = "/admin/penomoran"


@router.get(PAGE)
def admin_numbering(request: Request, web: WebDep, svc: Svc, ok: str = "") -> HTMLResponse:
    require(web, "admin")
    return _page(request, web, svc, ok=bool(ok))


def _page(request, web, svc, *, ok=False, error=None, status=200) -> HTMLResponse:
    with read_only(svc.factory) as session:
        mode = number_settings.mode(session)
        codes = number_settings.codes(session)
    types = [
        {
            "id": spec.id,
            "title": spec.title,
            "yaml_code": spec.classification,
            "code": codes.get(spec.id, ""),
            "in_force": codes.get(spec.id, spec.classification),
        }
        for spec in sorted(svc.catalog.specs.values(), key=lambda s: s.title)
    ]
    return render(
        request,
        "admin/numbering.html",
        status,
        web=web,
        nav={},
        mode=mode,
        modes=[(m, number_settings.MODE_LABELS[m]) for m in MODES],
        types=types,
        ok=ok,
        error=error,
    )


@router.post(PAGE + "/mode")
async def admin_numbering_mode(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    try:
        with transaction(svc.factory) as session:
            number_settings.set_mode(session, web.actor, str(form.get("mode") or ""))
    except InvalidInput as exc:
        return _page(request, web, svc, error=str(exc), status=422)
    return RedirectResponse(f"{PREFIX}{PAGE}?ok=1", 303)


@router.post(PAGE + "/kode")
async def admin_numbering_code(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    try:
        with transaction(svc.factory) as session:
            number_settings.set_code(
                session,
                web.actor,
                svc.catalog.specs,
                str(form.get("workflow_id") or ""),
                str(form.get("code") or ""),
            )
    except InvalidInput as exc:
        return _page(request, web, svc, error=str(exc), status=422)
    return RedirectResponse(f"{PREFIX}{PAGE}?ok=1", 303)
