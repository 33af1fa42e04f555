"""Revoking an issued letter, or replacing it with a corrected one. Both are audited, and the
portal shows them at once (it reads the letter's status on every scan).

Who may: the head of the letter's village, or the regency admin. A replacement starts a new
request (same letter type and subjects, corrected fields) that walks the normal approval chain;
when it is signed, the new letter points to the old one and the old one becomes "replaced".
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.letters.archive import status_label
from engine.people.users import Actor
from engine.requests.catalog import WorkflowCatalog
from engine.requests.letter_requests import open_request
from engine.storage import audit
from engine.storage.models import Letter, LetterRequest
from engine.text import text_problem
from engine.timeutil import now_utc

REVOKE, REPLACE_START, REPLACED = "revoke_letter", "replace_start", "replace_letter"


# The roles that may ever revoke or replace: a face may refuse everyone else up front.
REVOKER_ROLES = ("head", "admin")


def may_revoke(actor: Actor, letter: Letter) -> bool:
    """Who may revoke or replace a letter: the head of its village, or the regency admin."""
    if actor.role == "admin":
        return True
    return actor.role == "head" and actor.village_code == letter.village_code


def _letter_for(session: Session, actor: Actor, letter_id: int) -> Letter:
    letter = session.scalar(select(Letter).where(Letter.id == letter_id).with_for_update(of=Letter))
    if letter is None:
        raise NotFound("Surat tidak ditemukan.")
    if not may_revoke(actor, letter):
        raise Forbidden("Hanya kepala desa/lurah penerbit atau admin kabupaten yang berwenang.")
    return letter


def check_reason(reason: str | None) -> str:
    """The reason, stripped; InvalidInput (field "reason") when it is empty."""
    return _reason(reason)


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Alasan wajib diisi.", errors={"reason": "Alasan wajib diisi."})
    problem = text_problem(reason, multiline=True)
    if problem:
        raise InvalidInput(f"Alasan belum benar: {problem}.", errors={"reason": problem})
    return reason


def letter_id_of_request(session: Session, request_id: int) -> int:
    """The id of the letter a request issued; NotFound while it has none."""
    letter_id = session.scalar(select(Letter.id).where(Letter.request_id == request_id))
    if letter_id is None:
        raise NotFound("Surat belum diterbitkan.")
    return letter_id


def check_revocable(session: Session, actor: Actor, letter_id: int, reason: str | None) -> Letter:
    """Every check of revoke_letter and start_replacement (reason, who, still active), with
    nothing changed: what a confirmation step asks before the final action. Who comes first,
    then whether the letter is still valid, then the reason."""
    letter = _letter_for(session, actor, letter_id)
    _check_active(letter)
    _reason(reason)
    return letter


def _check_active(letter: Letter) -> None:
    if letter.status != "active":
        status = status_label(letter.status).lower()
        raise Conflict(f"Surat {letter.number} sudah tidak berlaku ({status}).")


def revoke_letter(session: Session, actor: Actor, letter_id: int, reason: str | None) -> Letter:
    reason = _reason(reason)
    letter = _letter_for(session, actor, letter_id)
    _check_active(letter)
    letter.status = "revoked"
    letter.revoked_at = now_utc()
    letter.revoke_reason = reason
    letter.revoked_by_id = actor.user_id
    audit.append(
        session,
        actor_id=actor.user_id,
        actor=actor.username,
        role=actor.role,
        action=REVOKE,
        request_id=letter.request_id,
        reason=reason,
        detail={"letter_id": letter.id, "number": letter.number},
    )
    return letter


def start_replacement(
    session: Session,
    catalog: WorkflowCatalog,
    actor: Actor,
    letter_id: int,
    reason: str | None,
    data: Mapping[str, object] | None = None,
) -> LetterRequest:
    """A new request for a corrected letter, in the workflow's first step (the front desk
    checks it and it walks the usual chain). ``data`` overrides the old letter's fields."""
    reason = _reason(reason)
    old = _letter_for(session, actor, letter_id)
    _check_active(old)
    pending = session.scalar(
        select(LetterRequest.id).where(
            LetterRequest.replaces_letter_id == old.id,
            LetterRequest.state.not_in(("issued", "rejected", "cancelled")),
        )
    )
    if pending is not None:
        raise Conflict(f"Pembetulan surat ini sudah diajukan (permohonan #{pending}).")
    source = session.get(LetterRequest, old.request_id)
    spec = catalog.current(old.workflow_id)
    request = open_request(
        session,
        catalog,
        actor,
        spec,
        old.village_code,
        source.subjects,
        {**source.data, **(data or {})},
        replaces_letter_id=old.id,
    )
    audit.append(
        session,
        actor_id=actor.user_id,
        actor=actor.username,
        role=actor.role,
        action=REPLACE_START,
        request_id=request.id,
        to_state=request.state,
        reason=reason,
        detail={"replaces_letter_id": old.id, "replaces_number": old.number},
    )
    return request


def mark_replaced(session: Session, new: Letter, old_letter_id: int, actor: Actor) -> None:
    """Called in the issuing transaction of a corrected letter."""
    old = session.scalar(
        select(Letter).where(Letter.id == old_letter_id).with_for_update(of=Letter)
    )
    if old is None or old.status != "active":
        raise Conflict("Surat yang dibetulkan sudah tidak aktif; pembetulan tidak dapat terbit.")
    new.replaces_letter_id = old.id
    old.status = "replaced"
    old.revoked_at = now_utc()
    old.revoke_reason = f"Diganti dengan surat nomor {new.number}"
    old.revoked_by_id = actor.user_id
    audit.append(
        session,
        actor_id=actor.user_id,
        actor=actor.username,
        role=actor.role,
        action=REPLACED,
        request_id=old.request_id,
        reason=old.revoke_reason,
        detail={"letter_id": old.id, "replaced_by_letter_id": new.id, "number": new.number},
    )
