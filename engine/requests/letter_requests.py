"""Requests for letters: create by NIK, act along the pinned workflow, read with the timeline.

Every change is checked against the actor's village and role, bumps the request's `version`
(optimistic concurrency: an UPDATE ... WHERE version = :seen that matches no row means someone
else acted first) and appends an audit event, all in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.people.residents import find_resident, not_yours
from engine.people.users import Actor
from engine.requests.catalog import WorkflowCatalog
from engine.requests.statemachine import CANCEL, ISSUED, TERMINAL_STATES, transition
from engine.requests.workflows import FieldErrors, WorkflowSpec
from engine.storage import audit
from engine.storage.models import AuditEvent, LetterRequest, User
from engine.text import (
    TextProblem,
    clean_text,
    safe_key,
    text_problem,
    unprintable_problem,
)
from engine.timeutil import now_utc

# Ids and versions are 32-bit integer columns: anything outside is refused before a query.
MAX_ID = 2**31 - 1
# Actions that move a request back or end it: allowed even when its stored text is unprintable,
# so that a request stored before the text rule can be returned and corrected.
_BACKWARD = frozenset({"return", "reject", CANCEL})


def create_request(
    session: Session,
    catalog: WorkflowCatalog,
    actor: Actor,
    workflow_id: str,
    subjects: Mapping[str, str],
    data: Mapping[str, object],
) -> LetterRequest:
    spec = catalog.current(workflow_id)
    first_step = spec.step(spec.initial_state)
    if actor.role != first_step.role:
        raise Forbidden(f"Permohonan {spec.title} dibuat oleh peran '{first_step.role}'.")
    if actor.village_code is None:
        raise Forbidden("Permohonan dibuat oleh petugas desa/kelurahan.")
    request = open_request(session, catalog, actor, spec, actor.village_code, subjects, data)
    audit.append(
        session,
        actor_id=actor.user_id,
        actor=actor.username,
        role=actor.role,
        action="create",
        request_id=request.id,
        to_state=request.state,
        detail={"workflow": f"{spec.id}@{spec.version}", "sha256": spec.sha256},
    )
    return request


def open_request(
    session: Session,
    catalog: WorkflowCatalog,
    actor: Actor,
    spec: WorkflowSpec,
    village_code: str,
    subjects: Mapping[str, str],
    data: Mapping[str, object],
    *,
    replaces_letter_id: int | None = None,
) -> LetterRequest:
    """Check subjects and fields, pin the spec, and add the request in its first step.
    The caller appends the audit event that says why it was opened."""
    niks = check_subjects(session, spec, village_code, subjects)
    cleaned = clean_data(spec, data)
    catalog.remember(session, spec)
    now = now_utc()
    request = LetterRequest(
        village_code=village_code,
        workflow_id=spec.id,
        workflow_version=spec.version,
        workflow_sha256=spec.sha256,
        state=spec.initial_state,
        subjects=niks,
        data=cleaned,
        version=1,
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
        replaces_letter_id=replaces_letter_id,
    )
    session.add(request)
    session.flush()
    return request


def check_subjects(
    session: Session, spec: WorkflowSpec, village_code: str, subjects: Mapping[str, str]
) -> dict[str, str]:
    """Look every subject up by NIK and apply the workflow's conditions (alive, sex).
    The first subject is the one the letter is about and must live in the actor's village."""
    errors: dict[str, str] = {}
    known = {s.name for s in spec.subjects}
    for name in subjects:
        if name not in known:
            errors[safe_key(name)] = "Subjek tidak dikenal untuk jenis surat ini"
    niks: dict[str, str] = {}
    for index, subject in enumerate(spec.subjects):
        raw = (subjects.get(subject.name) or "").strip()
        if not raw:
            if subject.required:
                errors[subject.name] = f"NIK {subject.label} wajib diisi"
            continue
        try:
            resident = find_resident(session, raw)
        except InvalidInput as exc:
            errors[subject.name] = str(exc)
            continue
        except NotFound as exc:
            # The letter's own subject: unknown and "lives elsewhere" read the same, so the
            # answer never tells whether someone of another village exists.
            errors[subject.name] = not_yours(raw) if index == 0 else str(exc)
            continue
        # Messages name the subject's role, never the resident: they may reach someone who
        # may not see this resident's data (residents.lookup_subject_for).
        if index == 0 and resident.village_code != village_code:
            errors[subject.name] = not_yours(raw)
        elif index == 0 and resident.moved_on is not None:
            # Recorded as moved away (resident_admin.record_move): no longer this village's.
            errors[subject.name] = f"{subject.label}: tercatat sudah pindah dari desa/kelurahan ini"
        elif subject.alive is True and not resident.alive:
            errors[subject.name] = f"{subject.label}: tercatat sudah meninggal"
        elif subject.alive is False and resident.alive:
            errors[subject.name] = f"{subject.label}: tercatat masih hidup"
        elif subject.sex and resident.sex != subject.sex:
            wanted = "laki-laki" if subject.sex == "L" else "perempuan"
            errors[subject.name] = f"{subject.label} harus {wanted}"
        niks[subject.name] = resident.nik
    if errors:
        raise InvalidInput("Data subjek surat belum benar.", errors)
    return niks


