"""What the JSON API reads and answers: request bodies, answers, refusals, and the text rules
its fields are checked by."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select

from engine.people.users import Actor
from engine.requests.letter_requests import (
    MAX_ID,
    TimelineEntry,
    timeline,
)
from engine.requests.statemachine import available_actions
from engine.services import Services
from engine.storage.models import Letter, LetterRequest
from engine.text import TextProblem, clean_text, text_problem


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


class RevokeIn(BaseModel):
    reason: FreeText = Field(description="why the letter is withdrawn (shown on the public page)")


class ReplaceIn(BaseModel):
    reason: FreeText = Field(description="what the corrected letter fixes")
    data: dict[str, Any] = Field(default_factory=dict, description="corrected fields")


def letter_out(svc: Services, letter: Letter) -> LetterOut:
    return LetterOut(
        number=letter.number,
        status=letter.status,
        issued_at=letter.issued_at,
        verify_url=f"{svc.settings.public_url}/v/{letter.verify_code}",
        pdf_sha256=letter.pdf_sha256,
        pdf_url=f"/api/requests/{letter.request_id}/letter.pdf",
    )


def request_out(svc: Services, session, actor: Actor, req: LetterRequest) -> RequestOut:
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
        letter=letter_out(svc, letter) if letter else None,
        timeline=timeline(session, req.id),
    )


# --------------------------------------------------------------------------- resident admin
# (issue 10 item 3: engine.people.resident_admin / resident_history). Text is checked by the
# engine's one rule for registry data; the sizes here only bound what is read.
class ResidentFieldsIn(BaseModel):
    """A resident's registry data; for a correction every field is optional (absent: kept)."""

    kk: str | None = Field(None, max_length=40, description="No. KK, 16 digits")
    name: str | None = Field(None, max_length=200)
    birth_place: str | None = Field(None, max_length=200)
    birth_date: str | None = Field(None, max_length=20, description="YYYY-MM-DD")
    sex: str | None = Field(None, max_length=2, description="L or P")
    religion: str | None = Field(None, max_length=40)
    marital_status: str | None = Field(None, max_length=40)
    occupation: str | None = Field(None, max_length=200)
    citizenship: str | None = Field(None, max_length=5, description="WNI or WNA")
    family_relation: str | None = Field(None, max_length=40, description="SHDK, as on the KK")
    address: str | None = Field(None, max_length=300)
    rt: str | None = Field(None, max_length=5)
    rw: str | None = Field(None, max_length=5)
    dusun: str | None = Field(None, max_length=100)
    reason: str = Field(max_length=1000, description="why (required, kept in the audit log)")


class ResidentAddIn(ResidentFieldsIn):
    nik: str = Field(max_length=40, description="16 digits; the answer says which part is wrong")


class ResidentMoveIn(BaseModel):
    moved_on: str = Field(max_length=20, description="YYYY-MM-DD")
    moved_to: str = Field(max_length=300, description="destination address")
    reason: str = Field(max_length=1000)


class ResidentDeathIn(BaseModel):
    died_on: str = Field(max_length=20, description="YYYY-MM-DD")
    reason: str = Field(max_length=1000)


class ResidentRecordOut(BaseModel):
    """A resident as their village's staff read them (No. KK masked for anyone who may not
    change the record); `status` is "", "pindah" or "meninggal"."""

    id: int
    nik: str
    kk: str
    name: str
    birth_place: str
    birth_date: str
    sex: str
    religion: str
    marital_status: str
    occupation: str
    citizenship: str
    family_relation: str
    address: str
    rt: str
    rw: str
    dusun: str
    village_code: str
    alive: bool
    died_on: str | None
    moved_on: str | None
    moved_to: str | None
    status: str
    changed_fields: list[str] = Field(default_factory=list)


class ResidentRowOut(BaseModel):
    id: int
    nik: str
    name: str
    birth_date: str
    address: str
    village_code: str
    status: str


class ResidentSearchOut(BaseModel):
    residents: list[ResidentRowOut]
    next_cursor: str | None = Field(description="pass as `after` for the next page")


class ResidentLetterOut(BaseModel):
    request_id: int
    workflow_id: str
    title: str
    state: str
    roles: list[str]
    created_at: datetime
    letter_number: str | None
    letter_status: str | None
    issued_at: datetime | None


class ResidentHistoryOut(BaseModel):
    items: list[ResidentLetterOut]
    next_cursor: str | None = Field(description="pass as `after` for the next page")
