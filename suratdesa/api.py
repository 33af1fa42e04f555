"""The JSON API (FastAPI; OpenAPI at /docs). Bearer tokens from `suratdesa users token NAME`.
Every route calls the engine; no business rule lives here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select

from engine.db import transaction
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, SuratDesaError
from engine.letter_requests import (
    TimelineEntry,
    act,
    create_request,
    load_for_actor,
    timeline,
)
from engine.models import Letter, LetterRequest, Resident
from engine.residents import SEX_LABELS, find_resident
from engine.signing import WrongPassphrase
from engine.statemachine import available_actions
from engine.users import Actor, actor_for_token
from suratdesa.services import Services

bearer = HTTPBearer(auto_error=False)
STATUS_OF = {InvalidInput: 422, NotFound: 404, Forbidden: 403, Conflict: 409}


def services(request: Request) -> Services:
    return request.app.state.services


def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    if credentials is None:
        raise HTTPException(401, "Token tidak ada.", headers={"WWW-Authenticate": "Bearer"})
    with transaction(services(request).factory) as session:
        actor = actor_for_token(session, credentials.credentials)
    if actor is None:
        raise HTTPException(401, "Token tidak valid.", headers={"WWW-Authenticate": "Bearer"})
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
ServicesDep = Annotated[Services, Depends(services)]


class CreateRequest(BaseModel):
    workflow_id: str = Field(examples=["surat-keterangan-umum"])
    subjects: dict[str, str] = Field(description="subject role -> NIK")
    data: dict[str, Any] = Field(default_factory=dict, description="field name -> value")


class ActionIn(BaseModel):
    action: str = Field(description="submit | approve | return | reject | cancel")
    version: int = Field(description="the request's version as you read it")
    reason: str | None = None
    data: dict[str, Any] | None = Field(None, description="corrected fields (initial step only)")


class SignIn(BaseModel):
    version: int
    passphrase: str = Field(description="the signer's key passphrase; never stored")


class LetterOut(BaseModel):
    number: str
    status: str
    issued_at: datetime
    verify_url: str
    pdf_sha256: str
    pdf_url: str


class RequestOut(BaseModel):
    id: int
    workflow_id: str
    workflow_version: int
    village_code: str
    state: str
    version: int
    subjects: dict[str, str]
    data: dict[str, Any]
    actions: list[str]
    letter: LetterOut | None = None
    timeline: list[TimelineEntry] = []


class ResidentOut(BaseModel):
    nik: str
    name: str
    birth_place: str
    birth_date: str
    sex: str
    religion: str
    marital_status: str
    occupation: str
    address: str
    village_code: str
    alive: bool


def _letter_out(svc: Services, letter: Letter) -> LetterOut:
    return LetterOut(
        number=letter.number,
        status=letter.status,
        issued_at=letter.issued_at,
        verify_url=f"{svc.settings.public_url}/v/{letter.verify_code}",
        pdf_sha256=letter.pdf_sha256,
        pdf_url=f"/api/requests/{letter.request_id}/letter.pdf",
    )


def _request_out(svc: Services, session, actor: Actor, req: LetterRequest) -> RequestOut:
    spec = svc.catalog.pinned(session, req)
    letter = session.scalar(select(Letter).where(Letter.request_id == req.id))
    return RequestOut(
        id=req.id,
        workflow_id=req.workflow_id,
        workflow_version=req.workflow_version,
        village_code=req.village_code,
        state=req.state,
        version=req.version,
        subjects=req.subjects,
        data=req.data,
        actions=available_actions(spec, req.state, actor.role),
        letter=_letter_out(svc, letter) if letter else None,
        timeline=timeline(session, req.id),
    )


router = APIRouter(prefix="/api")


@router.get("/workflows")
def list_workflows(svc: ServicesDep, actor: ActorDep) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "version": s.version,
            "title": s.title,
            "sha256": s.sha256,
            "subjects": [
                {"name": x.name, "label": x.label, "required": x.required} for x in s.subjects
            ],
            "fields": [
                {
                    "name": f.name,
                    "label": f.label,
                    "type": f.type,
                    "required": f.required,
                    "options": list(f.options),
                }
                for f in s.fields
            ],
            "steps": {
                n: {"role": st.role, "actions": dict(st.actions)} for n, st in s.steps.items()
            },
        }
        for s in svc.catalog.specs.values()
    ]


@router.get("/residents/{nik}")
def get_resident(nik: str, svc: ServicesDep, actor: ActorDep) -> ResidentOut:
    with transaction(svc.factory) as session:
        resident: Resident = find_resident(session, nik)
        if actor.role != "admin" and resident.village_code != actor.village_code:
            raise NotFound(f"NIK {resident.nik} tidak terdaftar di desa/kelurahan Anda.")
        return ResidentOut(
            nik=resident.nik,
            name=resident.name,
            birth_place=resident.birth_place,
            birth_date=resident.birth_date.isoformat(),
            sex=SEX_LABELS[resident.sex],
            religion=resident.religion,
            marital_status=resident.marital_status,
            occupation=resident.occupation,
            address=f"{resident.address} RT {resident.rt}/RW {resident.rw}",
            village_code=resident.village_code,
            alive=resident.alive,
        )


@router.post("/requests", status_code=201)
def post_request(body: CreateRequest, svc: ServicesDep, actor: ActorDep) -> RequestOut:
    with transaction(svc.factory) as session:
        req = create_request(
            session, svc.catalog, actor, body.workflow_id, body.subjects, body.data
        )
        return _request_out(svc, session, actor, req)


@router.get("/requests")
def list_requests(
    svc: ServicesDep, actor: ActorDep, state: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    with transaction(svc.factory) as session:
        query = select(LetterRequest).order_by(LetterRequest.id.desc()).limit(min(limit, 200))
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
def get_request(request_id: int, svc: ServicesDep, actor: ActorDep) -> RequestOut:
    with transaction(svc.factory) as session:
        return _request_out(svc, session, actor, load_for_actor(session, actor, request_id))


@router.post("/requests/{request_id}/actions")
def post_action(request_id: int, body: ActionIn, svc: ServicesDep, actor: ActorDep) -> RequestOut:
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
        return _request_out(svc, session, actor, req)


@router.post("/requests/{request_id}/sign")
def post_sign(request_id: int, body: SignIn, svc: ServicesDep, actor: ActorDep) -> RequestOut:
    svc.issuer.sign(actor, request_id, version=body.version, passphrase=body.passphrase)
    with transaction(svc.factory) as session:
        return _request_out(svc, session, actor, load_for_actor(session, actor, request_id))


@router.get("/requests/{request_id}/preview.pdf", response_class=Response)
def get_preview(request_id: int, svc: ServicesDep, actor: ActorDep) -> Response:
    pdf = svc.issuer.preview(actor, request_id)
    return Response(pdf, media_type="application/pdf")


@router.get("/requests/{request_id}/letter.pdf", response_class=Response)
def get_letter_pdf(request_id: int, svc: ServicesDep, actor: ActorDep) -> Response:
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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WrongPassphrase)
    async def _wrong_passphrase(_request: Request, exc: WrongPassphrase) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "errors": {"passphrase": str(exc)}}, 403)

    @app.exception_handler(SuratDesaError)
    async def _engine_error(_request: Request, exc: SuratDesaError) -> JSONResponse:
        status = next((code for cls, code in STATUS_OF.items() if isinstance(exc, cls)), 400)
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, InvalidInput) and exc.errors:
            body["errors"] = exc.errors
        return JSONResponse(body, status)


class RevokeIn(BaseModel):
    reason: str = Field(description="why the letter is withdrawn (shown on the public page)")


class ReplaceIn(BaseModel):
    reason: str = Field(description="what the corrected letter fixes")
    data: dict[str, Any] = Field(default_factory=dict, description="corrected fields")


def _letter_id(session, request_id: int) -> int:
    letter_id = session.scalar(select(Letter.id).where(Letter.request_id == request_id))
    if letter_id is None:
        raise NotFound("Surat belum diterbitkan.")
    return letter_id


@router.post("/requests/{request_id}/letter/revoke", tags=["letters"])
def post_revoke(request_id: int, body: RevokeIn, svc: ServicesDep, actor: ActorDep) -> LetterOut:
    """Revoke an issued letter (head of its village or regency admin); audited, public at once."""
    from engine.revocation import revoke_letter

    with transaction(svc.factory) as session:
        letter_id = _letter_id(session, request_id)
        return _letter_out(svc, revoke_letter(session, actor, letter_id, body.reason))


@router.post("/requests/{request_id}/letter/replace", status_code=201, tags=["letters"])
def post_replace(request_id: int, body: ReplaceIn, svc: ServicesDep, actor: ActorDep) -> dict:
    """Start a corrected letter that replaces this one; it walks the usual approval chain and,
    once signed, the old letter shows as replaced with a link to the new one."""
    from engine.revocation import start_replacement

    with transaction(svc.factory) as session:
        letter_id = _letter_id(session, request_id)
        req = start_replacement(session, svc.catalog, actor, letter_id, body.reason, body.data)
        return {"id": req.id, "state": req.state, "version": req.version}
