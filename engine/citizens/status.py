"""Where a citizen request is, in the resident's words: the one mapping from request states
(and the audit events that explain them) to the statuses the citizen pages show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.requests.statemachine import CANCELLED, ISSUED
from engine.requests.workflows import WorkflowSpec
from engine.storage.models import AuditEvent, Letter, LetterRequest

RECEIVED = "diterima"
IN_REVIEW = "diperiksa"
RETURNED = "dikembalikan"
READY = "siap_diambil"
HANDED_OVER = "sudah_diambil"
REJECTED = "ditolak"
WITHDRAWN = "dibatalkan"

LABELS = {
    RECEIVED: "Diterima",
    IN_REVIEW: "Diperiksa",
    RETURNED: "Dikembalikan",
    READY: "Siap diambil",
    HANDED_OVER: "Sudah diambil",
    REJECTED: "Ditolak",
    WITHDRAWN: "Dibatalkan",
}
EXPLANATIONS = {
    RECEIVED: "Permohonan Anda sudah diterima dan menunggu dilengkapi petugas desa/kelurahan.",
    IN_REVIEW: "Permohonan Anda sedang diperiksa dan menunggu tanda tangan.",
    RETURNED: "Permohonan Anda dikembalikan. Perbaiki isian sesuai alasan di bawah, lalu "
    "kirim lagi.",
    READY: "Surat Anda sudah ditandatangani. Ambil di kantor desa/kelurahan dengan membawa "
    "KTP-el dan kode lacak ini.",
    HANDED_OVER: "Surat Anda sudah diserahkan.",
    REJECTED: "Permohonan Anda ditolak. Alasannya tertulis di bawah.",
    WITHDRAWN: "Permohonan ini dibatalkan oleh petugas. Alasannya tertulis di bawah.",
}
# Audit actions after which a request in its first step is (again) the office's to complete.
CORRECTED = "citizen.correct"
_BACK_TO_OFFICE = frozenset({"create", CORRECTED})


@dataclass(frozen=True)
class StatusView:
    """What the public status page shows: nothing personal beyond the masked NIK."""

    status: str
    label: str
    explanation: str
    reason: str | None  # why it was returned, rejected or withdrawn
    title: str  # the letter type
    masked_nik: str
    village_name: str
    received_at: object  # datetime (UTC)
    updated_at: object
    letter_number: str | None
    handed_over_at: object | None
    version: int  # for the correction form (optimistic concurrency)
    correctable: bool


def citizen_status(
    spec: WorkflowSpec,
    request: LetterRequest,
    events: Sequence[AuditEvent],
    letter: Letter | None,
) -> tuple[str, str | None]:
    """(status, reason) of a request. In its first step a request is RETURNED when the last
    word on it was a return (from the reviewers) and the resident has not corrected it since;
    otherwise it is RECEIVED (the operator completes it). Between the first step and issue it
    is IN_REVIEW; issued, it is READY until the hand-over is recorded."""
    state = request.state
    if state == ISSUED:
        if letter is not None and letter.handed_over_at is not None:
            return HANDED_OVER, None
        return READY, None
    if state == "rejected":
        return REJECTED, _last_reason(events, "reject")
    if state == CANCELLED:
        return WITHDRAWN, _last_reason(events, "cancel")
    if state != spec.initial_state:
        return IN_REVIEW, None
    for event in reversed(events):
        if event.action == "return" and event.to_state == state:
            return RETURNED, event.reason
        if event.action in _BACK_TO_OFFICE:
            break
    return RECEIVED, None


def _last_reason(events: Sequence[AuditEvent], action: str) -> str | None:
    return next((e.reason for e in reversed(events) if e.action == action), None)