def clean_data(spec: WorkflowSpec, data: Mapping[str, object]) -> dict[str, object]:
    try:
        cleaned = spec.validate_data(data)
    except FieldErrors as exc:
        raise InvalidInput("Isian surat belum benar.", dict(exc.errors)) from exc
    return {name: _to_json(value) for name, value in cleaned.items()}


def letter_text_problems(spec: WorkflowSpec, data: Mapping[str, object]) -> dict[str, str]:
    """Stored text fields the letter cannot carry: characters the text rule refuses or the fonts
    cannot print. Requests stored before the rule existed may hold them; new ones cannot."""
    problems: dict[str, str] = {}
    for f in spec.fields:
        value = data.get(f.name)
        if f.type in ("text", "textarea") and isinstance(value, str):
            problem = text_problem(value, multiline=f.type == "textarea") or unprintable_problem(
                value
            )
            if problem:
                problems[f.name] = problem
    return problems


def check_letter_text(spec: WorkflowSpec, request: LetterRequest) -> None:
    """Refuse to move forward, preview or sign a request whose text the letter cannot carry
    (422 naming the fields): it must be returned to its first step and corrected."""
    problems = letter_text_problems(spec, request.data)
    if problems:
        raise InvalidInput(
            "Isian permohonan ini berisi karakter yang tidak dapat dicetak pada surat. "
            "Kembalikan permohonan ke tahap awal agar isiannya diperbaiki.",
            problems,
        )


def _to_json(value: object) -> object:
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def load_for_actor(
    session: Session, actor: Actor, request_id: int, *, lock: bool = False
) -> LetterRequest:
    if not 1 <= request_id <= MAX_ID:
        raise NotFound(f"Permohonan #{request_id} tidak ditemukan.")
    query = select(LetterRequest).where(LetterRequest.id == request_id)
    if lock:
        query = query.with_for_update()
    request = session.scalar(query)
    if request is None:
        raise NotFound(f"Permohonan #{request_id} tidak ditemukan.")
    if actor.role != "admin" and request.village_code != actor.village_code:
        raise Forbidden("Permohonan ini milik desa/kelurahan lain.")
    return request


