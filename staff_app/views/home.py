"""Staff pages: The dashboard (beranda)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from engine.requests import queues
from engine.storage.db import transaction
from staff_app.deps import Svc, WebDep, nav, router
from staff_app.rendering import render, row, state_label


@router.get("/beranda")
def home(request: Request, web: WebDep, svc: Svc, ok: str = "") -> HTMLResponse:
    with transaction(svc.factory) as session:
        counts = queues.counts_by_state(session, web.actor.village_code)
        mine = (
            queues.own_requests(session, web.actor.user_id, 20)
            if web.actor.role == "operator"
            else []
        )
        return render(
            request,
            "home.html",
            web=web,
            nav=nav(session, svc, web),
            counts=counts,
            state_label=lambda s: state_label(svc, s, web.village_kind),
            mine=[row(svc, session, r) for r in mine],
            ok=ok,
        )
