"""GET /api/residents/{nik}: a resident the actor may see."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ActorDep, ServicesDep
from api.schemas import ResidentOut
from engine.people.residents import lookup_for
from engine.storage.db import transaction

router = APIRouter()


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
