"""The hand-over of a signed letter at the counter: who received it (the resident or someone on
their behalf), their relation to the resident, the number of the ID they showed, who handed it
over and when. Recorded once, with its audit event ("letter.handover"); the citizen's status page
then reads "sudah diambil"."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.people.nik import mask_nik
from engine.people.users import Actor, audit_admin
from engine.storage.models import Letter, LetterRequest
from engine.text import TextProblem, clean_text
from engine.timeutil import now_utc

RELATIONS = (
    "Yang bersangkutan",
    "Suami/Istri",
    "Orang tua",
    "Anak",
    "Saudara",
    "Kuasa",
    "Lainnya",
)
MAX_NAME = 120
MAX_ID_NUMBER = 40


def clean_receiver(name: object, relation: object, id_number: object) -> tuple[str, str, str]:
    """The receiver's name, relation and ID number, or InvalidInput naming each bad one."""
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    for key, value, limit in (
        ("receiver_name", name, MAX_NAME),
        ("receiver_id_number", id_number, MAX_ID_NUMBER),
    ):
        try:
            cleaned[key] = clean_text(value if value is not None else "", max_length=limit)
        except TextProblem as exc:
            errors[key] = str(exc)
            continue
        if not cleaned[key]:
            errors[key] = "Wajib diisi"
    if relation not in RELATIONS:
        errors["receiver_relation"] = f"Pilih salah satu: {', '.join(RELATIONS)}"
    if errors:
        raise InvalidInput("Data penerima surat belum lengkap.", errors)
    return cleaned["receiver_name"], str(relation), cleaned["receiver_id_number"]


def hand_over(
    session: Session,
    actor: Actor,
    request_id: int,
    *,
    receiver_name: object,
    relation: object,
    id_number: object,
) -> Letter:
    """Record that the issued letter of a request was handed over, and to whom (once: a second
    hand-over is refused with 409)."""
    if actor.role != "operator":
        raise Forbidden("Hanya operator yang mencatat penyerahan surat.")
    req = session.get(LetterRequest, request_id)
    if req is None or req.village_code != actor.village_code:
        raise NotFound("Permohonan tidak ditemukan.")
    name, relation_text, id_text = clean_receiver(receiver_name, relation, id_number)
    letter = session.scalar(
        select(Letter).where(Letter.request_id == request_id).with_for_update(of=Letter)
    )
    if letter is None:
        raise NotFound("Surat belum diterbitkan.")
    if letter.handed_over_at is not None:
        raise Conflict("Surat ini sudah tercatat diserahkan.")
    letter.handed_over_at = now_utc()
    letter.handed_over_by_id = actor.user_id
    letter.handed_over_to_name = name
    letter.handed_over_relation = relation_text
    letter.handed_over_id_number = id_text
    session.flush()
    audit_admin(
        session,
        actor,
        "letter.handover",
        {
            "letter_id": letter.id,
            "number": letter.number,
            "receiver": name,
            "relation": relation_text,
            # The audit log is read by more people than the request: the ID number is masked
            # there (in full on the letter's row, for the office).
            "id_number": mask_nik(id_text) if len(id_text) > 8 else "*" * len(id_text),
        },
        request_id=request_id,
    )
    return letter
