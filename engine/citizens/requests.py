"""Requests residents start online: which letter types they may ask for, the request itself
(checked by the same engine functions as a counter request), the correction of a returned
request, the status by tracking code, and the operator's list of citizen requests.

A citizen request is a normal request with ``channel`` "warga": it enters the workflow's first
step, which the operator works (the loader checks that a citizen-requestable workflow starts
with the operator), so the operator completes or corrects it and the normal chain runs. It has
no staff creator (``created_by_id`` NULL); the audit log names the actor "warga"."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from engine import attachments
from engine.citizens import limits
from engine.citizens.codes import code_hash, new_code, normalize
from engine.citizens.errors import UnknownCode
from engine.citizens.status import (
    CORRECTED,
    EXPLANATIONS,
    LABELS,
    RECEIVED,
    RETURNED,
    StatusView,
    citizen_status,
)
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.letters.archive import check_cursor, cursor_at
from engine.people.nik import mask_nik
from engine.people.users import Actor
from engine.requests.catalog import WorkflowCatalog
from engine.requests.letter_requests import clean_data, open_request
from engine.requests.queues import RequestPage, check_page_size
from engine.requests.workflows import TERMINAL_STATES, WorkflowSpec
from engine.storage import audit
from engine.storage.db import transaction
from engine.storage.models import (
    Attachment,
    AuditEvent,
    CitizenTracking,
    Letter,
    LetterRequest,
    Resident,
    Village,
)
from engine.text import TextProblem, clean_text
from engine.timeutil import now_utc

CHANNEL = "warga"
ACTOR = "warga"  # the audit log's actor and role for what a resident does online
DEFAULT_OPEN_LIMIT = 3  # Settings.citizen_open_limit
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_PHONE = re.compile(r"^\+?[0-9]{8,15}$")


def citizen_actor(village_code: str) -> Actor:
    return Actor(None, ACTOR, "Warga", ACTOR, village_code)


def requestable(catalog: WorkflowCatalog) -> list[WorkflowSpec]:
    """The letter types residents may ask for online, by title."""
    specs = [s for s in catalog.specs.values() if s.citizen_requestable]
    return sorted(specs, key=lambda s: s.title)


def requestable_spec(catalog: WorkflowCatalog, workflow_id: str) -> WorkflowSpec:
    spec = catalog.current(workflow_id)
    if not spec.citizen_requestable:
        raise Forbidden(
            f"{spec.title} tidak dapat diajukan secara daring; silakan datang ke kantor "
            "desa/kelurahan."
        )
    return spec


def clean_contact(value: object) -> str | None:
    """An e-mail address or a phone number (08..., +62...) for notices; empty: None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        text = clean_text(value, max_length=254)
    except TextProblem as exc:
        raise InvalidInput("Kontak belum benar.", {"contact": str(exc)}) from None
    phone = re.sub(r"[\s().-]", "", text)
    if _EMAIL.match(text):
        return text
    if _PHONE.match(phone):
        return phone
    raise InvalidInput(
        "Kontak belum benar.",
        {"contact": "Isi alamat e-mail atau nomor HP (misalnya 081234567890)"},
    )


def open_count(session: Session, nik: str) -> int:
    """Citizen requests of this NIK that are not finished yet."""
    return session.scalar(
        select(func.count())
        .select_from(CitizenTracking)
        .join(LetterRequest, LetterRequest.id == CitizenTracking.request_id)
        .where(CitizenTracking.nik == nik, LetterRequest.state.not_in(TERMINAL_STATES))
    )


