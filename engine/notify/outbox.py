"""From an audit event to outbox rows, in the event's own transaction; and the staff app's
in-app notices (list, unread count, mark read).

Which events notify whom:

- a request moves into a step some role works (submit, approve, a return to an earlier review
  step), or a resident's online request is created: every active user of the request's village
  holding that step's role ("queue"), except the one who moved it;
- a request is returned to its first step ("returned"), rejected ("rejected") or its letter is
  signed ("ready"): the staff member who started it, and for a citizen request ("warga") the
  resident at the contact they gave.

Staff get an "inapp" notice always, and an "email" / "webhook" notice when their account has
an e-mail address / phone number. A resident's contact with an "@" is an e-mail address,
anything else a phone number for the messaging gateway. Messages carry no NIK, name or
address: only the letter type, the village, the step and (for a return or rejection) the
reason the reviewer wrote for the resident.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import yaml
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from engine.dates import today_wib
from engine.errors import InvalidInput, NotFound
from engine.people.acting import in_village_titles
from engine.people.users import Actor
from engine.requests.statemachine import ISSUED
from engine.storage import audit
from engine.storage.models import (
    ActingAssignment,
    AuditEvent,
    LetterRequest,
    Notice,
    User,
    Village,
    WorkflowSnapshot,
)
from engine.timeutil import now_utc

log = logging.getLogger("suratdesa.notify")

INAPP, EMAIL, WEBHOOK = "inapp", "email", "webhook"
REJECTED = "rejected"
# session.info key: this transaction wrote notices a dispatcher must deliver (the web process's
# dispatcher is woken after commit by engine.notify.dispatcher).
PENDING_FLAG = "suratdesa.notices_pending"
SUBJECT_MAX = 200


@dataclass(frozen=True)
class _Flow:
    """What a notice needs of a pinned workflow: its title, first step, and each step's role
    and label."""

    title: str
    initial: str
    steps: dict[str, tuple[str, str]]  # state -> (role, label)
    delegates: dict[str, frozenset[str]]  # state -> roles its `signers` let sign "a.n."


# Parsed pinned workflows by sha256: a snapshot never changes, so this cache is never stale.
_flows: dict[str, _Flow] = {}


def _flow(session: Session, sha256: str) -> _Flow:
    flow = _flows.get(sha256)
    if flow is None:
        snap = session.get(WorkflowSnapshot, sha256)
        if snap is None:
            raise NotFound(f"workflow snapshot {sha256} missing")
        doc = yaml.safe_load(snap.yaml_text)
        steps = {
            name: (str(step.get("role", "")), str(step.get("label") or name))
            for name, step in doc["steps"].items()
        }
        delegates = {
            name: frozenset((step.get("signers") or {}).keys())
            for name, step in doc["steps"].items()
        }
        flow = _Flow(
            str(doc["title"]).strip(), doc.get("initial", next(iter(steps))), steps, delegates
        )
        _flows[sha256] = flow
    return flow


@dataclass(frozen=True)
class _Message:
    kind: str
    subject: str
    body: str
    link: str | None


def on_audit_event(session: Session, event: AuditEvent) -> None:
    """Write the notices an audit event calls for, in the caller's transaction. Never raises:
    a notice that cannot be written is logged and the transition goes on without it (a
    savepoint undoes any half-written rows)."""
    if event.request_id is None or event.to_state is None:
        return
    try:
        with session.begin_nested():
            pending = _write_notices(session, event)
    except Exception:
        log.exception("notices for audit event %s not written", event.id)
        return
    if pending:
        session.info[PENDING_FLAG] = True


def on_audit_events(session: Session, events: list[AuditEvent]) -> None:
    """:func:`on_audit_event` for several events appended together, with the same outcome:
    their notices are written under one savepoint, and if that fails they are written again
    one event at a time, each under its own (so only a failing event's notices are lost)."""
    events = [e for e in events if e.request_id is not None and e.to_state is not None]
    if len(events) <= 1:
        for event in events:
            on_audit_event(session, event)
        return
    try:
        with session.begin_nested():
            pending = False
            for event in events:
                pending |= _write_notices(session, event)
    except Exception:  # noqa: BLE001 - found again, and logged, event by event
        for event in events:
            on_audit_event(session, event)
        return
    if pending:
        session.info[PENDING_FLAG] = True


_KEEP_KEY = "suratdesa.notify_rows"  # session.info: (transaction, rows read for notices)


def _kept(session: Session, model, key):
    """``session.get``, keeping the row in the session's identity map until the transaction
    ends, so a transaction with many events (a group of letters) reads it once."""
    root = session.get_transaction()
    held = session.info.get(_KEEP_KEY)
    if held is None or held[0] is not root:
        held = session.info[_KEEP_KEY] = (root, {})
    row = held[1].get((model, key))
    if row is None or row not in session:
        row = session.get(model, key)
        if row is not None:
            held[1][(model, key)] = row
    return row


def _write_notices(session: Session, event: AuditEvent) -> bool:
    request = session.get(LetterRequest, event.request_id)
    if request is None:
        return False
    flow = _flow(session, request.workflow_sha256)
    village = _kept(session, Village, request.village_code)
    kind = village.kind if village else None
    place = f"{village.kind_label.title()} {village.name}" if village else request.village_code
    staff: list[User] = []
    citizen: _Message | None = None
    message: _Message | None = None
    state = event.to_state
    if state == ISSUED:
        message = _Message(
            "ready",
            f"Surat siap diserahkan: permohonan #{request.id} ({flow.title})",
            f"Surat {flow.title} untuk permohonan #{request.id} di {place} sudah "
            "ditandatangani dan siap diserahkan kepada pemohon.",
            f"/staf/permohonan/{request.id}",
        )
        staff = _creator(session, request)
        citizen = _Message(
            "ready",
            f"Surat Anda siap diambil: {flow.title}",
            f"Surat {flow.title} yang Anda ajukan sudah ditandatangani dan siap diambil di "
            f"kantor {place}. Bawa KTP atau KK asli saat mengambil.",
            None,
        )
    elif state == REJECTED:
        message, citizen = _rejected(request, flow, place, event.reason)
        staff = _creator(session, request)
    elif state == flow.initial and event.action == "return":
        message, citizen = _returned(request, flow, place, event.reason)
        staff = _creator(session, request)
    elif state in flow.steps and (state != flow.initial or request.channel == "warga"):
        role, label = flow.steps[state]
        step = in_village_titles(label, kind)
        message = _Message(
            "queue",
            f"Pekerjaan baru: permohonan #{request.id} ({flow.title}) — {step}"[:SUBJECT_MAX],
            f"Permohonan #{request.id} ({flow.title}) di {place} masuk antrean Anda pada "
            f"tahap {step}."
            + (
                " Permohonan ini diajukan warga secara daring."
                if request.channel == "warga"
                else ""
            ),
            f"/staf/permohonan/{request.id}",
        )
        staff = _step_holders(session, request.village_code, role, flow.delegates[state])
    recipients = [u for u in staff if u.id != event.actor_id]
    wrote_pending = False
    if message is not None:
        for user in recipients:
            wrote_pending |= _add_staff(session, event, request, message, user)
    if citizen is not None and request.channel == "warga" and request.citizen_contact:
        contact = request.citizen_contact.strip()
        transport = _citizen_transport(contact)
        _add(
            session,
            event,
            request,
            citizen,
            audience="warga",
            user=None,
            transport=transport,
            address=contact,
        )
        wrote_pending = True
    return wrote_pending


def _rejected(
    request: LetterRequest, flow: _Flow, place: str, reason: str | None
) -> tuple[_Message, _Message]:
    why = f" Alasan: {reason}" if reason else ""
    staff = _Message(
        "rejected",
        f"Permohonan #{request.id} ({flow.title}) ditolak",
        f"Permohonan #{request.id} ({flow.title}) di {place} ditolak.{why}",
        f"/staf/permohonan/{request.id}",
    )
    citizen = _Message(
        "rejected",
        f"Permohonan surat Anda ditolak: {flow.title}",
        f"Permohonan {flow.title} yang Anda ajukan di {place} ditolak.{why}",
        None,
    )
    return staff, citizen


def _returned(
    request: LetterRequest, flow: _Flow, place: str, reason: str | None
) -> tuple[_Message, _Message]:
    why = f" Alasan: {reason}" if reason else ""
    staff = _Message(
        "returned",
        f"Permohonan #{request.id} ({flow.title}) dikembalikan untuk diperbaiki",
        f"Permohonan #{request.id} ({flow.title}) di {place} dikembalikan untuk diperbaiki.{why}",
        f"/staf/permohonan/{request.id}",
    )
    citizen = _Message(
        "returned",
        f"Permohonan surat Anda perlu diperbaiki: {flow.title}",
        f"Permohonan {flow.title} yang Anda ajukan di {place} dikembalikan untuk diperbaiki."
        f"{why} Buka halaman status dengan kode pelacakan Anda untuk memperbaikinya.",
        None,
    )
    return staff, citizen


def _creator(session: Session, request: LetterRequest) -> list[User]:
    if request.created_by_id is None:
        return []
    user = _kept(session, User, request.created_by_id)
    return [user] if user is not None and user.active else []


def _holders(session: Session, village_code: str, role: str) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.village_code == village_code, User.role == role, User.active.is_(True))
            .order_by(User.id)
        )
    )


