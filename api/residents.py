"""/api/residents: look a resident up, search, add, correct, record a move or a death, and a
resident's letter history. Who may see and change whom is the engine's rule
(engine.people.resident_admin): staff read their own village's residents, the regency admin
every village's; only an operator of the resident's village changes them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ActorDep, ServicesDep
from api.schemas import (
    ResidentAddIn,
    ResidentDeathIn,
    ResidentFieldsIn,
    ResidentHistoryOut,
    ResidentLetterOut,
    ResidentMoveIn,
    ResidentOut,
    ResidentRecordOut,
    ResidentRowOut,
    ResidentSearchOut,
)
from engine.people import resident_admin, resident_history
from engine.people.residents import lookup_for
from engine.storage.db import transaction

router = APIRouter()

Cursor = Annotated[str | None, Query(max_length=400, description="`next_cursor` of a page")]


@router.get("/residents")
def search_residents(
    svc: ServicesDep,
    actor: ActorDep,
    q: Annotated[str, Query(max_length=100, description="NIK prefix or part of a name")] = "",
    after: Cursor = None,
) -> ResidentSearchOut:
    with transaction(svc.factory) as session:
        page = resident_history.search(session, actor, q, after=after)
    return ResidentSearchOut(
        residents=[
            ResidentRowOut(
                id=r.id,
                nik=r.nik,
                name=r.name,
                birth_date=r.birth_date.isoformat(),
                address=r.address,
                village_code=r.village_code,
                status=r.status,
            )
            for r in page.rows
        ],
        next_cursor=page.next_cursor,
    )


@router.post("/residents", status_code=201)
def add_resident(body: ResidentAddIn, svc: ServicesDep, actor: ActorDep) -> ResidentRecordOut:
    """Add a resident to your village (operators). 422 names each bad field (a bad NIK says
    which part); 409 for a NIK already registered."""
    values = body.model_dump(exclude={"reason"})
    with transaction(svc.factory) as session:
        resident = resident_admin.add_resident(session, actor, values, body.reason)
        return _record(session, actor, resident.id)


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


@router.get("/residents/{nik}/record")
def get_record(nik: str, svc: ServicesDep, actor: ActorDep) -> ResidentRecordOut:
    """Every registry field of a resident you may see, with the row id and status."""
    with transaction(svc.factory) as session:
        return _record(session, actor, resident_admin.find_for(session, actor, nik).id)


@router.patch("/residents/{nik}")
def correct_resident(
    nik: str, body: ResidentFieldsIn, svc: ServicesDep, actor: ActorDep
) -> ResidentRecordOut:
    """Correct a resident of your village (operators); absent fields keep their value. The
    answer's `changed_fields` names what changed."""
    values = body.model_dump(exclude={"reason"}, exclude_none=True)
    with transaction(svc.factory) as session:
        found = resident_admin.find_for(session, actor, nik)
        _, changed = resident_admin.correct_resident(session, actor, found.id, values, body.reason)
        return _record(session, actor, found.id, changed)


@router.post("/residents/{nik}/move")
def record_move(
    nik: str, body: ResidentMoveIn, svc: ServicesDep, actor: ActorDep
) -> ResidentRecordOut:
    with transaction(svc.factory) as session:
        found = resident_admin.find_for(session, actor, nik)
        resident_admin.record_move(
            session, actor, found.id, body.moved_on, body.moved_to, body.reason
        )
        return _record(session, actor, found.id)


@router.post("/residents/{nik}/death")
def record_death(
    nik: str, body: ResidentDeathIn, svc: ServicesDep, actor: ActorDep
) -> ResidentRecordOut:
    """Record a death by hand (the same rule as an issued death letter)."""
    with transaction(svc.factory) as session:
        found = resident_admin.find_for(session, actor, nik)
        resident_admin.record_death(session, actor, found.id, body.died_on, body.reason)
        return _record(session, actor, found.id)


@router.get("/residents/{nik}/letters")
def letter_history(
    nik: str, svc: ServicesDep, actor: ActorDep, after: Cursor = None
) -> ResidentHistoryOut:
    """Requests naming the resident (letters issued, requests in progress), newest first;
    your village's only (the regency admin: all)."""
    with transaction(svc.factory) as session:
        found = resident_admin.find_for(session, actor, nik)
        page = resident_history.letter_history(session, actor, found.id, after=after)
    specs = svc.catalog.specs
    return ResidentHistoryOut(
        items=[
            ResidentLetterOut(
                request_id=i.request_id,
                workflow_id=i.workflow_id,
                title=specs[i.workflow_id].title if i.workflow_id in specs else i.workflow_id,
                state=i.state,
                roles=list(i.roles),
                created_at=i.created_at,
                letter_number=i.letter_number,
                letter_status=i.letter_status,
                issued_at=i.issued_at,
            )
            for i in page.items
        ],
        next_cursor=page.next_cursor,
    )


def _record(session, actor, resident_id: int, changed=()) -> ResidentRecordOut:
    d = resident_history.detail(session, actor, resident_id)
    return ResidentRecordOut(
        id=d.id,
        nik=d.nik,
        kk=d.kk,
        name=d.name,
        birth_place=d.birth_place,
        birth_date=d.birth_date.isoformat(),
        sex=d.sex_code,
        religion=d.religion,
        marital_status=d.marital_status,
        occupation=d.occupation,
        citizenship=d.citizenship,
        family_relation=d.family_relation,
        address=d.address,
        rt=d.rt,
        rw=d.rw,
        dusun=d.dusun,
        village_code=d.village_code,
        alive=d.alive,
        died_on=d.died_on.isoformat() if d.died_on else None,
        moved_on=d.moved_on.isoformat() if d.moved_on else None,
        moved_to=d.moved_to,
        status=d.status,
        changed_fields=list(changed),
    )
