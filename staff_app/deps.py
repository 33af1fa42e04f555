"""What the staff pages depend on: the process's engine objects, the signed-in user, the
navigation counts, and the village rule for opening a request (another village's is a 404)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request

from engine import attachments
from engine.dates import WIB, format_tanggal
from engine.errors import InvalidInput, NotFound
from engine.letters import archive
from engine.people import acting
from engine.people.residents import ELSEWHERE, lookup_subject_for
from engine.people.users import (
    Actor,
)
from engine.requests import queues
from engine.requests.workflows import WorkflowSpec
from engine.services import Services
from engine.storage.models import LetterRequest
from engine.timeutil import now_utc
from staff_app.rendering import HtmlErrorRoute
from staff_app.session import (
    PREFIX,
    Web,
    current,
)

# The one router of the staff pages: every module in staff_app.views adds its area's pages to
# it; engine and HTTP errors become pages (HtmlErrorRoute); none is in the OpenAPI document.
router = APIRouter(prefix=PREFIX, route_class=HtmlErrorRoute, include_in_schema=False)


def services(request: Request) -> Services:
    return request.app.state.services


WebDep = Annotated[Web, Depends(current)]
Svc = Annotated[Services, Depends(services)]


def nav(session, svc: Services, web: Web) -> dict[str, int]:
    """Counts shown in the navigation."""
    actor = web.actor
    if actor.village_code is None:
        return {}
    counts: dict[str, int] = {}
    if actor.role in ("kasi", "sekdes"):
        counts["queue"] = queues.queue_count(session, svc.catalog, actor.village_code, actor.role)
    pairs = signing_pairs(session, svc, actor)
    if pairs:
        counts["sign"] = queues.queue_count(
            session, svc.catalog, actor.village_code, "head", pairs=pairs
        )
    if actor.role == "operator":
        counts["draft"] = len(
            [r for r in queues.own_requests(session, actor.user_id) if r.state == "draft"]
        )
    return counts


def signing_pairs(session, svc: Services, actor: Actor) -> list[tuple[str, str]]:
    """The (workflow, state) pairs the actor signs today: as head or acting head, and/or on
    the head's behalf where a workflow's signing step names their role."""
    if actor.village_code is None:
        return []
    as_head = acting.capacity(session, actor, today()).role == "head"
    return queues.signing_states(svc.catalog, actor.role, as_head=as_head)


def require(web: Web, *roles: str) -> None:
    if web.actor.role not in roles:
        raise HTTPException(403)


def load_request(session, actor: Actor, request_id: int) -> LetterRequest:
    """Another village's request is 404: its existence is not the user's business."""
    if not 1 <= request_id <= archive.MAX_ID:  # not a 32-bit id: no such request, no query
        raise HTTPException(404)
    req = session.get(LetterRequest, request_id)
    if req is None or (actor.role != "admin" and req.village_code != actor.village_code):
        raise HTTPException(404)
    return req


def today() -> date:
    return now_utc().astimezone(WIB).date()


def spec_or_404(svc: Services, workflow_id: str) -> WorkflowSpec:
    spec = svc.catalog.specs.get(workflow_id)
    if spec is None:
        raise HTTPException(404)
    return spec


def resident_info(
    session, actor: Actor, spec: WorkflowSpec, subject_name: str, nik: str
) -> dict[str, Any]:
    """What the form shows under a NIK box: the resident, or exactly what is wrong. Who may see
    whom is the engine's rule (residents.lookup_subject_for), the same the JSON API applies."""
    if not nik.strip():
        return {}
    try:
        found = lookup_subject_for(session, actor, spec, subject_name, nik)
    except (InvalidInput, NotFound) as exc:
        return {"error": str(exc)}
    r = found.resident
    return {
        "resident": {
            "name": r.name,
            "nik": r.nik,
            "born": f"{r.birth_place}, {format_tanggal(r.birth_date)}",
            "sex": r.sex,
            "address": r.address,
        }
        if r is not None
        else None,
        "elsewhere": ELSEWHERE if found.elsewhere else None,
        "error": found.problem,
    }


async def uploads_of(form) -> list[attachments.Upload]:
    """The files of the form's attachment inputs, read up to one byte past the limit."""
    found = []
    for item in form.getlist(attachments.FIELD):
        if isinstance(item, str):
            continue
        data = await item.read(attachments.MAX_SIZE + 1)
        found.append(attachments.Upload(item.filename or "", data, item.size))
    return found
