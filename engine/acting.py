"""Acting heads (Plt./Plh./Pj.): who signs for a village on a given day, and with what title."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Forbidden, InvalidInput
from engine.models import ActingAssignment, User
from engine.timeutil import now_utc
from engine.users import Actor

PREFIXES = ("Plt.", "Plh.", "Pj.")


@dataclass(frozen=True)
class Capacity:
    role: str  # the role the actor holds for the workflow step ("head" while acting)
    prefix: str | None  # "Plt." etc. on the letter; None for the head themself


def active_assignment(
    session: Session, user_id: int, village_code: str | None, day: date
) -> ActingAssignment | None:
    if village_code is None:
        return None
    return session.scalar(
        select(ActingAssignment)
        .where(
            ActingAssignment.user_id == user_id,
            ActingAssignment.village_code == village_code,
            ActingAssignment.starts_on <= day,
            ActingAssignment.ends_on >= day,
        )
        .order_by(ActingAssignment.id.desc())
        .limit(1)
    )


def capacity(session: Session, actor: Actor, day: date) -> Capacity:
    if actor.role == "head":
        return Capacity("head", None)
    assignment = active_assignment(session, actor.user_id, actor.village_code, day)
    if assignment is not None:
        return Capacity("head", assignment.prefix)
    return Capacity(actor.role, None)


def record(
    session: Session,
    actor: Actor,
    *,
    village_code: str,
    user_id: int,
    prefix: str,
    starts_on: date,
    ends_on: date,
    note: str | None = None,
) -> ActingAssignment:
    if actor.role not in ("admin", "head"):
        raise Forbidden("Hanya admin kabupaten atau kepala desa/lurah yang mencatat Plt./Plh.")
    if actor.role == "head" and actor.village_code != village_code:
        raise Forbidden("Desa/kelurahan lain.")
    errors: dict[str, str] = {}
    if prefix not in PREFIXES:
        errors["prefix"] = f"Pilih salah satu: {', '.join(PREFIXES)}"
    user = session.get(User, user_id)
    if user is None or user.village_code != village_code or user.role == "head":
        errors["user_id"] = "Pilih pegawai desa/kelurahan ini (bukan kepala desa/lurah)."
    if ends_on < starts_on:
        errors["ends_on"] = "Tanggal selesai tidak boleh sebelum tanggal mulai."
    if errors:
        raise InvalidInput("Penugasan belum benar.", errors)
    row = ActingAssignment(
        village_code=village_code,
        user_id=user_id,
        prefix=prefix,
        starts_on=starts_on,
        ends_on=ends_on,
        note=note or None,
        created_by_id=actor.user_id,
        created_at=now_utc(),
    )
    session.add(row)
    session.flush()
    return row


def assignments(session: Session, village_code: str | None) -> list[ActingAssignment]:
    query = select(ActingAssignment).order_by(ActingAssignment.starts_on.desc()).limit(200)
    if village_code is not None:
        query = query.where(ActingAssignment.village_code == village_code)
    return list(session.scalars(query))
