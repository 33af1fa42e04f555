"""Resident administration: operators add residents, correct their data, record a move or a
death; every change is one audit event with who, why and which fields.

Who may do what (the one rule, `may_change` / `may_see` in engine.people.residents):
- staff of a village read its residents; the regency admin reads every village's;
- only an operator of the resident's village changes them (and adds residents to that village);
  nobody changes a resident of another village, and a NIK of another village reads as unknown.

What the audit keeps (decision, UU 27/2022 data minimisation): the resident's row id, the masked
NIK, the village, the names of the fields that changed and the reason; never the old or new
values. The registry row holds the current values; the audit says who changed which fields,
when and why. A move also keeps its date, a death its date of death (they are the event).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.dates import today_wib
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.people.nik import NikError, mask_nik, parse_nik
from engine.people.residents import (
    DEFAULTS,
    OPTIONAL_COLUMNS,
    TEXT_LIMITS,
    ImportReport,
    check_values,
    may_see,
    not_yours,
)
from engine.people.users import Actor
from engine.storage import audit
from engine.storage.models import Resident
from engine.text import TextProblem, clean_text

# The fields a form or API call sets, in the order a form shows them.
FIELDS = (
    "nik",
    "kk",
    "name",
    "birth_place",
    "birth_date",
    "sex",
    "religion",
    "marital_status",
    "occupation",
    "citizenship",
    "family_relation",
    "address",
    "rt",
    "rw",
    "dusun",
)
CORRECTABLE = tuple(f for f in FIELDS if f != "nik")
REASON_MAX = 500
ACTIONS = ("resident.add", "resident.correct", "resident.move", "resident.death")


def may_change(actor: Actor, village_code: str | None) -> bool:
    """The rule: an operator changes the residents of their own village, nobody else does."""
    return (
        actor.role == "operator"
        and actor.village_code is not None
        and actor.village_code == village_code
    )


def clean_reason(reason: object) -> str:
    """Why a change is made: required, one short paragraph."""
    try:
        text = clean_text(reason if reason is not None else "", multiline=True, max_length=None)
    except TextProblem as exc:
        raise InvalidInput(str(exc), {"reason": str(exc)}) from exc
    if len(text) < 5:
        problem = "Alasan wajib diisi (paling sedikit 5 karakter)"
        raise InvalidInput(problem, {"reason": problem})
    if len(text) > REASON_MAX:
        problem = f"Alasan terlalu panjang: maksimal {REASON_MAX} karakter"
        raise InvalidInput(problem, {"reason": problem})
    return text


def resident_for(session: Session, actor: Actor, resident_id: int, *, lock=False) -> Resident:
    """The resident with this row id as the actor may see them; another village's reads as
    not found (no existence leak)."""
    if not 1 <= resident_id <= 2**31 - 1:
        raise NotFound("Penduduk tidak ditemukan.")
    query = select(Resident).where(Resident.id == resident_id)
    if lock:
        query = query.with_for_update()
    resident = session.scalar(query)
    if resident is None or not may_see(actor, resident):
        raise NotFound("Penduduk tidak ditemukan.")
    return resident


def _for_change(session: Session, actor: Actor, resident_id: int) -> Resident:
    # Who is no village's operator is refused before anything is looked up.
    if not may_change(actor, actor.village_code):
        raise Forbidden("Hanya operator desa/kelurahan yang dapat mengubah data penduduk.")
    resident = resident_for(session, actor, resident_id, lock=True)
    if not may_change(actor, resident.village_code):
        raise Forbidden("Hanya operator desa/kelurahan penduduk ini yang dapat mengubah datanya.")
    return resident


def current_values(resident: Resident) -> dict[str, str]:
    """The resident's data as a form shows it (text per field)."""
    values: dict[str, str] = {}
    for name in FIELDS:
        value = getattr(resident, name)
        values[name] = value.isoformat() if isinstance(value, date) else (value or "")
    return values


def find_for(session: Session, actor: Actor, nik_text: str) -> Resident:
    """The resident with this NIK as the actor may see them (the JSON API names residents by
    NIK): a malformed NIK says which part is wrong; unknown and another village's read alike."""
    nik = parse_nik_or_invalid(nik_text)
    resident = session.scalar(select(Resident).where(Resident.nik == nik))
    if resident is None or not may_see(actor, resident):
        raise NotFound(not_yours(nik))
    return resident


