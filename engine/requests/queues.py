"""Work lists: counts per state, a role's queue (oldest first) and an operator's own requests
(newest first, searchable by NIK prefix, name or letter type). Both page by keyset on
(updated_at, id) with the archive's cursor form, never OFFSET."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import String, and_, cast, exists, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.letters.archive import check_cursor, contains_pattern, cursor_at
from engine.people.acting import delegated_states
from engine.requests.catalog import WorkflowCatalog
from engine.storage.models import LetterRequest, Resident
from engine.text import text_problem
from engine.timeutil import now_utc

OVERDUE_AFTER = timedelta(days=2)
QUEUE_LIMIT = 200
PAGE_SIZE = 50
MAX_PAGE = 500


@dataclass(frozen=True)
class RequestPage:
    rows: list[LetterRequest]
    next_cursor: str | None  # None: this is the last page


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


def check_page_size(limit: int | None) -> int:
    """The page size to use (None: PAGE_SIZE); InvalidInput when out of range."""
    limit = PAGE_SIZE if limit is None else limit
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(
            f"Jumlah baris per halaman harus 1 sampai {MAX_PAGE}.", {"limit": "Di luar rentang"}
        )
    return limit


def _paged(
    session: Session, query, after: str | None, limit: int | None, *, newest_first: bool
) -> RequestPage:
    """One page of ``query`` (LetterRequest rows) ordered on (updated_at, id), after the
    cursor; InvalidInput for a cursor this engine did not make or a page size out of range.
    ``limit`` None: PAGE_SIZE."""
    limit = check_page_size(limit)
    position = check_cursor(after)
    key = tuple_(LetterRequest.updated_at, LetterRequest.id)
    if position is not None:
        query = query.where(key < tuple_(*position) if newest_first else key > tuple_(*position))
    if newest_first:
        query = query.order_by(LetterRequest.updated_at.desc(), LetterRequest.id.desc())
    else:
        query = query.order_by(LetterRequest.updated_at, LetterRequest.id)
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return RequestPage(rows, cursor_at(last.updated_at, last.id) if more and last else None)


def queue_page(
    session: Session,
    catalog: WorkflowCatalog,
    village_code: str,
    role: str,
    *,
    pairs: list[tuple[str, str]] | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> RequestPage:
    """One page of the role's work list, oldest first (see :func:`queue`)."""
    condition = _queue_filter(catalog, role) if pairs is None else _pairs_filter(pairs)
    if condition is None:
        check_cursor(after)
        return RequestPage([], None)
    query = select(LetterRequest).where(LetterRequest.village_code == village_code, condition)
    return _paged(session, query, after, limit, newest_first=False)


def check_search(text: str) -> str:
    """The request search text, stripped; InvalidInput (field "search") when it cannot be run."""
    text = text.strip()
    problem = text_problem(text)
    if problem is None and len(text) > 100:
        problem = "Terlalu panjang: maksimal 100 karakter"
    if problem is None and text.isdigit() and len(text) > 16:
        problem = "NIK paling banyak 16 digit"
    if problem:
        raise InvalidInput("Pencarian permohonan belum benar.", {"search": problem})
    return text


def _search_condition(catalog: WorkflowCatalog, text: str):
    """Digits: a subject's NIK starts with them. Other text: part of a subject's name, or of
    the letter type's title."""
    subjects = cast(LetterRequest.subjects, String)
    if text.isascii() and text.isdigit():
        # Keys are role names, never digits: a quote then the digits starts a NIK value.
        return subjects.like(f'%"{text}%')
    named = exists().where(
        Resident.name.ilike(contains_pattern(text), escape="/"),
        subjects.like(literal('%"') + Resident.nik + literal('"%')),
    )
    folded = text.casefold()
    types = [spec.id for spec in catalog.specs.values() if folded in spec.title.casefold()]
    return or_(named, LetterRequest.workflow_id.in_(types)) if types else named


def own_requests_page(
    session: Session,
    catalog: WorkflowCatalog,
    user_id: int,
    *,
    search: str = "",
    after: str | None = None,
    limit: int | None = None,
) -> RequestPage:
    """One page of the requests the user started, newest change first, optionally only those
    matching ``search`` (a NIK prefix, part of a name, or part of a letter type's title)."""
    text = check_search(search)
    query = select(LetterRequest).where(LetterRequest.created_by_id == user_id)
    if text:
        query = query.where(_search_condition(catalog, text))
    return _paged(session, query, after, limit, newest_first=True)


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
