"""Open statistics of the letters issued (the public /statistik page, its CSV and JSON).

What is counted: every letter issued (signed) in the chosen year, in WIB, whatever its status
since (a revoked or replaced letter was still issued), per kecamatan, village, letter type, month
and channel (requests.channel: "loket" = started by staff at the counter, "warga" = started by a
resident online); and the service times: from the request's creation to the signature
(letters.issued_at - requests.created_at) and from the signature to the hand-over
(letters.handed_over_at - letters.issued_at, letters handed over only), as median and 90th
percentile (ranks interpolated as PostgreSQL's percentile_cont, over histograms of 0.1-hour
buckets up to 7 days and 5% buckets beyond: see statistics_rollup).

No personal data leaves this module: only counts and durations, never a NIK, name or number.

Disclosure control (docs/statistics.md), the same for the page, the CSV and the JSON:
1. every count, cells and totals alike: 0 is shown as 0; 1-4 as "<5"; 5 or more rounded to the
   nearest multiple of 5 (totals rounded from the exact count, never summed from rounded cells);
2. secondary suppression (`protect`): every table whose cells add up to a published total
   (each breakdown to the grand total, each kecamatan's villages to that kecamatan) is checked
   as anyone could check it, from the interval each published figure allows (a total's
   interval also narrowed by every table that adds up to it); where a "<5" cell would come out
   at one value, the smallest shown cell of that table is hidden too ("≥5"), or the total when
   there is none, until none does.
Across filters (the regency's month minus the other kecamatan's pages) only the rounding
protects: each shown figure is off by up to 2, so such a difference is off by more than the
1-4 a hidden cell can be. Durations are published only when at least 5 letters are behind them.

Speed: the counts and histograms come from a rollup kept in the database for every letter
before a watermark, plus the few later letters read on demand (statistics_rollup: exact and
current whatever the rollup's age); `figures` first moves the rollup forward by a bounded step.
The figures are also kept per app process (`StatisticsCache`, stale-while-revalidate after
CACHE_SECONDS); the page says when they were computed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from engine import regions
from engine.dates import BULAN, WIB
from engine.errors import InvalidInput
from engine.letters import statistics_rollup as rollup
from engine.storage.db import READ_ONLY
from engine.storage.models import Letter
from engine.timeutil import now_utc

log = logging.getLogger(__name__)
SUPPRESS_BELOW = 5
ROUND_TO = 5
CACHE_SECONDS = 300
MONTHS = BULAN  # month names as letters print them (engine.dates)
CHANNELS = {"loket": "Di loket (petugas)", "warga": "Mandiri (warga)"}
SUPPRESSED = "<5"
RULE = (
    'Angka 1 sampai 4 ditampilkan sebagai "<5"; angka 5 ke atas dibulatkan ke kelipatan 5 '
    "terdekat, termasuk jumlah total, sehingga jumlah baris bisa berbeda sedikit dari total. "
    'Bila angka "<5" masih dapat dihitung dari selisih total, angka lain di tabel yang sama '
    'ikut disembunyikan ("≥5").'
)


# --------------------------------------------------------------------------- published figures


@dataclass(frozen=True)
class Figure:
    """A published count: ``value`` is None when suppressed (1-4), else the rounded count."""

    value: int | None
    display: str

    @property
    def suppressed(self) -> bool:
        return self.value is None


def publish(count: int) -> Figure:
    """The disclosure rule for one exact count (see the module doc)."""
    if count < 0:
        raise ValueError("negative count")
    if count == 0:
        return Figure(0, "0")
    if count < SUPPRESS_BELOW:
        return Figure(None, SUPPRESSED)
    rounded = (count + ROUND_TO // 2) // ROUND_TO * ROUND_TO
    return Figure(rounded, f"{rounded:,}".replace(",", "."))


HIDDEN_MORE = Figure(None, "≥5")  # hidden so that a "<5" beside it cannot be worked out
HIDDEN_ZERO = Figure(None, SUPPRESSED)  # a 0 shown as "<5" in a table whose total is under 5
Interval = tuple[float, float]
Table = tuple[str, list[str]]  # the key of a total, the keys of the cells that add up to it


def _shown_interval(f: Figure) -> Interval:
    """Where the exact count of a published figure lies, as anyone can tell from it."""
    if f.value is not None:  # rounded to the nearest 5; under 5 it would read "<5"
        if f.value == 0:
            return (0, 0)
        return (max(SUPPRESS_BELOW, f.value - ROUND_TO // 2), f.value + ROUND_TO // 2)
    if f is HIDDEN_MORE:
        return (SUPPRESS_BELOW, math.inf)
    return (0 if f is HIDDEN_ZERO else 1, SUPPRESS_BELOW - 1)


def _total_intervals(figs: Mapping[str, Figure], tables: list[Table]) -> dict[str, Interval]:
    """Each total's interval, narrowed by the sums of the tables that add up to it (twice, so a
    kecamatan narrowed by its villages narrows the grand total in turn)."""
    known = {key: _shown_interval(f) for key, f in figs.items()}
    for _ in range(2):
        for total, cells in tables:
            lo = sum(known[c][0] for c in cells)
            hi = sum(known[c][1] for c in cells)
            known[total] = (max(known[total][0], lo), min(known[total][1], hi))
    return known


def _pinned(cells: list[str], total: Interval, known: Mapping[str, Interval], hidden) -> bool:
    """True if some hidden cell's exact count follows from the others and the total."""
    lo_sum = sum(known[c][0] for c in cells)
    hi_sum = sum(known[c][1] for c in cells)
    for c in cells:
        if c not in hidden:
            continue
        c_lo, c_hi = known[c]
        lo = max(c_lo, total[0] - (hi_sum - c_hi))
        hi = min(c_hi, total[1] - (lo_sum - c_lo))
        if lo >= hi:
            return True
    return False


