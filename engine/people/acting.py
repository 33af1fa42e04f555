"""Who signs for a village on a given day, and with what title: the head; an acting head
(Plt./Plh./Pj.) recorded for a date range; or, where the workflow step allows it, a staff member
signing on the head's behalf ("a.n." / "u.b.")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from engine.dates import today_wib
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.letters.archive import check_cursor, cursor_at
from engine.people.users import Actor, audit_admin
from engine.requests.workflows import TERMINAL_STATES, WorkflowSpec
from engine.storage.models import ActingAssignment, User, Village
from engine.timeutil import now_utc

PREFIXES = ("Plt.", "Plh.", "Pj.")


@dataclass(frozen=True)
class Capacity:
    role: str  # the role the actor holds for the workflow step ("head" while acting)
    prefix: str | None  # "Plt." etc. on the letter; None for the head themself
    on_behalf: str | None = None  # "a.n." / "u.b.": signs the head's step with their own title
    own_role: str | None = None  # the actor's own role when signing on behalf


def own_title(role: str, village: Village) -> str:
    """A staff member's own title, as printed under "a.n. KEPALA DESA ..." and in their
    certificate."""
    if role == "head":
        return village.head_title
    kind = "Desa" if village.kind == "desa" else "Kelurahan"
    return {
        "sekdes": f"Sekretaris {kind}",
        "kasi": "Kepala Seksi",
        "operator": f"Staf {kind}",
    }.get(role, role)


def in_village_titles(text: str, kind: str | None) -> str:
    """A workflow text written with a desa's titles ("Tanda tangan Kepala Desa") in the titles
    of a village of ``kind`` ("Tanda tangan Lurah" for a kelurahan)."""
    if kind is None or kind == "desa":
        return text
    desa, own = Village(kind="desa"), Village(kind=kind)
    for role in ("head", "sekdes"):
        text = text.replace(own_title(role, desa), own_title(role, own))
    return text


def on_behalf_title(village: Village, mark: str) -> str:
    """Whom a delegate signs for, in plain words: "a.n. Kepala Desa Grogol", "a.n. Lurah
    Kenep" (the letter prints it in capitals, issuance.signer_title_lines)."""
    return f"{mark} {village.head_title} {village.name}"


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


def step_capacity(
    session: Session, actor: Actor, day: date, spec: WorkflowSpec, state: str
) -> Capacity:
    """The actor's capacity for the step a request is at: as head or acting head, else on the
    head's behalf where the step's ``signers`` name the actor's role, else their own role."""
    base = capacity(session, actor, day)
    if state in TERMINAL_STATES or state not in spec.steps:
        return base
    step = spec.steps[state]
    if base.role != step.role and actor.role in step.signers:
        return Capacity(step.role, None, step.signers[actor.role], actor.role)
    return base


def delegated_states(specs: list[WorkflowSpec], role: str) -> list[tuple[str, str]]:
    """(workflow id, state) pairs the role may sign on the head's behalf."""
    return [
        (spec.id, name)
        for spec in specs
        for name, step in spec.steps.items()
        if role in step.signers
    ]


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
    audit_admin(
        session,
        actor,
        "acting.record",
        {
            "assignment_id": row.id,
            "village_code": village_code,
            "user_id": user_id,
            "username": user.username,
            "prefix": prefix,
            "starts_on": starts_on.isoformat(),
            "ends_on": ends_on.isoformat(),
            "note": row.note,
        },
    )
    return row


def end(
    session: Session, actor: Actor, assignment_id: int, *, today: date | None = None
) -> ActingAssignment:
    """End an assignment early: from today (WIB) on, the person no longer signs as acting
    head. One that has not started yet is cancelled (its range becomes empty)."""
    row = session.scalar(
        select(ActingAssignment)
        .where(ActingAssignment.id == assignment_id)
        .with_for_update(of=ActingAssignment)
    )
    if row is None:
        raise NotFound("Penugasan tidak ditemukan.")
    if actor.role not in ("admin", "head"):
        raise Forbidden("Hanya admin kabupaten atau kepala desa/lurah yang mengakhiri Plt./Plh.")
    if actor.role == "head" and actor.village_code != row.village_code:
        raise NotFound("Penugasan tidak ditemukan.")
    today = today or today_wib()
    new_end = min(row.ends_on, today - timedelta(days=1))
    if new_end < row.starts_on:
        new_end = row.starts_on - timedelta(days=1)  # never started: an empty range
    if row.ends_on < today or new_end == row.ends_on:
        raise Conflict("Penugasan ini sudah berakhir.")
    old_end = row.ends_on
    row.ends_on = new_end
    session.flush()
    audit_admin(
        session,
        actor,
        "acting.end",
        {
            "assignment_id": row.id,
            "village_code": row.village_code,
            "user_id": row.user_id,
            "prefix": row.prefix,
            "ends_on": [old_end.isoformat(), new_end.isoformat()],
        },
    )
    return row


# --------------------------------------------------------------------------- the list

ASSIGNMENTS_PAGE_SIZE = 100
MAX_ASSIGNMENTS_PAGE = 1000


@dataclass(frozen=True)
class AssignmentPage:
    rows: list[ActingAssignment]
    next_cursor: str | None  # None: this is the last page


def assignments_page(
    session: Session,
    village_code: str | None,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> AssignmentPage:
    """One page of acting assignments (of one village when ``village_code`` is given), latest
    start first, by keyset on (starts_on, id) in the archive's cursor form (the start day at
    midnight UTC). InvalidInput for a cursor this engine did not make or a bad page size."""
    limit = ASSIGNMENTS_PAGE_SIZE if limit is None else limit
    if not 1 <= limit <= MAX_ASSIGNMENTS_PAGE:
        raise InvalidInput(
            f"Jumlah baris per halaman harus 1 sampai {MAX_ASSIGNMENTS_PAGE}.",
            {"limit": "Di luar rentang"},
        )
    position = check_cursor(after)
    query = select(ActingAssignment)
    if village_code is not None:
        query = query.where(ActingAssignment.village_code == village_code)
    if position is not None:
        day = position[0].astimezone(UTC).date()
        key = tuple_(ActingAssignment.starts_on, ActingAssignment.id)
        query = query.where(key < tuple_(day, position[1]))
    query = query.order_by(ActingAssignment.starts_on.desc(), ActingAssignment.id.desc())
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return AssignmentPage(rows, None)
    last = rows[-1]
    return AssignmentPage(rows, cursor_at(datetime.combine(last.starts_on, time(), UTC), last.id))
