"""Staff pages: A request's draft preview, its signed letter, and revoking or replacing that
letter (a reason, then a confirmation; the engine's revocation rules decide who may)."""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from engine.errors import Conflict, InvalidInput
from engine.http_status import http_status
from engine.letters import revocation
from engine.storage.db import transaction
from engine.storage.models import Letter
from staff_app.deps import Svc, WebDep, load_request, nav, require, router
from staff_app.rendering import render
from staff_app.session import PREFIX, check_csrf


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


# --------------------------------------------------------------------------- revoke and replace
# The path word of each action: /surat/cabut revokes, /surat/ganti starts a replacement.
REVOKE, REPLACE = "cabut", "ganti"


def _manage_page(
    request: Request,
    svc,
    web,
    request_id: int,
    kind: str,
    *,
    reason: str = "",
    confirm: bool = False,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The letter with the reason form, or (confirm) the question before the final action."""
    require(web, *revocation.REVOKER_ROLES)
    with transaction(svc.factory) as session:
        req = load_request(session, web.actor, request_id)
        letter = session.get(Letter, revocation.letter_id_of_request(session, req.id))
        return render(
            request,
            "letter_action.html",
            status,
            web=web,
            nav=nav(session, svc, web),
            req=req,
            letter=letter,
            kind=kind,
            reason=reason,
            confirm=confirm,
            error=error,
            errors=errors or {},
        )


async def _letter_action(request: Request, request_id: int, kind: str, web, svc) -> Response:
    """Two steps: the engine checks who, the letter and the reason, and a confirmation page is
    shown; only a form sent from that page (konfirmasi=1) revokes the letter or starts its
    replacement, with the same engine calls as the JSON API."""
    require(web, *revocation.REVOKER_ROLES)
    await check_csrf(request, web)
    form = await request.form()
    reason = str(form.get("reason", ""))
    confirmed = form.get("konfirmasi") == "1"
    try:
        with transaction(svc.factory) as session:
            load_request(session, web.actor, request_id)  # another village's: 404
            letter_id = revocation.letter_id_of_request(session, request_id)
            if not confirmed:
                revocation.check_revocable(session, web.actor, letter_id, reason)
            elif kind == REVOKE:
                revocation.revoke_letter(session, web.actor, letter_id, reason)
            else:
                new = revocation.start_replacement(
                    session, svc.catalog, web.actor, letter_id, reason
                )
                new_id = new.id
    except (InvalidInput, Conflict) as exc:
        return _manage_page(
            request,
            svc,
            web,
            request_id,
            kind,
            reason=reason,
            error=str(exc),
            errors=getattr(exc, "errors", {}),
            status=http_status(exc),
        )
    if not confirmed:
        return _manage_page(request, svc, web, request_id, kind, reason=reason, confirm=True)
    if kind == REVOKE:
        return RedirectResponse(f"{PREFIX}/permohonan/{request_id}?ok=revoke_letter#surat", 303)
    return RedirectResponse(f"{PREFIX}/permohonan/{new_id}?ok=replace_start", 303)


@router.get("/permohonan/{request_id}/surat/cabut")
def revoke_page(request: Request, request_id: int, web: WebDep, svc: Svc) -> HTMLResponse:
    return _manage_page(request, svc, web, request_id, REVOKE)


@router.post("/permohonan/{request_id}/surat/cabut")
async def revoke_post(request: Request, request_id: int, web: WebDep, svc: Svc) -> Response:
    return await _letter_action(request, request_id, REVOKE, web, svc)


@router.get("/permohonan/{request_id}/surat/ganti")
def replace_page(request: Request, request_id: int, web: WebDep, svc: Svc) -> HTMLResponse:
    return _manage_page(request, svc, web, request_id, REPLACE)


@router.post("/permohonan/{request_id}/surat/ganti")
async def replace_post(request: Request, request_id: int, web: WebDep, svc: Svc) -> Response:
    return await _letter_action(request, request_id, REPLACE, web, svc)


# --------------------------------------------------------------------------- signing
