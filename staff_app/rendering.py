"""How staff pages are rendered: the Jinja2 environment and its labels, error pages, and the
route class that turns engine and HTTP errors into pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date, time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy import select

from engine.dates import format_jam, format_tanggal, format_wib
from engine.errors import SuratDesaError
from engine.http_status import http_status
from engine.letters import archive, revocation
from engine.people.acting import in_village_titles, own_title
from engine.requests import queues
from engine.services import Services
from engine.storage.models import LetterRequest, Resident, Village
from staff_app.i18n import _, translations
from staff_app.session import (
    PREFIX,
    NeedSignIn,
    Web,
    current,
)

TEMPLATES = Path(__file__).parent / "templates"
# Labels through the catalog (English source, Indonesian in locale/id); the locale is fixed
# per process, so they are translated once at import. The head's and the secretary's labels
# here are the generic ones ("Desa/Kelurahan") for pages about no one village; role_label
# gives a village's own titles.
ROLE_LABELS = {
    "operator": _("Operator"),
    "kasi": _("Section head"),
    "sekdes": _("Village secretary"),
    "head": _("Village head"),
    "admin": _("Regency admin"),
    "warga": "Warga (permohonan daring)",
}
STATE_LABELS = {
    "draft": _("Clerk's entry"),
    "issued": _("Issued"),
    "rejected": _("Rejected"),
    "cancelled": _("Cancelled"),
}
ACTION_LABELS = {
    "create": _("Created"),
    "submit": _("Submitted"),
    "approve": _("Approved"),
    "return": _("Returned"),
    "reject": _("Rejected"),
    "cancel": _("Cancelled"),
    "sign": _("Signed"),
    "sign_failed": _("Signing failed"),
    "handover": _("Handed over"),
    "letter.handover": _("Handed over"),
    "attach": _("Attachment saved"),
    "citizen.correct": _("Corrected by the resident"),
    "citizen.attach": "Lampiran ditambah warga",
    "revoke_letter": _("Letter revoked"),
    "replace_start": _("Replacement started"),
    "replace_letter": _("Letter replaced"),
}
# What a button says: the imperative, where the timeline says what happened.
BUTTON_LABELS = {
    "approve": _("Approve"),
    "return": _("Return for revision"),
    "reject": _("Reject"),
    "cancel": _("Cancel request"),
}


def role_label(role: str, village_kind: str | None = None) -> str:
    """A role as staff of a village read it: Kepala Desa or Lurah, Sekretaris Desa or
    Sekretaris Kelurahan, by the village's kind (the engine's titles, acting.own_title)."""
    if role in ("head", "sekdes") and village_kind in ("desa", "kelurahan"):
        return own_title(role, Village(kind=village_kind))
    return ROLE_LABELS.get(role, role)


def generic_titles(text: str) -> str:
    """A workflow text written with a desa's titles ("Tanda tangan Kepala Desa") for a page
    about no one village: "Tanda tangan Kepala Desa/Lurah" (the generic role labels)."""
    desa = Village(kind="desa")
    for role in ("head", "sekdes"):
        title = own_title(role, desa)
        if title in text and ROLE_LABELS[role] not in text:
            text = text.replace(title, ROLE_LABELS[role])
    return text


def shown_value(spec_field, value: object) -> str:
    """A stored field value as staff read it: Indonesian dates, "14.30" times, "-" for empty."""
    if value is None or value == "":
        return "-"
    try:
        if spec_field.type == "date":
            return format_tanggal(date.fromisoformat(str(value)))
        if spec_field.type == "time":
            return format_jam(time.fromisoformat(str(value)))
    except ValueError:
        pass
    return str(value)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        P=PREFIX,
        ROLE_LABELS=ROLE_LABELS,
        role_label=role_label,
        ACTION_LABELS=ACTION_LABELS,
        BUTTON_LABELS=BUTTON_LABELS,
        tanggal=format_tanggal,
        shown=shown_value,
        wib=format_wib,  # every time shown: "29-11-2026 14.30 WIB" (engine.dates)
        # request.html's revoke/replace block asks the engine who may revoke (one rule)
        may_revoke_letter=revocation.may_revoke,
        letter_status_label=archive.status_label,
    )
    env.filters["wib"] = format_wib
    return env


ENV = _env()


class HtmlErrorRoute(APIRoute):
    """Engine errors and HTTP errors as pages, not the JSON API's answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except NeedSignIn as exc:
                query = {"next": exc.next_url}
                if exc.expired:
                    query["habis"] = "1"
                target = f"{PREFIX}/masuk?{urlencode(query)}"
                if request.headers.get("HX-Request"):
                    return Response(status_code=204, headers={"HX-Redirect": target})
                return RedirectResponse(target, 303)
            except HTTPException as exc:
                if exc.status_code == 403 and exc.detail == "csrf":
                    message = _("The form has expired. Go back, reload the page and try again.")
                elif exc.status_code == 403:
                    message = _("You may not open this page.")
                elif exc.status_code == 404:
                    message = _("Not found. It may not exist, or it is not your village's.")
                else:
                    message = str(exc.detail)
                return error_page(request, exc.status_code, message)
            except SuratDesaError as exc:
                return error_page(request, http_status(exc), str(exc))

        return wrapped


def render(
    request: Request, name: str, status: int = 200, web: Web | None = None, **context: Any
) -> HTMLResponse:
    html = ENV.get_template(name).render(request=request, web=web, **context)
    return HTMLResponse(html, status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        web = current(request)
    except NeedSignIn:
        web = None
    return render(request, "error.html", status, web=web, message=message, code=status)


def state_label(svc: Services, state: str, village_kind: str | None = None) -> str:
    if state in STATE_LABELS:
        return STATE_LABELS[state]
    for spec in svc.catalog.specs.values():
        if state in spec.steps and spec.steps[state].label:
            return in_village_titles(spec.steps[state].label or state, village_kind)
    return state


def row(svc: Services, session, req: LetterRequest) -> dict[str, Any]:
    spec = svc.catalog.pinned(session, req)
    first = next(iter(req.subjects.values()), "")
    name = session.scalar(select(Resident.name).where(Resident.nik == first)) or ""
    village = session.get(Village, req.village_code)
    return {
        "id": req.id,
        "title": spec.title,
        "state": req.state,
        "state_label": in_village_titles(
            (spec.steps[req.state].label if req.state in spec.steps else None)
            or STATE_LABELS.get(req.state, req.state),
            village.kind if village else None,
        ),
        "name": name,
        "updated_at": req.updated_at,
        "overdue": queues.is_overdue(req) and req.state not in ("issued", "rejected", "cancelled"),
        "version": req.version,
        "channel": req.channel,  # "warga": a resident's online request (marked in lists)
    }


# --------------------------------------------------------------------------- operator