def create_citizen_request(
    session: Session,
    catalog: WorkflowCatalog,
    nik: str,
    workflow_id: str,
    data: Mapping[str, object],
    *,
    contact: object = None,
    uploads: Sequence[attachments.Upload] = (),
    open_limit: int = DEFAULT_OPEN_LIMIT,
) -> tuple[LetterRequest, str]:
    """A request by the identified resident ``nik`` (from a pass), about themselves; returns it
    with its tracking code (shown once; only its hash is kept). Refused: a type not open to
    citizens, a deceased resident (the workflow's own alive rule), more than ``open_limit``
    unfinished requests, and fields or files the staff forms would refuse, with the same
    messages (letter_requests.check_subjects / clean_data, attachments.check)."""
    spec = requestable_spec(catalog, workflow_id)
    resident = session.scalar(select(Resident).where(Resident.nik == nik).with_for_update())
    if resident is None:  # the pass outlived the registry entry
        raise Forbidden("Data penduduk Anda tidak ditemukan; silakan datang ke kantor desa.")
    if not resident.alive:
        raise Forbidden(
            "Data penduduk ini tercatat sudah meninggal; permohonan tidak dapat dibuat."
        )
    if open_count(session, nik) >= open_limit:
        raise Conflict(
            f"Anda masih punya {open_limit} permohonan yang sedang diproses. Tunggu sampai salah "
            "satunya selesai, atau datang ke kantor desa/kelurahan."
        )
    errors: dict[str, str] = {}
    try:
        cleaned_contact = clean_contact(contact)
    except InvalidInput as exc:
        errors.update(exc.errors)
    try:
        checked = attachments.check(uploads)
    except InvalidInput as exc:
        errors.update(exc.errors)
        checked = []
    try:
        clean_data(spec, data)
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidInput("Isian belum benar. Perbaiki yang ditandai.", errors)
    actor = citizen_actor(resident.village_code)
    subjects = {spec.subjects[0].name: nik}
    request = open_request(session, catalog, actor, spec, resident.village_code, subjects, data)
    request.channel = CHANNEL
    request.citizen_contact = cleaned_contact
    code = new_code()
    session.add(
        CitizenTracking(
            request_id=request.id,
            code_sha256=code_hash(normalize(code)),
            nik=nik,
            created_at=now_utc(),
        )
    )
    _store_files(session, request.id, checked)
    session.flush()
    audit.append(
        session,
        actor_id=None,
        actor=ACTOR,
        role=ACTOR,
        action="create",
        request_id=request.id,
        to_state=request.state,
        detail={
            "workflow": f"{spec.id}@{spec.version}",
            "sha256": spec.sha256,
            "channel": CHANNEL,
            "files": len(checked),
        },
    )
    return request, code


def _store_files(session: Session, request_id: int, checked) -> None:
    for upload, content_type, filename in checked:
        session.add(
            Attachment(
                request_id=request_id,
                filename=filename,
                content_type=content_type,
                size=len(upload.data),
                data=upload.data,
                uploaded_by_id=None,
                created_at=now_utc(),
            )
        )


def _tracked(session: Session, code: object) -> LetterRequest | None:
    chars = normalize(code)
    if chars is None:
        return None
    return session.scalar(
        select(LetterRequest)
        .join(CitizenTracking, CitizenTracking.request_id == LetterRequest.id)
        .where(CitizenTracking.code_sha256 == code_hash(chars))
    )


def status_view(session: Session, catalog: WorkflowCatalog, request: LetterRequest) -> StatusView:
    spec = catalog.pinned(session, request)
    events = list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request.id).order_by(AuditEvent.id)
        )
    )
    letter = session.scalar(select(Letter).where(Letter.request_id == request.id))
    status, reason = citizen_status(spec, request, events, letter)
    village = session.get(Village, request.village_code)
    nik = next(iter(request.subjects.values()), "")
    return StatusView(
        status=status,
        label=LABELS[status],
        explanation=EXPLANATIONS[status],
        reason=reason,
        title=spec.title,
        masked_nik=mask_nik(nik),
        village_name=f"{village.kind_label.title()} {village.name}" if village else "",
        received_at=request.created_at,
        updated_at=request.updated_at,
        letter_number=letter.number if letter is not None else None,
        handed_over_at=letter.handed_over_at if letter is not None else None,
        version=request.version,
        correctable=status == RETURNED,
    )


def status_by_code(
    factory: sessionmaker[Session],
    catalog: WorkflowCatalog,
    code: object,
    *,
    client: str,
    clock: Callable[[], float] = time.time,
) -> StatusView:
    """The status page's content for a tracking code. Every look-up is counted per client
    address, and one that finds nothing (mistyped, guessed, malformed: one answer) is counted
    again, so guessing stops long before it could find anything."""
    now = clock()
    seen = {limits.STATUS_ADDRESS: client}
    missed = {limits.STATUS_MISS: client}
    with transaction(factory) as session:
        conn = session.connection()
        limits.refuse_if_over(conn, {**seen, **missed}, now)
        limits.count(conn, seen, now)
        request = _tracked(session, code)
        if request is None:
            limits.count(conn, missed, now)
            view = None
        else:
            view = status_view(session, catalog, request)
    if view is None:
        raise UnknownCode()
    return view


def owned_request(session: Session, nik: str, code: object) -> LetterRequest:
    """The request behind ``code`` if the identified resident ``nik`` asked for it; the same
    UnknownCode otherwise."""
    request = _tracked(session, code)
    if request is None:
        raise UnknownCode()
    tracking = session.get(CitizenTracking, request.id)
    if tracking is None or tracking.nik != nik:
        raise UnknownCode()
    return request