def protect(exact: Mapping[str, int], tables: list[Table]) -> dict[str, Figure]:
    """The published figure of every count: `publish`, then secondary suppression. For each
    table (cells adding up to a total, every interval narrowed as above) where a hidden cell
    could be worked out exactly, the smallest shown cell of that table is hidden too ("≥5"),
    or the table's total when no cell is left to hide (or, when that total is itself under 5,
    the table's zeros read "<5" too), until no hidden cell can be."""
    figs = {key: publish(n) for key, n in exact.items()}
    for _ in range(len(figs) + 1):
        known = _total_intervals(figs, tables)
        hidden = {key for key, f in figs.items() if f.value is None}
        for total, cells in tables:
            pinned_total = total in hidden and known[total][0] >= known[total][1]
            if pinned_total or _pinned(cells, known[total], known, hidden):
                shown = [c for c in cells if figs[c].value]
                target = min(shown, key=lambda c: exact[c]) if shown else total
                if figs[target].value is None:  # a total under 5: its zeros read "<5" too
                    zeros = [c for c in cells if figs[c].value == 0]
                    for c in zeros:
                        figs[c] = HIDDEN_ZERO
                    if not zeros:
                        continue  # as many cells as letters, each 1: cannot be helped
                else:
                    figs[target] = HIDDEN_MORE
                break
        else:
            return figs
    return figs


@dataclass(frozen=True)
class Row:
    key: str  # month number, kecamatan/village code, workflow id or channel
    label: str
    figure: Figure
    group: str = ""  # a village's kecamatan code


@dataclass(frozen=True)
class Duration:
    """Median and 90th percentile in hours; None when fewer than 5 letters are behind them."""

    letters: Figure
    median_hours: float | None
    p90_hours: float | None


@dataclass(frozen=True)
class Statistics:
    year: int
    district_code: str | None
    district_name: str | None
    years: list[int]
    total: Figure
    by_month: list[Row]
    by_district: list[Row]
    by_village: list[Row]
    by_type: list[Row]
    by_channel: list[Row]
    to_signature: Duration
    to_handover: Duration
    computed_at: datetime = field(default_factory=now_utc)
    settled_before: datetime | None = None  # the rollup's watermark (statistics_rollup)
    refreshed_at: datetime | None = None  # when the rollup was last refreshed


# --------------------------------------------------------------------------- input


