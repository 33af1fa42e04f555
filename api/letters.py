"""/api/requests/{id}/letter: revoke an issued letter or start its replacement."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import ActorDep, ServicesDep
from api.schemas import IdPath, LetterOut, ReplaceIn, RevokeIn, letter_out
from engine.errors import NotFound
from engine.storage.db import transaction
from engine.storage.models import Letter

router = APIRouter()


def _letter_id(session, request_id: int) -> int:
    letter_id = session.scalar(select(Letter.id).where(Letter.request_id == request_id))
    if letter_id is None:
        raise NotFound("Surat belum diterbitkan.")
    return letter_id


@router.post("/requests/{request_id}/letter/revoke", tags=["letters"])
def post_revoke(request_id: IdPath, body: RevokeIn, svc: ServicesDep, actor: ActorDep) -> LetterOut:
    """Revoke an issued letter (head of its village or regency admin); audited, public at once."""
    from engine.letters.revocation import revoke_letter

    with transaction(svc.factory) as session:
        letter_id = _letter_id(session, request_id)
        return letter_out(svc, revoke_letter(session, actor, letter_id, body.reason))


@router.post("/requests/{request_id}/letter/replace", status_code=201, tags=["letters"])
def post_replace(request_id: IdPath, body: ReplaceIn, svc: ServicesDep, actor: ActorDep) -> dict:
    """Start a corrected letter that replaces this one; it walks the usual approval chain and,
    once signed, the old letter shows as replaced with a link to the new one."""
    from engine.letters.revocation import start_replacement

    with transaction(svc.factory) as session:
        letter_id = _letter_id(session, request_id)
        req = start_replacement(session, svc.catalog, actor, letter_id, body.reason, body.data)
        return {"id": req.id, "state": req.state, "version": req.version}
