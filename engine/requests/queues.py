"""Work lists: counts per state, a role's queue (oldest first) and an operator's own requests."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from engine.people.acting import delegated_states
from engine.requests.catalog import WorkflowCatalog
from engine.storage.models import LetterRequest
from engine.timeutil import now_utc

OVERDUE_AFTER = timedelta(days=2)
QUEUE_LIMIT = 200


def counts_by_state(session: Session, village_code: str | None) -> dict[str, int]:
    query = select(LetterRequest.state, func.count()).group_by(LetterRequest.state)
    if village_code is not None:
        query = query.where(LetterRequest.village_code == village_code)
    return {state: n for state, n in session.execute(query)}


def role_states(catalog: WorkflowCatalog, role: str) -> list[tuple[str, str]]:
    """(workflow id, state) pairs whose step the role works, over the workflows in force."""
    return [
        (spec.id, name)
        for spec in catalog.specs.values()
        for name, step in spec.steps.items()
        if step.role == role and name != spec.initial_state
    ]


def signing_states(catalog: WorkflowCatalog, role: str, *, as_head: bool) -> list[tuple[str, str]]:
    """(workflow id, state) pairs a signer may sign: every head step when they sign as head
    (or acting head), plus the steps whose ``signers`` let their own role sign "a.n."."""
    pairs = role_states(catalog, "head") if as_head else []
    extra = delegated_states(list(catalog.specs.values()), role)
    return pairs + [p for p in extra if p not in pairs]


def _pairs_filter(pairs: list[tuple[str, str]]):
    if not pairs:
        return None
    return or_(*(and_(LetterRequest.workflow_id == w, LetterRequest.state == s) for w, s in pairs))


def _queue_filter(catalog: WorkflowCatalog, role: str):
    return _pairs_filter(role_states(catalog, role))


def queue(
    session: Session,
    catalog: WorkflowCatalog,
    village_code: str,
    role: str,
    *,
    pairs: list[tuple[str, str]] | None = None,
) -> list[LetterRequest]:
    """The role's work list, oldest first; ``pairs`` (from :func:`signing_states`) instead of
    the role's own steps for a signing queue."""
    condition = _queue_filter(catalog, role) if pairs is None else _pairs_filter(pairs)
    if condition is None:
        return []
    return list(
        session.scalars(
            select(LetterRequest)
            .where(LetterRequest.village_code == village_code, condition)
            .order_by(LetterRequest.updated_at, LetterRequest.id)
            .limit(QUEUE_LIMIT)
        )
    )


def queue_count(
    session: Session,
    catalog: WorkflowCatalog,
    village_code: str,
    role: str,
    *,
    pairs: list[tuple[str, str]] | None = None,
) -> int:
    condition = _queue_filter(catalog, role) if pairs is None else _pairs_filter(pairs)
    if condition is None:
        return 0
    return session.scalar(
        select(func.count())
        .select_from(LetterRequest)
        .where(LetterRequest.village_code == village_code, condition)
    )


def own_requests(session: Session, user_id: int, limit: int = 100) -> list[LetterRequest]:
    return list(
        session.scalars(
            select(LetterRequest)
            .where(LetterRequest.created_by_id == user_id)
            .order_by(LetterRequest.updated_at.desc())
            .limit(limit)
        )
    )


def is_overdue(request: LetterRequest) -> bool:
    return now_utc() - request.updated_at > OVERDUE_AFTER