def add_files(
    session: Session,
    catalog: WorkflowCatalog,
    nik: str,
    code: object,
    uploads: Sequence[attachments.Upload],
) -> LetterRequest:
    """The resident adds files to their own request while it waits for the office (received)
    or is returned to them: all or none, checked by content like staff uploads, audited."""
    request = owned_request(session, nik, code)
    if status_view(session, catalog, request).status not in (RECEIVED, RETURNED):
        raise Conflict("Lampiran hanya bisa ditambah sebelum permohonan diperiksa petugas.")
    if not uploads:
        raise InvalidInput("Pilih berkas yang akan dilampirkan.", {attachments.FIELD: "Kosong."})
    checked = attachments.check(uploads, attachments.count(session, request.id))
    _store_files(session, request.id, checked)
    session.flush()
    audit.append(
        session,
        actor_id=None,
        actor=ACTOR,
        role=ACTOR,
        action="citizen.attach",
        request_id=request.id,
        detail={"files": len(checked)},
    )
    return request


def correct_returned(
    session: Session,
    catalog: WorkflowCatalog,
    nik: str,
    code: object,
    data: Mapping[str, object],
    *,
    version: int,
    uploads: Sequence[attachments.Upload] = (),
) -> LetterRequest:
    """The resident corrects a returned request (fields, and files added): it is the office's
    to complete again (status RECEIVED), checked like a staff correction (clean_data)."""
    request = owned_request(session, nik, code)
    if status_view(session, catalog, request).status != RETURNED:
        raise Conflict("Permohonan ini tidak sedang dikembalikan; tidak ada yang perlu diperbaiki.")
    spec = catalog.pinned(session, request)
    errors: dict[str, str] = {}
    try:
        checked = attachments.check(uploads, attachments.count(session, request.id))
    except InvalidInput as exc:
        errors.update(exc.errors)
        checked = []
    new_data: dict[str, object] = {}
    try:
        new_data = clean_data(spec, {**request.data, **data})
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidInput("Isian belum benar. Perbaiki yang ditandai.", errors)
    changed = sorted(k for k, v in new_data.items() if request.data.get(k) != v)
    result = session.execute(
        update(LetterRequest)
        .where(LetterRequest.id == request.id, LetterRequest.version == version)
        .values(data=new_data, version=version + 1, updated_at=now_utc())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict("Permohonan ini sudah berubah sejak Anda membukanya. Muat ulang halaman.")
    _store_files(session, request.id, checked)
    session.refresh(request)
    audit.append(
        session,
        actor_id=None,
        actor=ACTOR,
        role=ACTOR,
        action=CORRECTED,
        request_id=request.id,
        from_state=request.state,
        to_state=request.state,
        detail={"fields": changed, "files": len(checked)},
    )
    return request


def operator_queue(
    session: Session, catalog: WorkflowCatalog, village_code: str, limit: int = 200
) -> list[LetterRequest]:
    """Citizen requests of a village waiting in their workflow's first step (the operator's),
    oldest first."""
    rows = session.scalars(
        select(LetterRequest)
        .where(
            LetterRequest.village_code == village_code,
            LetterRequest.channel == CHANNEL,
            LetterRequest.state.not_in(TERMINAL_STATES),
        )
        .order_by(LetterRequest.updated_at, LetterRequest.id)
        .limit(limit)
    )
    return [r for r in rows if r.state == catalog.pinned(session, r).initial_state]


def operator_queue_page(
    session: Session,
    catalog: WorkflowCatalog,
    village_code: str,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> RequestPage:
    """One page of :func:`operator_queue`, oldest first, by keyset on (updated_at, id) with the
    archive's cursor form. Whether a request still waits in its first step depends on the
    workflow version it is pinned to, so rows are read in chunks until a page is full.
    InvalidInput for a cursor this engine did not make or a page size out of range."""
    limit = check_page_size(limit)
    position = check_cursor(after)
    base = (
        select(LetterRequest)
        .where(
            LetterRequest.village_code == village_code,
            LetterRequest.channel == CHANNEL,
            LetterRequest.state.not_in(TERMINAL_STATES),
        )
        .order_by(LetterRequest.updated_at, LetterRequest.id)
        .limit(limit + 1)
    )
    found: list[LetterRequest] = []
    while len(found) <= limit:
        query = base
        if position is not None:
            key = tuple_(LetterRequest.updated_at, LetterRequest.id)
            query = query.where(key > tuple_(*position))
        chunk = list(session.scalars(query))
        found += [r for r in chunk if r.state == catalog.pinned(session, r).initial_state]
        if len(chunk) <= limit:
            break
        position = (chunk[-1].updated_at, chunk[-1].id)
    rows = found[:limit]
    more = len(found) > limit
    return RequestPage(rows, cursor_at(rows[-1].updated_at, rows[-1].id) if more else None)