def parse_nik_or_invalid(nik_text: str) -> str:
    try:
        return parse_nik(nik_text).nik
    except NikError as exc:
        raise InvalidInput(str(exc), {"nik": str(exc)}) from exc


def _checked(values: Mapping[str, object], fields: tuple[str, ...]) -> dict[str, str]:
    raw = {f: values.get(f) for f in fields}
    typed: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            value = ""
        if isinstance(value, date):
            value = value.isoformat()
        if not isinstance(value, str):
            errors[name] = "harus berupa teks"
            continue
        typed[name] = value
    errors.update(check_values(typed, optional=OPTIONAL_COLUMNS))
    if errors:
        raise InvalidInput("Data penduduk belum benar.", errors)
    return typed


def _attrs(typed: Mapping[str, str]) -> dict[str, object]:
    attrs: dict[str, object] = dict(typed)
    attrs["birth_date"] = date.fromisoformat(typed["birth_date"])
    for column in OPTIONAL_COLUMNS:
        if column in attrs and not attrs[column]:
            attrs[column] = DEFAULTS[column]
    return attrs


def add_resident(
    session: Session, actor: Actor, values: Mapping[str, object], reason: object
) -> Resident:
    """A new resident of the actor's village (operators only). The NIK is checked part by part
    (engine.people.nik); a NIK already registered is refused: in this village with a pointer
    to correcting instead, elsewhere with the same words an unknown village would get."""
    if not may_change(actor, actor.village_code):
        raise Forbidden("Hanya operator desa/kelurahan yang dapat menambah penduduk.")
    why = clean_reason(reason)
    typed = _checked(values, FIELDS)
    existing = session.scalar(select(Resident).where(Resident.nik == typed["nik"]))
    if existing is not None:
        if existing.village_code == actor.village_code:
            message = "NIK ini sudah terdaftar di desa/kelurahan Anda; ubah datanya bila keliru."
        else:
            # The registry is one for the regency: the NIK is taken. Saying so tells no more
            # than the letter form's look-up of a second subject already does.
            message = (
                "NIK ini sudah terdaftar di desa/kelurahan lain; penduduk pindahan dicatat "
                "pindah oleh desa/kelurahan asalnya lebih dulu."
            )
        raise Conflict(message)
    resident = Resident(**_attrs(typed), village_code=actor.village_code, alive=True)
    session.add(resident)
    session.flush()
    _audit(session, actor, "resident.add", resident, why, {"fields": list(FIELDS)})
    return resident


def correct_resident(
    session: Session, actor: Actor, resident_id: int, values: Mapping[str, object], reason: object
) -> tuple[Resident, list[str]]:
    """Correct a resident's data (not the NIK: a wrong NIK is a new record). Fields absent
    from ``values`` keep their value. Answers the resident and the names of the fields that
    changed; nothing changed is InvalidInput."""
    resident = _for_change(session, actor, resident_id)
    why = clean_reason(reason)
    given = {k: v for k, v in values.items() if k in CORRECTABLE and v is not None}
    typed = _checked({**current_values(resident), **given, "nik": resident.nik}, FIELDS)
    attrs = _attrs(typed)
    changed = [f for f in CORRECTABLE if getattr(resident, f) != attrs[f]]
    if not changed:
        raise InvalidInput("Tidak ada data yang berubah.", {"form": "Tidak ada data yang berubah."})
    for name in changed:
        setattr(resident, name, attrs[name])
    session.flush()
    _audit(session, actor, "resident.correct", resident, why, {"fields": changed})
    return resident, changed


def record_move(
    session: Session,
    actor: Actor,
    resident_id: int,
    moved_on: object,
    destination: object,
    reason: object,
) -> Resident:
    """A move out of the village: the date and where to. The record stays (letters issued to
    the resident point at it) but the resident is no longer one of the village's."""
    resident = _for_change(session, actor, resident_id)
    why = clean_reason(reason)
    errors: dict[str, str] = {}
    when = _event_date(moved_on, "moved_on", errors)
    try:
        where = clean_text(destination if destination is not None else "", max_length=None)
    except TextProblem as exc:
        errors["moved_to"] = str(exc)
        where = ""
    if not where and "moved_to" not in errors:
        errors["moved_to"] = "Tujuan pindah wajib diisi"
    elif len(where) > 200:
        errors["moved_to"] = "terlalu panjang: maksimal 200 karakter"
    if errors:
        raise InvalidInput("Data pindah belum benar.", errors)
    if resident.moved_on is not None:
        raise Conflict("Kepindahan penduduk ini sudah tercatat.")
    if not resident.alive:
        raise Conflict("Penduduk ini tercatat sudah meninggal.")
    resident.moved_on = when
    resident.moved_to = where
    session.flush()
    detail = {"fields": ["moved_on", "moved_to"], "moved_on": when.isoformat()}
    _audit(session, actor, "resident.move", resident, why, detail)
    return resident


