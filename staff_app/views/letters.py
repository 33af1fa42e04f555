"""Staff pages: A request's draft preview and its signed letter."""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select

from engine.storage.db import transaction
from engine.storage.models import Letter
from staff_app.deps import Svc, WebDep, load_request, router


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