def act(
    session: Session,
    catalog: WorkflowCatalog,
    actor: Actor,
    request_id: int,
    action: str,
    *,
    version: int,
    reason: str | None = None,
    data: Mapping[str, object] | None = None,
) -> LetterRequest:
    """Every action but `sign` (which issues a letter: see engine.letters.issuance)."""
    if action == "sign":
        raise InvalidInput("Penandatanganan memerlukan kata sandi; gunakan tindakan tanda tangan.")
    request = load_for_actor(session, actor, request_id)
    if request.state in TERMINAL_STATES:
        raise Conflict(
            f"Permohonan #{request.id} sudah selesai (status: {request.state}); "
            "tidak ada tindakan lagi yang dapat dilakukan."
        )
    if reason is not None:
        try:
            reason = clean_text(reason, multiline=True) or None
        except TextProblem as exc:
            raise InvalidInput("Alasan belum benar.", {"reason": str(exc)}) from None
    spec = catalog.pinned(session, request)
    if action != CANCEL and spec.step(request.state).actions.get(action) == ISSUED:
        raise InvalidInput(f"Tindakan '{action}' menerbitkan surat; gunakan tanda tangan.")
    target = transition(spec, request.state, action, actor.role, reason)
    new_data = request.data
    if data is not None:
        # Only the one who drafts may change what the letter says (e.g. fixing a returned request).
        if spec.step(request.state).role != actor.role or request.state != spec.initial_state:
            raise Forbidden("Isian surat hanya dapat diubah pada tahap awal oleh pembuatnya.")
        new_data = clean_data(spec, {**request.data, **data})
    elif action not in _BACKWARD:
        check_letter_text(spec, request)
    move(session, actor, request, action, target, version=version, reason=reason, data=new_data)
    return request


def move(
    session: Session,
    actor: Actor,
    request: LetterRequest,
    action: str,
    target: str,
    *,
    version: int,
    reason: str | None,
    data: dict | None = None,
    detail: dict | None = None,
) -> None:
    """Apply a checked transition, only if nobody moved the request since `version`."""
    source = request.state
    result = session.execute(
        update(LetterRequest)
        .where(LetterRequest.id == request.id, LetterRequest.version == version)
        .values(
            state=target,
            version=version + 1,
            updated_at=now_utc(),
            data=data if data is not None else request.data,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict(
            "Permohonan ini sudah diproses orang lain sejak Anda membukanya. Muat ulang halaman."
        )
    session.refresh(request)
    audit.append(
        session,
        actor_id=actor.user_id,
        actor=actor.username,
        role=actor.role,
        action=action,
        request_id=request.id,
        from_state=source,
        to_state=target,
        reason=reason,
        detail=detail,
    )


def move_many(
    session: Session,
    actor: Actor,
    moves: Sequence[tuple[LetterRequest, int, dict | None]],
    action: str,
    target: str,
) -> None:
    """:func:`move` for several requests taking the same checked transition, each only if
    nobody moved it since its version ((request, version, audit detail) triples): one update
    and one batch of audit events (``audit.append_many``), in the given order."""
    if not moves:
        return
    now = now_utc()
    result = session.execute(
        update(LetterRequest)
        .where(
            tuple_(LetterRequest.id, LetterRequest.version).in_(
                [(request.id, version) for request, version, _ in moves]
            )
        )
        .values(state=target, version=LetterRequest.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(moves):
        raise Conflict(
            "Permohonan ini sudah diproses orang lain sejak Anda membukanya. Muat ulang halaman."
        )
    entries = []
    for request, version, detail in moves:
        entries.append(
            {
                "actor_id": actor.user_id,
                "actor": actor.username,
                "role": actor.role,
                "action": action,
                "request_id": request.id,
                "from_state": request.state,
                "to_state": target,
                "reason": None,
                "detail": detail,
            }
        )
        for name, value in (("state", target), ("version", version + 1), ("updated_at", now)):
            set_committed_value(request, name, value)
    audit.append_many(session, entries)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    actor: str
    role: str
    action: str
    from_state: str | None
    to_state: str | None
    reason: str | None


def timeline(session: Session, request_id: int) -> list[TimelineEntry]:
    """A request's history as staff read it: each step with the person's name (the account
    name only when the account is gone; "warga" for the resident who asked online)."""
    events = list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.id)
        )
    )
    actor_ids = {e.actor_id for e in events if e.actor_id is not None}
    names = {
        user_id: name
        for user_id, name in session.execute(
            select(User.id, User.full_name).where(User.id.in_(actor_ids))
        )
    }
    return [
        TimelineEntry(
            at=e.created_at,
            actor=names.get(e.actor_id) or e.actor,
            role=e.role,
            action=e.action,
            from_state=e.from_state,
            to_state=e.to_state,
            reason=e.reason,
        )
        for e in events
    ]
