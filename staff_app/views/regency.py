"""Staff pages: Regency admin: regency-wide settings of the letters (the kop's emblem). The
engine (engine.letters.kop, engine.regency_settings) checks the file and the role and audits
the write; these pages only parse the form and render."""

from __future__ import annotations

import base64

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.errors import InvalidInput
from engine.letters import kop
from engine.storage.db import transaction
from staff_app.deps import Svc, WebDep, require, router
from staff_app.rendering import render
from staff_app.session import PREFIX, check_csrf

PAGE = f"{PREFIX}/admin/kabupaten"


@router.get("/admin/kabupaten")
def regency_page(request: Request, web: WebDep, svc: Svc, ok: str = "") -> HTMLResponse:
    require(web, "admin")
    return _page(request, web, svc, ok=ok)


def _page(request, web, svc, *, ok="", error=None, status=200) -> HTMLResponse:
    with transaction(svc.factory) as session:
        emblem = kop.load_emblem(session)
    return render(
        request,
        "admin/regency.html",
        status,
        web=web,
        nav={},
        emblem=emblem,
        emblem_src=None
        if emblem is None
        else "data:image/png;base64," + base64.b64encode(emblem.png).decode(),
        max_kb=kop.EMBLEM_MAX_BYTES // 1024,
        max_side=kop.EMBLEM_MAX_SIDE,
        ok=ok,
        error=error,
    )


@router.post("/admin/kabupaten/lambang")
async def regency_emblem_upload(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    form = await request.form()
    item = form.get("emblem")
    data = (
        b"" if item is None or isinstance(item, str) else await item.read(kop.EMBLEM_MAX_BYTES + 1)
    )
    try:
        with transaction(svc.factory) as session:
            kop.set_emblem(session, web.actor, data)
    except InvalidInput as exc:
        detail = " ".join(exc.errors.values()) if exc.errors else ""
        return _page(request, web, svc, error=f"{exc} {detail}".strip(), status=422)
    return RedirectResponse(f"{PAGE}?ok=lambang", 303)


@router.post("/admin/kabupaten/lambang/hapus")
async def regency_emblem_remove(request: Request, web: WebDep, svc: Svc) -> Response:
    require(web, "admin")
    await check_csrf(request, web)
    with transaction(svc.factory) as session:
        kop.set_emblem(session, web.actor, None)
    return RedirectResponse(f"{PAGE}?ok=hapus", 303)
