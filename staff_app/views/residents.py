"""Staff pages: The request form's live resident look-up."""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from engine.storage.db import transaction
from staff_app.deps import Svc, WebDep, require, resident_info, router, spec_or_404
from staff_app.rendering import render


@router.get("/penduduk")
def resident_lookup(
    request: Request, web: WebDep, svc: Svc, jenis: str, subjek: str, nik: str = ""
) -> HTMLResponse:
    require(web, "operator")
    spec = spec_or_404(svc, jenis)
    try:
        spec.subject(subjek)
    except KeyError:
        raise HTTPException(404) from None
    nik = nik or request.query_params.get(f"subject_{subjek}", "")
    with transaction(svc.factory) as session:
        info = resident_info(session, web.actor, spec, subjek, nik)
    return render(request, "_resident.html", web=web, info=info)