def parse_filters(year: str | None, district: str | None, *, today: datetime | None = None):
    """(year, kecamatan code or None) from the query string; the current WIB year by default."""
    now = (today or now_utc()).astimezone(WIB)
    if year is None or not year.strip():
        chosen = now.year
    else:
        if not year.strip().isdigit() or not 2000 <= int(year) <= now.year + 1:
            raise InvalidInput("Tahun tidak dikenal.", {"tahun": "Pilih tahun dari daftar."})
        chosen = int(year)
    code = (district or "").strip() or None
    if code is not None and code not in {d.code for d in regions.districts()}:
        raise InvalidInput("Kecamatan tidak dikenal.", {"kecamatan": "Pilih dari daftar."})
    return chosen, code


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The WIB calendar year as UTC instants [start, end)."""
    start = datetime(year, 1, 1, tzinfo=WIB).astimezone(UTC)
    return start, datetime(year + 1, 1, 1, tzinfo=WIB).astimezone(UTC)


# --------------------------------------------------------------------------- queries


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
    if not ordered:
        raise ValueError("no values")
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _duration(histogram: Counter[int]) -> Duration:
    """Published from a histogram (statistics_rollup): none under 5 letters."""
    n = sum(histogram.values())
    if n < SUPPRESS_BELOW:
        return Duration(publish(n), None, None)
    median = rollup.histogram_percentile(histogram, 0.5) or 0.0
    p90 = rollup.histogram_percentile(histogram, 0.9) or 0.0
    return Duration(publish(n), round(median / 3600, 1), round(p90 / 3600, 1))


def available_years(conn: Connection, today: datetime | None = None) -> list[int]:
    """From the first year with a letter to the current year (WIB), newest first."""
    first = conn.execute(select(func.min(Letter.issued_at))).scalar_one_or_none()
    this_year = (today or now_utc()).astimezone(WIB).year
    first = rollup.utc(first)
    if first is None:
        return [this_year]
    start = min(first.astimezone(WIB).year, this_year)
    return list(range(this_year, start - 1, -1))


# --------------------------------------------------------------------------- assembly


def compute(
    conn: Connection,
    year: int,
    district_code: str | None,
    titles: Mapping[str, str],
    *,
    today: datetime | None = None,
) -> Statistics:
    """The published figures for one year (and optionally one kecamatan). ``titles``: workflow
    id -> letter title, for the types in force (types found only in old letters keep their id)."""
    counts = rollup.read_counts(conn, year, district_code, year_bounds(year))
    by = dict(counts.by)
    by["district"] = Counter()
    for village, n in by["village"].items():
        by["district"][village.rsplit(".", 1)[0]] += n
    districts = [d for d in regions.districts() if district_code in (None, d.code)]
    villages = [v for v in regions.villages() if district_code in (None, v.district_code)]
    type_labels = dict(titles)
    for workflow in sorted(by["type"]):
        type_labels.setdefault(workflow, workflow)
    types = sorted(type_labels.items(), key=lambda kv: (-by["type"].get(kv[0], 0), kv[1]))
    channels = list(CHANNELS.items()) + [(c, c) for c in sorted(by["channel"]) if c not in CHANNELS]
    labels = {
        "month": [(str(i + 1), m) for i, m in enumerate(MONTHS)],
        "district": [(d.code, d.name) for d in districts],
        "village": [(v.code, f"{v.name} ({v.kind})") for v in villages],
        "type": types,
        "channel": channels,
    }
    figs = protect(*_tables(by, labels, counts.total))

    def rows(name: str) -> list[Row]:
        group = (lambda code: code.rsplit(".", 1)[0]) if name == "village" else (lambda _: "")
        return [Row(k, label, figs[f"{name}:{k}"], group(k)) for k, label in labels[name]]

    return Statistics(
        year=year,
        district_code=district_code,
        district_name=districts[0].name if district_code else None,
        years=available_years(conn, today),
        total=figs["total"],
        by_month=rows("month"),
        by_district=rows("district"),
        by_village=rows("village"),
        by_type=rows("type"),
        by_channel=rows("channel"),
        to_signature=_duration(counts.histograms["signature"]),
        to_handover=_duration(counts.histograms["handover"]),
        settled_before=counts.settled_before,
        refreshed_at=counts.refreshed_at,
    )


def figures(
    engine: Engine,
    year: int,
    district_code: str | None,
    titles: Mapping[str, str],
    *,
    today: datetime | None = None,
) -> Statistics:
    """What /statistik shows: the figures read from one snapshot, then, if the rollup's last
    refresh is over REFRESH_SECONDS old and no other refresh runs, the rollup moved forward by
    one bounded step (statistics_rollup). The figures are exact without that step too: it
    only keeps the part read on demand small."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn = conn.execution_options(**{READ_ONLY: True})
        with conn.begin():
            stats = compute(conn, year, district_code, titles, today=today)
    due = stats.refreshed_at is None or (
        (now_utc() - stats.refreshed_at).total_seconds() >= rollup.REFRESH_SECONDS
    )
    if due:
        try:
            with engine.begin() as conn:
                rollup.refresh(conn)
        except SQLAlchemyError:  # e.g. a lock timeout: the next computation tries again
            log.exception("statistics rollup refresh failed")
    return stats


def _tables(
    by: Mapping[str, Counter[str]], labels: Mapping[str, list[tuple[str, str]]], total: int
) -> tuple[dict[str, int], list[Table]]:
    """Exact counts by key ("total", "month:1", "district:33.11.01", "village:...", ...) and the
    tables that add up: each breakdown to the grand total, each kecamatan's villages to it."""
    exact = {"total": total}
    tables: list[Table] = []
    for name, items in labels.items():
        for key, _ in items:
            exact[f"{name}:{key}"] = by[name].get(key, 0)
        if name != "village":
            tables.append(("total", [f"{name}:{key}" for key, _ in items]))
    groups: dict[str, list[str]] = {}
    for key, _ in labels["village"]:
        groups.setdefault(key.rsplit(".", 1)[0], []).append(f"village:{key}")
    tables += [(f"district:{code}", keys) for code, keys in groups.items()]
    return exact, tables


