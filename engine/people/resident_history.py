"""Reading the registry as staff: search residents (NIK prefix or part of a name) and a
resident's letter history (letters issued and requests in progress), both newest/alphabetical
first and keyset-paged, both limited to what the actor may see (engine.people.residents.may_see:
their own village; the regency admin every village)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import String, cast, func, select, tuple_
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.people.nik import mask_nik, normalize_nik
from engine.people.resident_admin import may_change, resident_for
from engine.people.residents import SEX_LABELS
from engine.people.users import Actor
from engine.storage.models import Letter, LetterRequest, Resident

PAGE_SIZE = 20
QUERY_MAX = 60


@dataclass(frozen=True)
class ResidentRow:
    id: int
    nik: str
    name: str
    birth_date: date
    address: str
    village_code: str
    status: str  # "" | "meninggal" | "pindah"


@dataclass(frozen=True)
class ResidentPage:
    rows: list[ResidentRow]
    next_cursor: str | None


def status_of(resident: Resident) -> str:
    if not resident.alive:
        return "meninggal"
    if resident.moved_on is not None:
        return "pindah"
    return ""


def search(
    session: Session, actor: Actor, text: str, *, after: str | None = None, size: int = PAGE_SIZE
) -> ResidentPage:
    """Residents whose NIK starts with ``text`` (digits, separators ignored) or whose name
    contains it (case-insensitive); empty ``text`` lists everyone the actor may see. Ordered
    by name then NIK, keyset-paged by the cursor of the previous page's last row."""
    text = (text or "").strip()
    if len(text) > QUERY_MAX:
        problem = f"Kata pencarian terlalu panjang: maksimal {QUERY_MAX} karakter"
        raise InvalidInput(problem, {"q": problem})
    position = _decode(after)
    query = select(Resident)
    if actor.role != "admin":
        query = query.where(Resident.village_code == (actor.village_code or ""))
    digits = normalize_nik(text)
    if digits and digits.isascii() and digits.isdigit():
        query = query.where(Resident.nik.startswith(digits, autoescape=True))
    elif text:
        query = query.where(func.lower(Resident.name).contains(text.lower(), autoescape=True))
    if position is not None:
        query = query.where(tuple_(Resident.name, Resident.nik) > tuple_(*position))
    found = list(session.scalars(query.order_by(Resident.name, Resident.nik).limit(size + 1)))
    more = len(found) > size
    rows = [
        ResidentRow(
            r.id,
            r.nik,
            r.name,
            r.birth_date,
            f"{r.address} RT {r.rt}/RW {r.rw}",
            r.village_code,
            status_of(r),
        )
        for r in found[:size]
    ]
    cursor = _encode(found[size - 1].name, found[size - 1].nik) if more else None
    return ResidentPage(rows, cursor)


def _encode(name: str, nik: str) -> str:
    return base64.urlsafe_b64encode(f"{nik}{name}".encode()).decode().rstrip("=")


def _decode(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    try:
        if len(cursor) > 400:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("Penanda halaman tidak valid", {"setelah": "tidak valid"}) from None
    nik, name = raw[:16], raw[16:]
    if not (nik.isascii() and nik.isdigit() and len(nik) == 16):
        raise InvalidInput("Penanda halaman tidak valid", {"setelah": "tidak valid"})
    return name, nik


@dataclass(frozen=True)
class ResidentDetail:
    """A resident's page: full data for their own village's staff, No. KK masked for anyone
    who may not change the record (the regency admin, reviewers)."""

    id: int
    nik: str
    kk: str
    name: str
    birth_place: str
    birth_date: date
    sex: str  # label
    sex_code: str
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
    died_on: date | None
    moved_on: date | None
    moved_to: str | None
    status: str
    may_change: bool


def detail(session: Session, actor: Actor, resident_id: int) -> ResidentDetail:
    r = resident_for(session, actor, resident_id)
    changeable = may_change(actor, r.village_code)
    return ResidentDetail(
        id=r.id,
        nik=r.nik,
        kk=r.kk if changeable else mask_nik(r.kk),
        name=r.name,
        birth_place=r.birth_place,
        birth_date=r.birth_date,
        sex=SEX_LABELS.get(r.sex, r.sex),
        sex_code=r.sex,
        religion=r.religion,
        marital_status=r.marital_status,
        occupation=r.occupation,
        citizenship=r.citizenship,
        family_relation=r.family_relation or "",
        address=r.address,
        rt=r.rt,
        rw=r.rw,
        dusun=r.dusun or "",
        village_code=r.village_code,
        alive=r.alive,
        died_on=r.died_on,
        moved_on=r.moved_on,
        moved_to=r.moved_to,
        status=status_of(r),
        may_change=changeable,
    )


@dataclass(frozen=True)
class HistoryItem:
    request_id: int
    workflow_id: str
    state: str
    roles: tuple[str, ...]  # the subject roles the resident has in the request
    created_at: datetime
    letter_number: str | None
    letter_status: str | None  # active | revoked | replaced
    issued_at: datetime | None


@dataclass(frozen=True)
class HistoryPage:
    items: list[HistoryItem]
    next_cursor: str | None


def letter_history(
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    after: str | None = None,
    size: int = PAGE_SIZE,
) -> HistoryPage:
    """The requests naming the resident as a subject, in any role (issued letters, requests
    in progress, returned, rejected), newest first; only the actor's village's requests (the
    regency admin: all). Keyset-paged on the request id."""
    resident = resident_for(session, actor, resident_id)
    before = _decode_id(after)
    query = (
        select(LetterRequest, Letter)
        .outerjoin(Letter, Letter.request_id == LetterRequest.id)
        # The subjects column is JSON (role -> NIK); a 16-digit NIK inside its text is the
        # candidate test, checked exactly below.
        .where(cast(LetterRequest.subjects, String).contains(resident.nik))
    )
    if actor.role != "admin":
        query = query.where(LetterRequest.village_code == (actor.village_code or ""))
    if before is not None:
        query = query.where(LetterRequest.id < before)
    found = session.execute(query.order_by(LetterRequest.id.desc()).limit(size + 1)).all()
    more = len(found) > size
    items = []
    for req, letter in found[:size]:
        roles = tuple(k for k, v in (req.subjects or {}).items() if v == resident.nik)
        if not roles:
            continue
        items.append(
            HistoryItem(
                request_id=req.id,
                workflow_id=req.workflow_id,
                state=req.state,
                roles=roles,
                created_at=req.created_at,
                letter_number=letter.number if letter else None,
                letter_status=letter.status if letter else None,
                issued_at=letter.issued_at if letter else None,
            )
        )
    return HistoryPage(items, str(found[size - 1][0].id) if more else None)


def _decode_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 10):
        raise InvalidInput("Penanda halaman tidak valid", {"setelah": "tidak valid"})
    return int(cursor)
