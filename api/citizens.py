"""/api/warga: citizen self-service as JSON, the same actions as the /warga/ pages, so a store
app can be a thin wrapper. Identify (NIK + No. KK + date of birth) for a pass, sent back as a
bearer token; list the letter types open to citizens; ask for a letter (a tracking code comes
back); read a status by tracking code; correct a returned request. Every rule is the engine's
(engine.citizens)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Path, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from api.deps import ServicesDep
from api.schemas import Version, Word, _error
from engine import attachments
from engine.citizens.errors import NotIdentified
from engine.citizens.history import history
from engine.citizens.identity import IDENTIFY_FLOOR, PASS_SECONDS, identify, read_pass
from engine.citizens.requests import (
    add_files,
    correct_returned,
    create_citizen_request,
    requestable,
    status_by_code,
    status_view,
)
from engine.citizens.status import StatusView
from engine.config import _dev_secret_key
from engine.errors import SuratDesaError
from engine.storage.db import transaction

router = APIRouter(prefix="/warga", tags=["warga"])
pass_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="WargaPass",
    description="The `token` from POST /api/warga/identify (valid 30 minutes).",
)
TOO_MANY = {429: _error("Too many tries from this address (or for this NIK); wait 15 minutes")}
CodePath = Annotated[str, Path(max_length=40, description="tracking code, XXXX-XXXX-XXXX-XXXX")]


class IdentifyIn(BaseModel):
    nik: str = Field(max_length=40, examples=["3311014512900001"])
    kk: str = Field(max_length=40, description="No. KK, 16 digits")
    birth_date: str = Field(max_length=20, examples=["1990-12-05"], description="YYYY-MM-DD")


class IdentifiedOut(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer <token>`")
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")
    masked_nik: str
    first_name: str
    village_name: str
    may_request: bool = Field(description="false for a resident recorded as deceased")


class FieldOut(BaseModel):
    name: str
    label: str
    type: str = Field(description="text | textarea | date | time | number | choice | nik")
    required: bool
    options: list[str] = []
    max_length: int | None = None


class LetterTypeOut(BaseModel):
    id: str
    title: str
    description: str | None = None
    fields: list[FieldOut]


class CitizenRequestIn(BaseModel):
    workflow_id: Word = Field(examples=["surat-keterangan-umum"])
    data: dict[str, Any] = Field(default_factory=dict, description="field name -> value")
    contact: str | None = Field(
        None, max_length=254, description="e-mail or phone for notices (returned, ready)"
    )


class CorrectionIn(BaseModel):
    version: Version
    data: dict[str, Any] = Field(description="corrected fields")


class StatusOut(BaseModel):
    status: str = Field(
        description="diterima | diperiksa | dikembalikan | siap_diambil | sudah_diambil | "
        "ditolak | dibatalkan"
    )
    label: str
    explanation: str
    reason: str | None = Field(None, description="why returned (what to fix), rejected, cancelled")
    title: str
    masked_nik: str
    village_name: str
    received_at: datetime
    updated_at: datetime
    letter_number: str | None = None
    handed_over_at: datetime | None = None
    version: int
    correctable: bool


class CreatedOut(BaseModel):
    tracking_code: str = Field(description="shown once: only its hash is stored")
    status_url: str
    qr_url: str = Field(description="PNG of the status page's QR")
    status: StatusOut


def _status_out(view: StatusView) -> StatusOut:
    return StatusOut(**view.__dict__)


def _secret(request: Request) -> str:
    return request.app.state.services.settings.secret_key or _dev_secret_key()


def citizen_nik(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(pass_bearer)],
) -> str:
    try:
        return read_pass(_secret(request), credentials.credentials if credentials else None)
    except NotIdentified as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


NikDep = Annotated[str, Depends(citizen_nik)]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/identify", responses=TOO_MANY)
async def post_identify(body: IdentifyIn, request: Request, svc: ServicesDep) -> IdentifiedOut:
    """NIK + No. KK + date of birth, all matching the registry. Every failure (unknown NIK,
    wrong KK or date) is the same 422 answer, after the same time."""
    started = time.monotonic()
    try:
        found = await run_in_threadpool(
            identify,
            svc.factory,
            _secret(request),
            body.nik,
            body.kk,
            body.birth_date,
            client=_client(request),
        )
    except SuratDesaError:
        await asyncio.sleep(max(0.0, started + IDENTIFY_FLOOR - time.monotonic()))
        raise
    await asyncio.sleep(max(0.0, started + IDENTIFY_FLOOR - time.monotonic()))
    return IdentifiedOut(
        token=found.token,
        expires_in=PASS_SECONDS,
        masked_nik=found.masked_nik,
        first_name=found.first_name,
        village_name=found.village_name,
        may_request=found.alive,
    )


@router.get("/types")
def get_types(svc: ServicesDep) -> list[LetterTypeOut]:
    """The letter types residents may ask for online."""
    return [
        LetterTypeOut(
            id=s.id,
            title=s.title,
            description=s.description,
            fields=[
                FieldOut(
                    name=f.name,
                    label=f.label,
                    type=f.type,
                    required=f.required,
                    options=list(f.options),
                    max_length=f.max_length,
                )
                for f in s.fields
            ],
        )
        for s in requestable(svc.catalog)
    ]


@router.post("/requests", status_code=201)
def post_citizen_request(body: CitizenRequestIn, svc: ServicesDep, nik: NikDep) -> CreatedOut:
    """Ask for a letter about yourself. Refused: a type not open to citizens (403), a deceased
    resident (403), too many unfinished requests (409), bad fields (422, as staff get them)."""
    with transaction(svc.factory) as session:
        req, code = create_citizen_request(
            session,
            svc.catalog,
            nik,
            body.workflow_id,
            body.data,
            contact=body.contact,
            open_limit=svc.settings.citizen_open_limit,
        )
        view = status_view(session, svc.catalog, req)
    base = f"{svc.settings.public_url}/warga/status/{code}"
    return CreatedOut(
        tracking_code=code, status_url=base, qr_url=f"{base}/qr.png", status=_status_out(view)
    )


@router.get("/status/{code}", responses=TOO_MANY)
async def get_status(code: CodePath, request: Request, svc: ServicesDep) -> StatusOut:
    """Where a request is, by tracking code; nothing personal beyond the masked NIK. A code
    that finds nothing is 404, and look-ups are rate limited per address."""
    view = await run_in_threadpool(
        status_by_code, svc.factory, svc.catalog, code, client=_client(request)
    )
    return _status_out(view)


@router.post("/status/{code}/correction")
def post_correction(code: CodePath, body: CorrectionIn, svc: ServicesDep, nik: NikDep) -> StatusOut:
    """Correct a returned request (only its own resident, only while it is returned)."""
    with transaction(svc.factory) as session:
        req = correct_returned(session, svc.catalog, nik, code, body.data, version=body.version)
        return _status_out(status_view(session, svc.catalog, req))


class PinIn(BaseModel):
    pin: str = Field(max_length=20, description="the PIN the village office gave")


class LetterLineOut(BaseModel):
    title: str
    number: str
    issued_at: datetime
    handed_over_at: datetime | None = None


class HistoryOut(BaseModel):
    requests: list[StatusOut]
    letters: list[LetterLineOut]


@router.post("/history", responses=TOO_MANY)
async def post_history(body: PinIn, request: Request, svc: ServicesDep, nik: NikDep) -> HistoryOut:
    """The identified resident's online requests and the letters issued about them, with the
    PIN the office gave (wrong PINs: 422, counted per NIK and address)."""
    found = await run_in_threadpool(
        history, svc.factory, svc.catalog, nik, body.pin, client=_client(request)
    )
    return HistoryOut(
        requests=[_status_out(v) for v in found.requests],
        letters=[LetterLineOut(**line.__dict__) for line in found.letters],
    )


@router.post("/status/{code}/lampiran", status_code=201)
async def post_attachments(
    code: CodePath,
    svc: ServicesDep,
    nik: NikDep,
    attachment: Annotated[
        list[UploadFile],
        File(description="PDF, JPEG or PNG, at most 2 MB each and 5 per request"),
    ],
) -> StatusOut:
    """Add supporting files to your own request while it waits for the office or is returned
    to you (multipart/form-data, field `attachment`, repeatable). All or none; files are
    checked by their content as staff uploads are (422 with the reason)."""
    uploads = [
        attachments.Upload(f.filename or "", await f.read(attachments.MAX_SIZE + 1), f.size)
        for f in attachment
    ]

    def store() -> StatusView:
        with transaction(svc.factory) as session:
            req = add_files(session, svc.catalog, nik, code, uploads)
            return status_view(session, svc.catalog, req)

    return _status_out(await run_in_threadpool(store))