class StatisticsCache:
    """Computed figures per (year, kecamatan), kept in this process. Fresh for ``ttl`` seconds;
    after that the stale figures are still answered at once while one background thread
    computes new ones (stale-while-revalidate), so only the very first request for a key in a
    process waits for the computation. A key being computed is computed once: other requests
    for it wait for that result. Each page says when its figures were computed."""

    def __init__(
        self,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        *,
        background: bool = True,
    ) -> None:
        self.ttl, self.clock, self.background = ttl, clock, background
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str | None], tuple[float, Statistics]] = {}
        self._computing: dict[tuple[int, str | None], threading.Lock] = {}
        self._refreshing: set[tuple[int, str | None]] = set()

    def get(
        self, year: int, district_code: str | None, compute_fn: Callable[[], Statistics]
    ) -> Statistics:
        key = (year, district_code)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            if self.clock() - entry[0] < self.ttl:
                return entry[1]
            if self.background and self.ttl > 0:
                self._refresh_later(key, compute_fn)
                return entry[1]
        return self._compute(key, compute_fn)

    def _compute(
        self, key: tuple[int, str | None], compute_fn: Callable[[], Statistics]
    ) -> Statistics:
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
            started = self.clock()
        with key_lock:
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None and entry[0] >= started:  # computed while we waited
                return entry[1]
            stats = compute_fn()
            with self._lock:
                if len(self._entries) >= 256:  # years x kecamatan is small; stay bounded anyway
                    self._entries.clear()
                self._entries[key] = (self.clock(), stats)
            return stats

    def _refresh_later(
        self, key: tuple[int, str | None], compute_fn: Callable[[], Statistics]
    ) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def run() -> None:
            try:
                self._compute(key, compute_fn)
            except Exception:  # noqa: BLE001 - the stale figures stay; the next request retries
                log.exception("statistics refresh failed for %s", key)
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=run, daemon=True, name="statistik-refresh").start()


# --------------------------------------------------------------------------- downloads


def _figure(f: Figure) -> dict[str, Any]:
    return {"count": f.value, "display": f.display}


def _duration_dict(d: Duration) -> dict[str, Any]:
    return {"letters": _figure(d.letters), "median_hours": d.median_hours, "p90_hours": d.p90_hours}


def as_dict(stats: Statistics) -> dict[str, Any]:
    """The JSON download: the same published (suppressed, rounded) figures as the page."""

    def rows(items: list[Row], key: str, group: str | None = None) -> list[dict[str, Any]]:
        out = []
        for r in items:
            item = {key: int(r.key) if key == "month" else r.key, "label": r.label}
            if group:
                item[group] = r.group
            out.append({**item, **_figure(r.figure)})
        return out

    return {
        "year": stats.year,
        "district_code": stats.district_code,
        "district": stats.district_name,
        "computed_at": stats.computed_at.isoformat(timespec="seconds"),
        "rule": RULE,
        "total": _figure(stats.total),
        "by_month": rows(stats.by_month, "month"),
        "by_district": rows(stats.by_district, "code"),
        "by_village": rows(stats.by_village, "code", "district_code"),
        "by_type": rows(stats.by_type, "workflow_id"),
        "by_channel": rows(stats.by_channel, "channel"),
        "time_to_signature": _duration_dict(stats.to_signature),
        "time_to_handover": _duration_dict(stats.to_handover),
    }


CSV_COLUMNS = ("tahun", "kecamatan", "dimensi", "kode", "nama", "nilai")


def csv_rows(stats: Statistics) -> list[tuple[Any, ...]]:
    """The CSV download, one published figure per line (the same figures as the page)."""
    head = (stats.year, stats.district_code or "")
    out: list[tuple[Any, ...]] = [(*head, "total", "", "Jumlah surat", stats.total.display)]
    for name, items in (
        ("bulan", stats.by_month),
        ("kecamatan", stats.by_district),
        ("desa_kelurahan", stats.by_village),
        ("jenis_surat", stats.by_type),
        ("saluran", stats.by_channel),
    ):
        out += [(*head, name, r.key, r.label, r.figure.display) for r in items]
    for name, d in (("jam_sampai_tanda_tangan", stats.to_signature),
                    ("jam_sampai_diserahkan", stats.to_handover)):  # fmt: skip
        out.append((*head, name, "surat", "Jumlah surat", d.letters.display))
        for code, value in (("median", d.median_hours), ("p90", d.p90_hours)):
            out.append((*head, name, code, code, "" if value is None else value))
    return out


def wib_time(moment: datetime) -> str:
    """HH.MM WIB, as the page prints when the figures were computed."""
    return moment.astimezone(WIB).strftime("%H.%M") + " WIB"
