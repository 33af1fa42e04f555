"""The optional PIN a resident gets at the office, and the personal history page it opens.

The operator of the resident's village issues a PIN (6 random digits, shown once, argon2id-hashed;
a new PIN replaces the old), audited as "citizen.pin". An identified resident (citizen pass)
adds the PIN to see their history: their online requests with their status, and the letters
issued about them. Every PIN check runs one argon2 verification (against a stand-in hash when
the resident has no PIN), and wrong PINs are counted per NIK and per address (5 and 20 per 15
minutes), so a stolen pass does not open the history by guessing."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.citizens import limits
from engine.citizens.requests import status_view
from engine.citizens.status import StatusView
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.people.nik import mask_nik
from engine.people.residents import not_yours
from engine.people.users import Actor, audit_admin, hash_password, verify_hash
from engine.requests.catalog import WorkflowCatalog
from engine.storage.db import transaction
from engine.storage.models import CitizenPin, CitizenTracking, Letter, LetterRequest, Resident
from engine.timeutil import now_utc

PIN_DIGITS = 6
PIN_NIK = limits.rule("warga_pin_nik", 5)
PIN_ADDRESS = limits.rule("warga_pin_addr", 20)
WRONG_PIN = "PIN salah. Minta PIN baru di kantor desa/kelurahan bila Anda lupa."
_STAND_IN = hash_password("no-pin-stand-in")


def new_pin() -> str:
    return f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"


def issue_pin(session: Session, actor: Actor, nik: str, pin_hash: str) -> None:
    """Store a PIN's hash (``hash_password(new_pin())``, computed outside the transaction) for a
    resident of the operator's village; audited, the PIN itself never."""
    if actor.role != "operator":
        raise Forbidden("Hanya operator yang memberi PIN warga.")
    resident = session.scalar(select(Resident).where(Resident.nik == nik))
    if resident is None or resident.village_code != actor.village_code:
        raise NotFound(not_yours(nik))
    row = session.get(CitizenPin, resident.nik)
    if row is None:
        row = CitizenPin(nik=resident.nik)
        session.add(row)
    row.pin_hash, row.set_at, row.set_by_id = pin_hash, now_utc(), actor.user_id
    session.flush()
    audit_admin(session, actor, "citizen.pin", {"nik": mask_nik(resident.nik)})


@dataclass(frozen=True)
class LetterLine:
    title: str
    number: str
    issued_at: datetime
    handed_over_at: datetime | None


@dataclass(frozen=True)
class History:
    requests: list[StatusView]
    letters: list[LetterLine]


def history(
    factory: sessionmaker[Session],
    catalog: WorkflowCatalog,
    nik: str,
    pin: object,
    *,
    client: str,
    clock: Callable[[], float] = time.time,
) -> History:
    """The resident's history, for the identified ``nik`` and the right PIN. Blocking and
    CPU-heavy (argon2): call it from a worker thread."""
    now = clock()
    keys = {PIN_NIK: limits.digest("pin", nik), PIN_ADDRESS: client}
    with transaction(factory) as session:
        limits.refuse_if_over(session.connection(), keys, now)
        stored = session.scalar(select(CitizenPin.pin_hash).where(CitizenPin.nik == nik))
    text = pin if isinstance(pin, str) and len(pin) <= 20 else ""
    ok = verify_hash(stored or _STAND_IN, text.strip()) and stored is not None
    with transaction(factory) as session:
        if not ok:
            limits.count(session.connection(), keys, now)
        else:
            return _history(session, catalog, nik)
    raise InvalidInput(WRONG_PIN, {"pin": WRONG_PIN})


def _history(session: Session, catalog: WorkflowCatalog, nik: str) -> History:
    requests = session.scalars(
        select(LetterRequest)
        .join(CitizenTracking, CitizenTracking.request_id == LetterRequest.id)
        .where(CitizenTracking.nik == nik)
        .order_by(LetterRequest.created_at.desc())
        .limit(50)
    )
    letters = session.scalars(
        select(Letter).where(Letter.subject_nik == nik).order_by(Letter.issued_at.desc()).limit(50)
    )
    return History(
        requests=[status_view(session, catalog, r) for r in requests],
        letters=[LetterLine(x.title, x.number, x.issued_at, x.handed_over_at) for x in letters],
    )