def _step_holders(
    session: Session, village_code: str, role: str, delegates: frozenset[str]
) -> list[User]:
    """Who finds a step in their queue: the role's holders; for the head's step also whoever
    acts as head today (Plt./Plh./Pj.) and the roles the step lets sign "a.n." (the people
    engine.people.acting.step_capacity gives the step to)."""
    holders = _holders(session, village_code, role)
    if role != "head":
        return holders
    today = today_wib()
    acting = select(ActingAssignment.user_id).where(
        ActingAssignment.village_code == village_code,
        ActingAssignment.starts_on <= today,
        ActingAssignment.ends_on >= today,
    )
    more = session.scalars(
        select(User)
        .where(
            User.village_code == village_code,
            User.active.is_(True),
            User.role != role,
            or_(User.id.in_(acting), User.role.in_(sorted(delegates))),
        )
        .order_by(User.id)
    )
    return holders + list(more)


def _citizen_transport(contact: str) -> str:
    return EMAIL if "@" in contact else WEBHOOK


def _add_staff(
    session: Session, event: AuditEvent, request: LetterRequest, message: _Message, user: User
) -> bool:
    _add(session, event, request, message, audience="staff", user=user, transport=INAPP)
    pending = False
    if user.email:
        _add(
            session,
            event,
            request,
            message,
            audience="staff",
            user=user,
            transport=EMAIL,
            address=user.email,
        )
        pending = True
    if user.phone:
        _add(
            session,
            event,
            request,
            message,
            audience="staff",
            user=user,
            transport=WEBHOOK,
            address=user.phone,
        )
        pending = True
    return pending


