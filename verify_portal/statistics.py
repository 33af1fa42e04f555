"""Open statistics (/statistik, /statistik.csv, /statistik.json): letters issued per kecamatan,
village, letter type, month and channel, and the service times. The figures and their
disclosure rule come from engine.letters.statistics; this face parses the filters, counts the
request against the public rate limit, and draws the charts as SVG on the server (no script)."""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from engine import regions
from engine.errors import InvalidInput
from engine.http_status import http_status
from engine.letters.statistics import (
    CACHE_SECONDS,
    CSV_COLUMNS,
    MONTHS,
    RULE,
    Row,
    Statistics,
    StatisticsCache,
    as_dict,
    csv_rows,
    figures,
    parse_filters,
    wib_time,
)
from engine.ratelimit import Limit
from verify_portal.common import _client, _portal, _templates, _too_many, router

# Figures are recomputed at most every CACHE_SECONDS, so a browser or proxy may keep them a minute.
_HEADERS = {"Cache-Control": "public, max-age=60"}
_state_lock = threading.Lock()


@dataclass
class _StatsState:
    limit: Limit
    cache: StatisticsCache


def _state(request: Request) -> _StatsState:
    app_state = request.app.state
    found = getattr(app_state, "statistik", None)
    if found is None:
        with _state_lock:
            found = getattr(app_state, "statistik", None)
            if found is None:
                per_minute = app_state.services.settings.rate_v_per_minute
                found = _StatsState(Limit("statistik", per_minute, 60), StatisticsCache())
                app_state.statistik = found
    return found


def _allowed(request: Request) -> bool:
    """Counted like the QR page: buffered per process, shared through the database."""
    portal, limit = _portal(request), _state(request).limit
    key = portal.counter.key(limit, _client(request))
    if portal.counter.refused_already(limit, key):
        return False
    with portal.reader.begin() as conn:
        return portal.counter.count(conn, limit, key, None)


def _figures(request: Request, year: int, district: str | None) -> Statistics:
    services = request.app.state.services
    titles = {wid: spec.title for wid, spec in services.catalog.specs.items()}
    engine = services.factory.kw["bind"]

    def run() -> Statistics:
        return figures(engine, year, district, titles)

    return _state(request).cache.get(year, district, run)


def _answer(request: Request, tahun: str | None, kecamatan: str | None, kind: str):
    """(figures, None) or (None, the refusal to send)."""
    if not _allowed(request):
        return None, _too_many(kind == "json")
    try:
        year, district = parse_filters(tahun, kecamatan)
    except InvalidInput as e:
        status = http_status(e)
        if kind == "json":
            return None, JSONResponse({"detail": str(e), "errors": e.errors}, status)
        html = _templates.get_template("message.html").render(
            title="Pilihan tidak dikenal", text=f"{e} Buka /statistik untuk memilih lagi."
        )
        return None, HTMLResponse(html, status_code=status)
    return _figures(request, year, district), None


# --------------------------------------------------------------------------- charts (SVG)

CHART_WIDTH = 400


def month_chart(rows: list[Row]) -> dict[str, Any]:
    """Vertical bars, one per month; a suppressed month has no bar, only its "<5"."""
    top = max((r.figure.value or 0 for r in rows), default=0) or 1
    height, base, step = 220, 190, CHART_WIDTH / len(rows)
    bars = []
    for i, r in enumerate(rows):
        h = round((r.figure.value or 0) / top * 160, 1)
        bars.append(
            {
                "x": round(i * step + step * 0.15, 1),
                "w": round(step * 0.7, 1),
                "y": round(base - h, 1),
                "h": h,
                "cx": round(i * step + step / 2, 1),
                "label": MONTHS[int(r.key) - 1][:3],
                "display": r.figure.display,
            }
        )
    return {"width": CHART_WIDTH, "height": height, "base": base, "bars": bars}


def bar_chart(rows: list[Row]) -> dict[str, Any]:
    """Horizontal bars, the label above each bar so it stays readable on a narrow phone."""
    top = max((r.figure.value or 0 for r in rows), default=0) or 1
    row_h, bar_w = 38, CHART_WIDTH - 60
    bars = [
        {
            "y": i * row_h,
            "w": round((r.figure.value or 0) / top * bar_w, 1),
            "label": r.label,
            "display": r.figure.display,
        }
        for i, r in enumerate(rows)
    ]
    return {"width": CHART_WIDTH, "height": max(row_h, len(rows) * row_h), "bars": bars}


def _page_context(stats: Statistics, query: str) -> dict[str, Any]:
    groups: dict[str, list[Row]] = {}
    for row in stats.by_village:
        groups.setdefault(row.group, []).append(row)
    names = {d.code: d.name for d in regions.districts()}
    return {
        "s": stats,
        "query": query,
        "rule": RULE,
        "updated": wib_time(stats.computed_at),
        "cache_minutes": CACHE_SECONDS // 60,
        "districts": regions.districts(),
        "village_groups": [(code, names.get(code, code), rows) for code, rows in groups.items()],
        "charts": {
            "month": month_chart(stats.by_month),
            "district": bar_chart(stats.by_district),
            "type": bar_chart(stats.by_type),
            "channel": bar_chart(stats.by_channel),
            "village": bar_chart(stats.by_village) if stats.district_code else None,
        },
    }


def _query(stats: Statistics) -> str:
    q = f"tahun={stats.year}"
    return q + (f"&kecamatan={stats.district_code}" if stats.district_code else "")


# --------------------------------------------------------------------------- routes


@router.get("/statistik", response_class=HTMLResponse, include_in_schema=False)
def statistik_page(
    request: Request, tahun: str | None = None, kecamatan: str | None = None
) -> Response:
    stats, refusal = _answer(request, tahun, kecamatan, "html")
    if refusal is not None:
        return refusal
    html = _templates.get_template("statistik.html").render(**_page_context(stats, _query(stats)))
    return HTMLResponse(html, headers=_HEADERS)


@router.get("/statistik.json", tags=["public"])
def statistik_json(
    request: Request, tahun: str | None = None, kecamatan: str | None = None
) -> Response:
    """Letters issued per month, kecamatan, village, type and channel, and the service times;
    counts 1-4 shown as "<5" (count null), others rounded to the nearest 5."""
    stats, refusal = _answer(request, tahun, kecamatan, "json")
    if refusal is not None:
        return refusal
    return JSONResponse(as_dict(stats), headers=_HEADERS)


@router.get("/statistik.csv", include_in_schema=False)
def statistik_csv(
    request: Request, tahun: str | None = None, kecamatan: str | None = None
) -> Response:
    stats, refusal = _answer(request, tahun, kecamatan, "csv")
    if refusal is not None:
        return refusal
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(stats))
    name = f"statistik-surat-{stats.year}" + (
        f"-{stats.district_code}" if stats.district_code else ""
    )
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**_HEADERS, "Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


# Compiled when the portal is loaded (process start), not in the first visitor's request: the
# page's templates take longer to compile than the figures take to read.
for _name in ("statistik.html", "statistik_macros.html"):
    _templates.get_template(_name)
