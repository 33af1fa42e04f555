"""The pure transition function over a pinned workflow spec. No I/O: given a state, an action,
the actor's role and a reason, it returns the next state or raises."""

from __future__ import annotations

from engine.errors import Conflict, Forbidden, InvalidInput
from engine.requests.workflows import TERMINAL_STATES, WorkflowSpec

CANCEL = "cancel"
CANCELLED = "cancelled"
ISSUED = "issued"
REASON_REQUIRED = frozenset({"return", "reject", CANCEL})


def transition(spec: WorkflowSpec, state: str, action: str, role: str, reason: str | None) -> str:
    if state in TERMINAL_STATES:
        raise Conflict(f"Permohonan sudah selesai (status: {state}); tidak bisa '{action}'.")
    step = spec.step(state)
    if action in REASON_REQUIRED and not (reason or "").strip():
        raise InvalidInput(f"Tindakan '{action}' wajib disertai alasan.", {"reason": "Wajib diisi"})
    if action == CANCEL:
        # Built in: the front desk may withdraw a request at any point before it is issued.
        if role != "operator":
            raise Forbidden("Hanya operator yang dapat membatalkan permohonan.")
        return CANCELLED
    if action not in step.actions:
        allowed = ", ".join(sorted(step.actions)) or "-"
        raise Conflict(
            f"Tindakan '{action}' tidak tersedia pada tahap '{state}' (yang tersedia: {allowed})."
        )
    if role != step.role:
        raise Forbidden(f"Tahap '{state}' dikerjakan oleh peran '{step.role}', bukan '{role}'.")
    return step.actions[action]


def available_actions(spec: WorkflowSpec, state: str, role: str) -> list[str]:
    if state in TERMINAL_STATES:
        return []
    step = spec.step(state)
    actions = sorted(step.actions) if step.role == role else []
    if role == "operator":
        actions.append(CANCEL)
    return actions
