"""The JSON API (FastAPI; OpenAPI at /docs). Bearer tokens from `suratdesa users token NAME`.
Every route calls the engine; no business rule lives here."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select

from engine.db import transaction
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, SuratDesaError
from engine.letter_requests import (
    MAX_ID,
    TimelineEntry,
    act,
    create_request,
    load_for_actor,
    timeline,
)
from engine.models import Letter, LetterRequest
from engine.residents import lookup_for
from engine.signer_limit import CountedWrongPassphrase, SignerLocked, SignTooSoon
from engine.signing import WrongPassphrase
from engine.statemachine import available_actions
from engine.text import TextProblem, clean_text, safe_key, text_problem
from engine.users import Actor, actor_for_token
from suratdesa.services import Services

bearer = HTTPBearer(auto_error=False)
STATUS_OF = {InvalidInput: 422, NotFound: 404, Forbidden: 403, Conflict: 409}


class SafeJSONResponse(JSONResponse):
    """JSON that can always be sent. Text stored before the text rule (engine.text) may hold a
    lone surrogate, which UTF-8 cannot encode: such a body goes out with \\u escapes instead of a
    500. NaN and infinities are refused by the schema long before they could reach here."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class ErrorOut(BaseModel):
    """Every refusal: `detail` is the Indonesian message; `errors` names each bad field."""

    detail: str
    errors: dict[str, str] | None = None


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Refused by the engine"),
    401: _error("No token, or a token that is not valid"),
    403: _error("The actor's role or village may not do this"),
    404: _error("Not found (or another village's)"),
    409: _error("The request moved on, or is finished"),
    413: _error("Request body too large"),
    422: _error("Bad input; `errors` names the fields"),
}
SIGN_RESPONSES: dict[int | str, dict[str, Any]] = {
    423: _error("The signer is locked after too many wrong passphrases"),
    429: _error("Too soon after a wrong passphrase; see Retry-After"),
}


def _checked_text(value: str) -> str:
    """The text rule (engine.text) for free text in a body; the reason names the field."""
    try:
        return clean_text(value, multiline=True)
    except TextProblem as exc:
        raise ValueError(str(exc)) from None


def _checked_secret(value: str) -> str:
    """A passphrase is never changed (no stripping), but must be encodable text."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _checked_word(value: str) -> str:
    """An identifier (workflow id, action, state): the text rule, one line."""
    try:
        return clean_text(value, max_length=100)
    except TextProblem as exc:
        raise ValueError(str(exc)) from None


IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="request id")]
Version = Annotated[int, Field(ge=1, le=MAX_ID, description="the request's version as you read it")]
FreeText = Annotated[str, Field(max_length=2000), AfterValidator(_checked_text)]
Word = Annotated[str, Field(max_length=100), AfterValidator(_checked_word)]


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
    workflow_id: Word = Field(examples=["surat-keterangan-umum"])
    subjects: dict[str, Annotated[str, Field(max_length=100)]] = Field(
        description="subject role -> NIK"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="field name -> value")


class ActionIn(BaseModel):
    action: Word = Field(description="submit | approve | return | reject | cancel")
    version: Version
    reason: FreeText | None = None
    data: dict[str, Any] | None = Field(None, description="corrected fields (initial step only)")


class SignIn(BaseModel):
    version: Version
    passphrase: Annotated[str, Field(max_length=1000), AfterValidator(_checked_secret)] = Field(
        description="the signer's key passphrase; never stored"
    )


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


router = APIRouter(
    prefix="/api", default_response_class=SafeJSONResponse, responses=ERROR_RESPONSES
)


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
    """A resident of your own village (the regency admin: any village). A NIK registered in
    another village answers exactly as an unregistered one: 404, nothing personal."""
    with transaction(svc.factory) as session:
        resident = lookup_for(session, actor, nik)
    return ResidentOut(
        nik=resident.nik,
        name=resident.name,
        birth_place=resident.birth_place,
        birth_date=resident.birth_date.isoformat(),
        sex=resident.sex,
        religion=resident.religion,
        marital_status=resident.marital_status,
        occupation=resident.occupation,
        address=resident.address,
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
        return _request_out(svc, session, actor, load_for_actor(session, actor, request_id))


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
        return _request_out(svc, session, actor, req)


@router.post("/requests/{request_id}/sign", responses=SIGN_RESPONSES)
def post_sign(request_id: IdPath, body: SignIn, svc: ServicesDep, actor: ActorDep) -> RequestOut:
    svc.issuer.sign(actor, request_id, version=body.version, passphrase=body.passphrase)
    with transaction(svc.factory) as session:
        return _request_out(svc, session, actor, load_for_actor(session, actor, request_id))


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


_PYDANTIC_MESSAGES = {
    "missing": "Wajib diisi",
    "int_type": "Harus berupa bilangan bulat",
    "int_parsing": "Harus berupa bilangan bulat",
    "int_from_float": "Harus berupa bilangan bulat",
    "finite_number": "Harus berupa angka terhingga",
    "string_type": "Harus berupa teks",
    "string_too_long": "Terlalu panjang",
    "dict_type": "Harus berupa objek",
    "model_attributes_type": "Harus berupa objek",
    "json_invalid": "JSON tidak valid",
    "json_type": "JSON tidak valid",
    "bool_type": "Harus berupa true/false",
    "bool_parsing": "Harus berupa true/false",
}


def _validation_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind in ("less_than_equal", "less_than"):
        return f"Terlalu besar: maksimal {ctx.get('le', ctx.get('lt'))}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"Terlalu kecil: minimal {ctx.get('ge', ctx.get('gt'))}"
    if kind == "string_too_long":
        return f"Terlalu panjang: maksimal {ctx.get('max_length')} karakter"
    return _PYDANTIC_MESSAGES.get(kind, "Nilai tidak valid")


def validation_errors(exc: RequestValidationError) -> dict[str, str]:
    """FastAPI's validation errors as {field: Indonesian reason}; the input is never echoed."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        where = loc[1:] if len(loc) > 1 and loc[0] in ("body", "query", "path") else loc
        name = safe_key(".".join(where) or "body")
        errors.setdefault(name, _validation_message(error))
    return errors


