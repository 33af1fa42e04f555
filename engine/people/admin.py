"""Administrative writes that are not about one account or key: a village's letterhead data
(and its head's name and NIP, as printed on letters), and the hand-over of a letter to the
resident. Each write appends its audit event in the same transaction; faces only parse the
input, call these and render."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Forbidden, InvalidInput, NotFound
from engine.people.users import Actor, active_head, audit_admin, update_user
from engine.storage.models import Letter, LetterRequest, Village
from engine.timeutil import now_utc


def update_village(
    session: Session,
    by: Actor,
    code: str,
    *,
    address: str | None = None,
    head_name: str | None = None,
    head_nip: str | None = None,
) -> dict[str, dict]:
    """Edit a village's letterhead address and its head's name/NIP (None: leave as is).
    Returns {"village": changes, "head": changes}; each changed record gets its own audit
    event ("village.update", "user.update"), an unchanged one none."""
    if by.role != "admin":
        raise Forbidden("Hanya admin kabupaten yang mengubah data desa/kelurahan.")
    village = session.scalar(
        select(Village).where(Village.code == code).with_for_update(of=Village)
    )
    if village is None:
        raise NotFound(f"Desa/kelurahan tidak ditemukan: {code}")
    changes: dict[str, list] = {}
    if address is not None:
        address = address.strip()
        if len(address) > 200:
            raise InvalidInput("Alamat terlalu panjang.", {"address": "Maksimal 200 karakter."})
        if address != village.address:
            changes["address"] = [village.address, address]
            village.address = address
    if changes:
        session.flush()
        audit_admin(session, by, "village.update", {"village_code": code, "changes": changes})
    head_changes: dict[str, list] = {}
    if head_name is not None or head_nip is not None:
        head = active_head(session, code)
        if head is not None:
            head_changes = update_user(session, by, head, full_name=head_name, nip=head_nip)
    return {"village": changes, "head": head_changes}


def hand_over(session: Session, actor: Actor, request_id: int) -> Letter:
    """Record that the issued letter of a request was handed to the resident (once)."""
    if actor.role != "operator":
        raise Forbidden("Hanya operator yang mencatat penyerahan surat.")
    req = session.get(LetterRequest, request_id)
    if req is None or req.village_code != actor.village_code:
        raise NotFound("Permohonan tidak ditemukan.")
    letter = session.scalar(
        select(Letter).where(Letter.request_id == request_id).with_for_update(of=Letter)
    )
    if letter is None:
        raise NotFound("Surat belum diterbitkan.")
    if letter.handed_over_at is None:
        letter.handed_over_at = now_utc()
        letter.handed_over_by_id = actor.user_id
        session.flush()
        audit_admin(
            session,
            actor,
            "letter.handover",
            {"letter_id": letter.id, "number": letter.number},
            request_id=request_id,
        )
    return letter
