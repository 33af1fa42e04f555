"""/api/requests: create, list, read, act on and sign letter requests; the preview and the
signed PDF."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select

from api.deps import ActorDep, ServicesDep
from api.schemas import (
    SIGN_RESPONSES,
    ActionIn,
    CreateRequest,
    IdPath,
    RequestOut,
    SignIn,
    Word,
    request_out,
)
from engine.errors import NotFound
from engine.requests.letter_requests import (
    act,
    create_request,
    load_for_actor,
)
from engine.storage.db import transaction
from engine.storage.models import Letter, LetterRequest

router = APIRouter()


@router.post("/requests", status_code=201)
def post_request(body: CreateRequest, svc: ServicesDep, actor: ActorDep) -> RequestOut:
    with transaction(svc.factory) as session:
        req = create_request(
            session, svc.catalog, actor, body.workflow_id, body.subjects, body.data
        )
        return request_out(svc, session, actor, req)


@router.get("/requests")
def list_requests(
    svc: ServicesDep,
    actor: ActorDep,
    state: Annotated[Word | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="rows, newest first")] = 50,
) -> list[dict[str, Any]]:
    with transaction(svc.factory) as session:
        query = select(LetterRequest).order_by(LetterRequest.id.desc()).limit(limit)
        if actor.role != "admin":
            query = query.where(LetterRequest.village_code == actor.village_code)
        if state:
            query = query.where(LetterRequest.state == state)
        return [
            {
                "id": r.id,
                "workflow_id": r.workflow_id,
                "state": r.state,
                "version": r.version,
                "updated_at": r.updated_at.isoformat(),
            }
            for r in session.scalars(query)
        ]


@router.get("/requests/{request_id}")
def get_request(request_id: IdPath, svc: ServicesDep, actor: ActorDep) -> RequestOut:
    with transaction(svc.factory) as session:
        return request_out(svc, session, actor, load_for_actor(session, actor, request_id))


@router.post("/requests/{request_id}/actions")
def post_action(
    request_id: IdPath, body: ActionIn, svc: ServicesDep, actor: ActorDep
) -> RequestOut:
    with transaction(svc.factory) as session:
        req = act(
            session,
            svc.catalog,
            actor,
            request_id,
            body.action,
            version=body.version,
            reason=body.reason,
            data=body.data,
        )
        return request_out(svc, session, actor, req)


@router.post("/requests/{request_id}/sign", responses=SIGN_RESPONSES)
def post_sign(request_id: IdPath, body: SignIn, svc: ServicesDep, actor: ActorDep) -> RequestOut:
    svc.issuer.sign(actor, request_id, version=body.version, passphrase=body.passphrase)
    with transaction(svc.factory) as session:
        return request_out(svc, session, actor, load_for_actor(session, actor, request_id))


@router.get("/requests/{request_id}/preview.pdf", response_class=Response)
def get_preview(request_id: IdPath, svc: ServicesDep, actor: ActorDep) -> Response:
    pdf = svc.issuer.preview(actor, request_id)
    return Response(pdf, media_type="application/pdf")


@router.get("/requests/{request_id}/letter.pdf", response_class=Response)
def get_letter_pdf(request_id: IdPath, svc: ServicesDep, actor: ActorDep) -> Response:
    with transaction(svc.factory) as session:
        load_for_actor(session, actor, request_id)
        letter = session.scalar(select(Letter).where(Letter.request_id == request_id))
        if letter is None:
            raise NotFound("Surat belum diterbitkan.")
        filename = letter.number.replace("/", "-") + ".pdf"
        return Response(
            letter.pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