def record_death(
    session: Session, actor: Actor, resident_id: int, died_on: object, reason: object
) -> Resident:
    """A death recorded by hand, by the same rule the death letter applies (mark_deceased)."""
    resident = _for_change(session, actor, resident_id)
    why = clean_reason(reason)
    errors: dict[str, str] = {}
    when = _event_date(died_on, "died_on", errors)
    if errors:
        raise InvalidInput("Data kematian belum benar.", errors)
    if not resident.alive:
        raise Conflict("Kematian penduduk ini sudah tercatat.")
    if when < resident.birth_date:
        problem = "Tanggal meninggal sebelum tanggal lahir"
        raise InvalidInput(problem, {"died_on": problem})
    mark_deceased(resident, when)
    session.flush()
    detail = {"fields": ["alive", "died_on"], "died_on": when.isoformat()}
    _audit(session, actor, "resident.death", resident, why, detail)
    return resident


def mark_deceased(resident: Resident, died_on: date | None) -> None:
    """The one rule for a death, by letter (engine.letters.issuance effects) or by hand."""
    resident.alive = False
    resident.died_on = died_on


def _event_date(value: object, name: str, errors: dict[str, str]) -> date:
    if isinstance(value, date):
        when = value
    else:
        try:
            when = date.fromisoformat(str(value or "").strip())
        except ValueError:
            errors[name] = "Tanggal wajib diisi (format YYYY-MM-DD)"
            return today_wib()
    if when > today_wib():
        errors[name] = "Tanggal tidak boleh di masa depan"
    return when


def _audit(
    session: Session, actor: Actor, action: str, resident: Resident, reason: str, extra: dict
) -> None:
    audit.append(
        session,
        actor_id=actor.user_id,
        actor=actor.username,
        role=actor.role,
        action=action,
        reason=reason,
        detail={
            "resident_id": resident.id,
            "nik": mask_nik(resident.nik),
            "village_code": resident.village_code,
            **extra,
        },
    )


def audit_import(session: Session, actor: Actor, village_code: str, report: ImportReport) -> None:
    """One event for a written import: counts only (the file's rows are the registry's)."""
    audit.append(
        session,
        actor_id=actor.user_id,
        actor=actor.username,
        role=actor.role,
        action="resident.import",
        detail={
            "village_code": village_code,
            "added": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
        },
    )


@dataclass(frozen=True)
class ResidentChange:
    """One audited change of a resident, as the resident's page lists it."""

    at: object  # datetime (UTC)
    action: str
    actor: str  # the person's full name (the username if the account is gone)
    role: str
    reason: str | None
    fields: tuple[str, ...]


def changes_of(session: Session, actor: Actor, resident_id: int) -> list[ResidentChange]:
    """The audited changes of a resident the actor may see, newest first."""
    from engine.storage.models import AuditEvent, User

    resident = resident_for(session, actor, resident_id)
    rows = session.execute(
        select(AuditEvent, User.full_name)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.action.in_(ACTIONS))
        .where(AuditEvent.detail["resident_id"].as_integer() == resident.id)
        .order_by(AuditEvent.id.desc())
        .limit(100)
    ).all()
    return [
        ResidentChange(
            at=event.created_at,
            action=event.action,
            actor=full_name or event.actor,
            role=event.role,
            reason=event.reason,
            fields=tuple((event.detail or {}).get("fields", ())),
        )
        for event, full_name in rows
    ]


__all__ = [
    "ACTIONS",
    "CORRECTABLE",
    "FIELDS",
    "TEXT_LIMITS",
    "add_resident",
    "changes_of",
    "correct_resident",
    "mark_deceased",
    "may_change",
    "not_yours",
    "record_death",
    "record_move",
    "resident_for",
]