def _add(
    session: Session,
    event: AuditEvent,
    request: LetterRequest,
    message: _Message,
    *,
    audience: str,
    user: User | None,
    transport: str,
    address: str | None = None,
) -> None:
    now = now_utc()
    inapp = transport == INAPP
    session.add(
        Notice(
            created_at=now,
            event_id=event.id,
            request_id=request.id,
            village_code=request.village_code,
            kind=message.kind,
            audience=audience,
            user_id=user.id if user else None,
            address=address,
            transport=transport,
            subject=message.subject[:SUBJECT_MAX],
            body=message.body,
            link=message.link if audience == "staff" else None,
            status="sent" if inapp else "pending",
            attempts=0,
            next_attempt_at=None if inapp else now,
            sent_at=now if inapp else None,
        )
    )


# --------------------------------------------------------------------------- the staff app


def unread_count(session: Session, user_id: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(Notice)
        .where(Notice.user_id == user_id, Notice.transport == INAPP, Notice.read_at.is_(None))
    )


def inapp_notices(session: Session, user_id: int, limit: int = 100) -> list[Notice]:
    """The user's own in-app notices, newest first."""
    return list(
        session.scalars(
            select(Notice)
            .where(Notice.user_id == user_id, Notice.transport == INAPP)
            .order_by(Notice.id.desc())
            .limit(limit)
        )
    )


def mark_read(session: Session, user_id: int, notice_id: int, at: datetime | None = None) -> Notice:
    """Mark one of the user's own notices read; another user's reads as not found."""
    notice = session.get(Notice, notice_id) if 1 <= notice_id <= 2**62 else None
    if notice is None or notice.user_id != user_id or notice.transport != INAPP:
        raise NotFound("Pemberitahuan tidak ditemukan.")
    if notice.read_at is None:
        notice.read_at = at or now_utc()
    return notice


def mark_all_read(session: Session, user_id: int) -> int:
    result = session.execute(
        update(Notice)
        .where(Notice.user_id == user_id, Notice.transport == INAPP, Notice.read_at.is_(None))
        .values(read_at=now_utc())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def set_contact(
    session: Session, by: Actor, user: User, *, email: str | None, phone: str | None
) -> User:
    """Where a staff member's notices go besides the staff app; "" clears one. Audited."""

    errors: dict[str, str] = {}
    if email is not None:
        email = email.strip()
        if email and ("@" not in email or len(email) > 254 or any(c in email for c in " \r\n")):
            errors["email"] = "Alamat surel tidak valid"
    if phone is not None:
        phone = phone.strip().replace(" ", "").replace("-", "")
        if phone and not (phone.lstrip("+").isdigit() and 8 <= len(phone.lstrip("+")) <= 15):
            errors["phone"] = "Nomor telepon harus 8-15 angka, boleh diawali +"
    if errors:
        raise InvalidInput("Kontak pemberitahuan belum benar.", errors)
    if email is not None:
        user.email = email or None
    if phone is not None:
        user.phone = phone or None
    session.flush()
    audit.append(
        session,
        actor_id=by.user_id,
        actor=by.username,
        role=by.role,
        action="user.contact",
        detail={"user": user.username, "email": bool(user.email), "phone": bool(user.phone)},
    )
    return user