def _declare_errors(app: FastAPI) -> None:
    """The OpenAPI document says what every /api operation can answer, so that a client (and
    the Schemathesis fuzz test) can check conformance: validation errors have the shape the
    handler below gives them (ErrorOut, not FastAPI's list), and operations that declare no
    refusals of their own (the public portal's) get a 4XX entry: its body says why."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        error_ref = {"$ref": "#/components/schemas/ErrorOut"}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                invalid = responses.get("422")
                if invalid is not None:
                    invalid["content"] = {"application/json": {"schema": error_ref}}
                is_api = path.startswith("/api/") or path.endswith(".json")
                if is_api and not any(code.startswith("4") for code in responses if code != "422"):
                    responses["4XX"] = {"description": "Refused; the JSON body says why"}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ErrorOut", ErrorOut.model_json_schema())
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    _declare_errors(app)

    @app.exception_handler(RequestValidationError)
    async def _bad_input(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        fields = ", ".join(errors)
        return SafeJSONResponse({"detail": f"Isian tidak valid: {fields}.", "errors": errors}, 422)

    @app.exception_handler(WrongPassphrase)
    async def _wrong_passphrase(_request: Request, exc: WrongPassphrase) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc), "errors": {"passphrase": str(exc)}}
        if isinstance(exc, CountedWrongPassphrase):
            body.update(tries_left=exc.tries_left, retry_after=exc.retry_after)
        return JSONResponse(body, 403)

    @app.exception_handler(SignerLocked)
    async def _signer_locked(_request: Request, exc: SignerLocked) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "locked": True, "tries_left": 0}, 423)

    @app.exception_handler(SignTooSoon)
    async def _sign_too_soon(_request: Request, exc: SignTooSoon) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "retry_after": exc.retry_after, "tries_left": exc.tries_left},
            429,
            headers={"Retry-After": str(exc.retry_after)},
        )

    @app.exception_handler(SuratDesaError)
    async def _engine_error(_request: Request, exc: SuratDesaError) -> JSONResponse:
        status = next((code for cls, code in STATUS_OF.items() if isinstance(exc, cls)), 400)
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, InvalidInput) and exc.errors:
            body["errors"] = exc.errors
        return SafeJSONResponse(body, status)


class RevokeIn(BaseModel):
    reason: FreeText = Field(description="why the letter is withdrawn (shown on the public page)")


class ReplaceIn(BaseModel):
    reason: FreeText = Field(description="what the corrected letter fixes")
    data: dict[str, Any] = Field(default_factory=dict, description="corrected fields")


def _letter_id(session, request_id: int) -> int:
    letter_id = session.scalar(select(Letter.id).where(Letter.request_id == request_id))
    if letter_id is None:
        raise NotFound("Surat belum diterbitkan.")
    return letter_id


@router.post("/requests/{request_id}/letter/revoke", tags=["letters"])
def post_revoke(request_id: IdPath, body: RevokeIn, svc: ServicesDep, actor: ActorDep) -> LetterOut:
    """Revoke an issued letter (head of its village or regency admin); audited, public at once."""
    from engine.revocation import revoke_letter

    with transaction(svc.factory) as session:
        letter_id = _letter_id(session, request_id)
        return _letter_out(svc, revoke_letter(session, actor, letter_id, body.reason))


@router.post("/requests/{request_id}/letter/replace", status_code=201, tags=["letters"])
def post_replace(request_id: IdPath, body: ReplaceIn, svc: ServicesDep, actor: ActorDep) -> dict:
    """Start a corrected letter that replaces this one; it walks the usual approval chain and,
    once signed, the old letter shows as replaced with a link to the new one."""
    from engine.revocation import start_replacement

    with transaction(svc.factory) as session:
        letter_id = _letter_id(session, request_id)
        req = start_replacement(session, svc.catalog, actor, letter_id, body.reason, body.data)
        return {"id": req.id, "state": req.state, "version": req.version}
