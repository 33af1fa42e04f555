"""Staff pages: Pemberitahuan, the signed-in user's own notices (new work in their queue, a
request returned or a letter ready), newest first, and marking them read. The unread count in
the header comes with the signed-in user (staff_app.session.current)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from engine.errors import InvalidInput
from engine.notify import inbox, outbox
from engine.storage.db import transaction
from staff_app.deps import Svc, WebDep, nav, router
from staff_app.rendering import render
from staff_app.session import PREFIX, check_csrf


@router.get("/pemberitahuan")
def notices_page(request: Request, web: WebDep, svc: Svc, setelah: str = "") -> HTMLResponse:
    """One page of the user's notices (?setelah= holds the cursor); a cursor the engine
    refuses is a 422 page saying so."""
    with transaction(svc.factory) as session:
        try:
            page = inbox.notices_page(session, web.actor.user_id, after=setelah or None)
        except InvalidInput as exc:
            page, status, error = inbox.NoticePage([], None), 422, str(exc)
        else:
            status, error = 200, None
        return render(
            request,
            "notifications.html",
            status,
            web=web,
            nav=nav(session, svc, web),
            notices=page.rows,
            error=error,
            first_url="?" if setelah else None,
            next_url=f"?{urlencode({'setelah': page.next_cursor})}" if page.next_cursor else None,
        )


@router.post("/pemberitahuan/{notice_id}/baca")
async def read_notice(request: Request, notice_id: int, web: WebDep, svc: Svc) -> RedirectResponse:
    """Mark one notice read and open what it is about (its request's page)."""
    await check_csrf(request, web)
    with transaction(svc.factory) as session:
        notice = outbox.mark_read(session, web.actor.user_id, notice_id)
        target = notice.link if notice.link and notice.link.startswith(f"{PREFIX}/") else None
    return RedirectResponse(target or f"{PREFIX}/pemberitahuan", 303)


@router.post("/pemberitahuan/baca-semua")
async def read_all(request: Request, web: WebDep, svc: Svc) -> RedirectResponse:
    await check_csrf(request, web)
    with transaction(svc.factory) as session:
        outbox.mark_all_read(session, web.actor.user_id)
    return RedirectResponse(f"{PREFIX}/pemberitahuan", 303)
