"""Work lists: counts per state, a role's queue (oldest first) and an operator's own requests."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from engine.catalog import WorkflowCatalog
from engine.models import LetterRequest
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


def _queue_filter(catalog: WorkflowCatalog, role: str):
    pairs = role_states(catalog, role)
    if not pairs:
        return None
    return or_(*(and_(LetterRequest.workflow_id == w, LetterRequest.state == s) for w, s in pairs))


def queue(
    session: Session, catalog: WorkflowCatalog, village_code: str, role: str
) -> list[LetterRequest]:
    condition = _queue_filter(catalog, role)
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


def queue_count(session: Session, catalog: WorkflowCatalog, village_code: str, role: str) -> int:
    condition = _queue_filter(catalog, role)
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
