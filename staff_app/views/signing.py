"""Staff pages: The head's signing queue and batch signing."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import BackgroundTasks, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.errors import Conflict, Forbidden, InvalidInput
from engine.http_status import http_status
from engine.jobs import batch_runs
from engine.letters.facts import request_purpose
from engine.people import acting
from engine.requests import queues
from engine.services import Services
from engine.storage.db import transaction
from engine.storage.models import Village
from engine.trust import signer_limit
from engine.trust.signing import SigningError, WrongPassphrase
from staff_app.deps import Svc, WebDep, load_request, nav, router, signing_pairs, today
from staff_app.i18n import _
from staff_app.rendering import render, row
from staff_app.session import (
    PREFIX,
    Web,
    check_csrf,
)


def _require_signer(session, svc: Services, web: Web) -> list[tuple[str, str]]:
    pairs = signing_pairs(session, svc, web.actor)
    if not pairs:
        raise HTTPException(403)
    return pairs


@router.get("/tandatangan")
def sign_queue(request: Request, web: WebDep, svc: Svc, setelah: str = "") -> HTMLResponse:
    with transaction(svc.factory) as session:
        _require_signer(session, svc, web)
        return _sign_queue(request, session, svc, web, after=setelah)


def _sign_queue(
    request,
    session,
    svc,
    web,
    *,
    error: str | None = None,
    status: int = 200,
    picked: frozenset[int] = frozenset(),
    tries_in_error: bool = False,
    after: str = "",
):
    """One page of the queue (``after``: the ?setelah= cursor; the batch form carries it, so a
    wrong passphrase shows the same page with its ticks again). `tries_in_error`: the error
    already says what the wrong passphrase left (tries, wait, lock), so the standing tries
    notice is not shown a second time. A cursor the engine refuses is a 422 page saying so."""
    pairs = _require_signer(session, svc, web)
    code = web.actor.village_code or ""
    try:
        page = queues.queue_page(session, svc.catalog, code, "head", pairs=pairs, after=after)
    except InvalidInput as exc:
        page, after, status, error = queues.RequestPage([], None), "", 422, str(exc)
    village = session.get(Village, web.actor.village_code) if web.actor.village_code else None
    rows, marks = [], []
    for req in page.rows:
        spec = svc.catalog.pinned(session, req)
        mark = acting.step_capacity(session, web.actor, today(), spec, req.state).on_behalf
        if mark and village is not None and mark not in marks:
            marks.append(mark)
        rows.append(row(svc, session, req) | {"purpose": request_purpose(session, spec, req)})
    return render(
        request,
        "sign.html",
        status,
        web=web,
        nav=nav(session, svc, web),
        rows=rows,
        total=queues.queue_count(session, svc.catalog, code, "head", pairs=pairs),
        after=after,
        first_url="?" if after else None,
        next_url=f"?{urlencode({'setelah': page.next_cursor})}" if page.next_cursor else None,
        picked=picked,
        on_behalf=[acting.on_behalf_title(village, m) for m in marks] if village else [],
        own_title=acting.own_title(web.actor.role, village) if village else "",
        error=error,
        tries_in_error=tries_in_error,
        limit=signer_limit.status(session, web.actor.user_id or 0, svc.issuer.clock()),
        unlocker=signer_limit.UNLOCKER,
    )


@router.post("/tandatangan")
async def sign_post(
    request: Request, web: WebDep, svc: Svc, background: BackgroundTasks
) -> Response:
    await check_csrf(request, web)
    form = await request.form()
    after = str(form.get("setelah", ""))[:200]  # the page the ticks were made on
    with transaction(svc.factory) as session:
        _require_signer(session, svc, web)
    picked: list[tuple[int, int]] = []
    for value in form.getlist("req"):
        try:
            rid, version = (int(x) for x in str(value).split(":"))
        except ValueError:
            continue
        picked.append((rid, version))
    if not picked:
        with transaction(svc.factory) as session:
            return _sign_queue(
                request,
                session,
                svc,
                web,
                error=_("Choose at least one letter."),
                status=422,
                after=after,
            )
    with transaction(svc.factory) as session:
        for rid, _version in picked:
            req = load_request(session, web.actor, rid)
            spec = svc.catalog.pinned(session, req)
            if req.state in spec.steps:  # a finished one fails in the batch, with its reason
                role = acting.step_capacity(session, web.actor, today(), spec, req.state).role
                if role != spec.steps[req.state].role:
                    raise Forbidden(
                        _("You may not sign request #%(id)s (%(title)s).")
                        % {"id": rid, "title": spec.title}
                    )
    try:
        signer = svc.issuer.unlock(web.actor, str(form.get("passphrase", "")))
    except (SigningError, Forbidden) as exc:
        message = str(exc)
        status = http_status(exc)
        if isinstance(exc, WrongPassphrase):
            message = _("Wrong passphrase. Nothing was signed.")
            if isinstance(exc, signer_limit.CountedWrongPassphrase):
                message = f"{message} {exc.hint}"
        ticked = frozenset(rid for rid, _version in picked)
        with transaction(svc.factory) as session:
            return _sign_queue(
                request,
                session,
                svc,
                web,
                error=message,
                status=status,
                picked=ticked,
                tries_in_error=isinstance(exc, SigningError),
                after=after,
            )
    owner = batch_runs.new_owner()  # this process runs the batch under a lease it renews
    try:
        batch_id = _to_worker(svc, web, picked)
        if batch_id is not None:  # a queue worker signs it with its own token PIN
            signer.close()
            return RedirectResponse(f"{PREFIX}/tandatangan/{batch_id}", 303)
        batch_id = batch_runs.start(svc.issuer, web.actor, picked, owner)
    except BaseException:
        signer.close()  # a token session must not outlive a batch that never starts
        raise
    background.add_task(batch_runs.run, svc.issuer, web.actor, batch_id, signer, owner)
    return RedirectResponse(f"{PREFIX}/tandatangan/{batch_id}", 303)


def _to_worker(svc: Services, web: Web, picked: list[tuple[int, int]]) -> int | None:
    """On PostgreSQL with a live `suratdesa worker`, a batch of a head whose key is on the
    HSM goes to the job queue (engine.jobs.queue); otherwise None: this process runs it."""
    from engine.jobs import queue

    hsm = batch_runs.hsm_signer(svc.factory, web.actor)
    return queue.hand_to_worker(svc, web.actor, picked, hsm=hsm)


def _batch_page(request, svc, web, batch_id, *, error: str | None = None, status: int = 200):
    run = batch_runs.state(svc.issuer, web.actor, batch_id)
    with transaction(svc.factory) as session:
        return render(
            request,
            "batch.html",
            status,
            web=web,
            nav=nav(session, svc, web),
            batch=run.batch,
            run=run,
            error=error,
        )


@router.get("/tandatangan/{batch_id}")
def batch_page(request: Request, batch_id: int, web: WebDep, svc: Svc) -> HTMLResponse:
    return _batch_page(request, svc, web, batch_id)


@router.get("/tandatangan/{batch_id}/status")
def batch_status(request: Request, batch_id: int, web: WebDep, svc: Svc) -> HTMLResponse:
    run = batch_runs.state(svc.issuer, web.actor, batch_id)
    return render(request, "_batch.html", web=web, batch=run.batch, run=run)


@router.post("/tandatangan/{batch_id}/lanjutkan")
async def batch_resume(
    request: Request, batch_id: int, web: WebDep, svc: Svc, background: BackgroundTasks
) -> Response:
    """Resume an interrupted batch: the passphrase again (never stored), then exactly the
    letters still pending are issued (engine.jobs.batch_runs)."""
    await check_csrf(request, web)
    form = await request.form()
    owner = batch_runs.new_owner()
    try:
        signer = batch_runs.resume(
            svc.issuer, web.actor, batch_id, str(form.get("passphrase", "")), owner
        )
    except (SigningError, Forbidden, Conflict) as exc:
        message = str(exc)
        if isinstance(exc, WrongPassphrase):
            message = "Passphrase salah. Tidak ada surat yang ditandatangani."
            if isinstance(exc, signer_limit.CountedWrongPassphrase):
                message = f"{message} {exc.hint}"
        return _batch_page(request, svc, web, batch_id, error=message, status=http_status(exc))
    background.add_task(batch_runs.run, svc.issuer, web.actor, batch_id, signer, owner)
    return RedirectResponse(f"{PREFIX}/tandatangan/{batch_id}", 303)


# --------------------------------------------------------------------------- archive
