"""Staff pages: The archive of issued letters and its CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, StreamingResponse

from engine.dates import WIB
from engine.errors import InvalidInput
from engine.letters import archive
from engine.storage.db import transaction
from staff_app.deps import Svc, WebDep, nav, router
from staff_app.i18n import _
from staff_app.rendering import render
from staff_app.session import (
    PREFIX,
    Web,
)

_ARCHIVE_PARAMS = {
    "number": "nomor",
    "name": "nama",
    "nik": "nik",
    "workflow_id": "jenis",
    "date_from": "dari",
    "date_to": "sampai",
    "cursor": "setelah",
}


def _archive_query(web: Web, params: dict[str, str]) -> tuple[archive.ArchiveQuery, dict]:
    """The query, checked (archive.check: InvalidInput keyed by this page's parameters)."""
    bad_dates: dict[str, str] = {}

    def day(name: str) -> date | None:
        try:
            return date.fromisoformat(params.get(name, "")) if params.get(name) else None
        except ValueError:
            bad_dates[name] = _("Not a date; use the date picker (YYYY-MM-DD).")
            return None

    query = archive.ArchiveQuery(
        village_code=web.actor.village_code,
        number=params.get("nomor", ""),
        name=params.get("nama", ""),
        nik=params.get("nik", ""),
        workflow_id=params.get("jenis", ""),
        date_from=day("dari"),
        date_to=day("sampai"),
    )
    keep = {
        k: v
        for k, v in params.items()
        if k in ("nomor", "nama", "nik", "jenis", "dari", "sampai") and v
    }
    errors = dict(bad_dates)
    try:
        archive.check(query)
        archive.check_cursor(params.get("setelah"))
    except InvalidInput as exc:
        errors.update({_ARCHIVE_PARAMS.get(k, k): v for k, v in exc.errors.items()})
    if errors:
        raise InvalidInput(_("The archive search is not right yet."), errors)
    return query, keep


@router.get("/arsip")
def archive_page(request: Request, web: WebDep, svc: Svc) -> HTMLResponse:
    params = dict(request.query_params)
    try:
        query, keep = _archive_query(web, params)
    except InvalidInput as exc:
        with transaction(svc.factory) as session:
            return render(
                request,
                "archive.html",
                422,
                web=web,
                nav=nav(session, svc, web),
                page=archive.ArchivePage([], None),
                params={k: v for k, v in params.items() if k in _ARCHIVE_PARAMS.values()},
                specs=list(svc.catalog.specs.values()),
                next_url=None,
                csv_url=None,
                first=True,
                error=str(exc),
                errors=exc.errors,
                status_label=archive.status_label,
            )
    with transaction(svc.factory) as session:
        page = archive.search(session, query, after=params.get("setelah"))
        return render(
            request,
            "archive.html",
            web=web,
            nav=nav(session, svc, web),
            page=page,
            params=keep,
            specs=list(svc.catalog.specs.values()),
            next_url=f"?{urlencode({**keep, 'setelah': page.next_cursor})}"
            if page.next_cursor
            else None,
            csv_url=f"{PREFIX}/arsip.csv?{urlencode(keep)}",
            first=not params.get("setelah"),
            errors={},
            status_label=archive.status_label,
        )


@router.get("/arsip.csv")
def archive_csv(request: Request, web: WebDep, svc: Svc) -> StreamingResponse:
    # Checked before the first byte is sent: a refused query is a 422 page, never a cut-off file.
    query, _keep = _archive_query(web, dict(request.query_params))

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["nomor", "jenis", "nama", "nik", "desa", "terbit", "status", "diserahkan"])
        with transaction(svc.factory) as session:
            for r in archive.export(session, query):
                writer.writerow(
                    archive.csv_cell(cell)
                    for cell in [
                        r.number,
                        r.title,
                        r.subject_name,
                        r.subject_nik,
                        r.village_code,
                        r.issued_at.astimezone(WIB).isoformat(),
                        archive.status_label(r.status),
                        r.handed_over_at.astimezone(WIB).isoformat() if r.handed_over_at else "",
                    ]
                )
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="arsip-surat.csv"'},
    )


# --------------------------------------------------------------------------- acting heads
