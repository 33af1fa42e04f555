"""The counts behind /statistik: a rollup kept in the database plus the latest letters on demand.

Invariant (one row `stat_refresh` "letters", migration 0018): with S = its ``settled_before``,
the rollup holds exactly
  - every letter issued before S: in `stat_letters` (per WIB year and village, by month, by
    type and by channel: the page's breakdowns, a few thousand rows a year) and its
    request -> signature time in `stat_durations` ("signature");
  - every hand-over recorded before S: its signature -> hand-over time in `stat_durations`
    ("handover", under the letter's year of issue and kecamatan).
The figures (`read_counts`) are the rollup plus, read on demand, the letters issued at or after
S and the hand-overs recorded at or after S: exact and current, whatever the rollup's age. S is
NULL until the first refresh (then everything is read on demand, as before 0018).

`refresh` moves S forward from S_old to S_new and adds exactly the letters issued and the
hand-overs recorded in [S_old, S_new), in the same transaction as the new S, so each is counted
once. S_new is never later than now - SETTLE_MARGIN: a letter's issued_at and a hand-over's
handed_over_at are taken by the application before its transaction commits, so a commit can
carry a timestamp older than commits already seen; the margin (15 minutes; an issuing
transaction, signature and timestamp included, takes seconds) keeps S behind every transaction
still open, and what commits late within it is read on demand until a later refresh adds it.
Letters are never deleted, issued_at never changes and handed_over_at is set once, so the
window is all a refresh needs (no hooks in issuing or hand-over). `suratdesa stats refresh
--rebuild` recounts everything, should that assumption ever be broken (a restored backup).

Concurrency: one refresh at a time (PostgreSQL: a transaction-level advisory lock, tried
without waiting by a page, waited for by the command; SQLite: its single writer). The reader
takes S and the rollup from one snapshot (PostgreSQL REPEATABLE READ; SQLite a read
transaction in WAL), so a refresh committing meanwhile is seen entirely or not at all.

Service times are kept as histograms: 6-minute buckets (0.1 h) up to 7 days, then buckets 5%
wide up to a year, and one last bucket beyond. Median and 90th percentile are read from the
histogram (ranks interpolated as percentile_cont, each value taken as its bucket's middle):
within 3 minutes of the exact figure below 7 days, within 2.5% above.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, Integer, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.dates import WIB
from engine.storage.models import (
    Letter,
    LetterRequest,
    StatDuration,
    StatLetters,
    StatRefresh,
)
from engine.timeutil import now_utc

STATE = "letters"
SETTLE_MARGIN = timedelta(minutes=15)
REFRESH_SECONDS = 60  # a page computing its figures refreshes the rollup if older than this
PAGE_STEP_LETTERS = 5_000  # at most this many letters added by the refresh a page runs
COMMAND_STEP_LETTERS = 200_000  # per transaction of `suratdesa stats refresh`
ADVISORY_LOCK = 0x5D57_A71C  # pg_advisory_xact_lock key of the refresh
MEASURES = ("signature", "handover")

STEP_SECONDS = 360  # 0.1 hour
LINEAR_BUCKETS = 7 * 24 * 10  # 0.1 h buckets up to 7 days
LOG_RATIO = 1.05
LOG_BUCKETS = math.ceil(math.log(365 / 7) / math.log(LOG_RATIO))  # 7 days to a year
LAST_BUCKET = LINEAR_BUCKETS + LOG_BUCKETS


# --------------------------------------------------------------------------- buckets


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration (negative clock skew counts as 0)."""
    seconds = max(0.0, seconds)
    if seconds < LINEAR_BUCKETS * STEP_SECONDS:
        return int(seconds // STEP_SECONDS)
    steps = int(math.log(seconds / (LINEAR_BUCKETS * STEP_SECONDS)) / math.log(LOG_RATIO))
    return min(LAST_BUCKET, LINEAR_BUCKETS + steps)


def bucket_value(bucket: int) -> float:
    """The duration a bucket stands for: its middle (geometric middle for the 5% buckets)."""
    if bucket < LINEAR_BUCKETS:
        return (bucket + 0.5) * STEP_SECONDS
    start = LINEAR_BUCKETS * STEP_SECONDS * LOG_RATIO ** (bucket - LINEAR_BUCKETS)
    return start * math.sqrt(LOG_RATIO)


def histogram_percentile(histogram: Counter[int], q: float) -> float | None:
    """percentile_cont's rank interpolation over a histogram; None when it is empty."""
    n = sum(histogram.values())
    if n == 0:
        return None
    pos = q * (n - 1)
    wanted = sorted({math.floor(pos), math.ceil(pos)})
    values: dict[int, float] = {}
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        for rank in wanted:
            if rank not in values and rank < seen:
                values[rank] = bucket_value(bucket)
        if len(values) == len(wanted):
            break
    lo, hi = values[wanted[0]], values[wanted[-1]]
    return lo + (hi - lo) * (pos - math.floor(pos))


# --------------------------------------------------------------------------- SQL pieces


def _wib(conn: Connection, part: str, column):
    if conn.dialect.name == "postgresql":
        return cast(func.extract(part, func.timezone("Asia/Jakarta", column)), Integer)
    # SQLite keeps UTC text; WIB is UTC+7 all year (no daylight saving).
    return cast(func.strftime("%Y" if part == "year" else "%m", column, "+7 hours"), Integer)


def _between(column, start: datetime | None, end: datetime | None) -> list:
    clauses = []
    if start is not None:
        clauses.append(column >= start)
    if end is not None:
        clauses.append(column < end)
    return clauses


def _in_district(district_code: str | None) -> list:
    if district_code is None:
        return []
    return [Letter.village_code.startswith(district_code + ".", autoescape=True)]


def _upsert(conn: Connection, table, keys: list[str], rows: list[dict]) -> None:
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={"letters": table.letters + stmt.excluded.letters}
    )
    for i in range(0, len(rows), 5_000):
        conn.execute(stmt, rows[i : i + 5_000])


def _district(village_code: str) -> str:
    return village_code.rsplit(".", 1)[0]


def _year(moment: datetime) -> int:
    return moment.astimezone(WIB).year


# --------------------------------------------------------------------------- refresh


@dataclass(frozen=True)
class RefreshResult:
    ran: bool  # False: another refresh holds the lock, or the last one is recent enough
    letters: int = 0  # letters added to the rollup
    handovers: int = 0  # hand-overs added
    settled_before: datetime | None = None
    caught_up: bool = False  # S reached now - SETTLE_MARGIN


def _locked(conn: Connection, wait: bool) -> bool:
    if conn.dialect.name != "postgresql":
        return True  # SQLite: this write transaction (BEGIN IMMEDIATE) is the only writer
    if wait:
        conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK)))
        return True
    return bool(conn.scalar(select(func.pg_try_advisory_xact_lock(ADVISORY_LOCK))))


def _next_horizon(
    conn: Connection, settled: datetime | None, horizon: datetime, max_letters: int | None
) -> datetime:
    """How far this refresh goes: the horizon, or sooner so that at most max_letters letters
    are added (always past `settled`, so every refresh makes progress)."""
    if max_letters is None:
        return horizon
    window = _between(Letter.issued_at, settled, horizon)
    stop = conn.scalar(
        select(Letter.issued_at)
        .where(*window)
        .order_by(Letter.issued_at)
        .offset(max_letters)
        .limit(1)
    )
    if stop is None:
        return horizon
    if settled is not None and stop <= settled:  # more than max_letters at one instant
        stop = conn.scalar(select(func.min(Letter.issued_at)).where(Letter.issued_at > settled))
    return horizon if stop is None else min(stop, horizon)


def refresh(
    conn: Connection,
    *,
    now: datetime | None = None,
    max_letters: int | None = PAGE_STEP_LETTERS,
    older_than: float | None = REFRESH_SECONDS,
    wait: bool = False,
) -> RefreshResult:
    """Move the watermark forward in this (write) transaction; see the module doc. Skipped
    (``ran`` False) if another refresh holds the lock and ``wait`` is False, or if the last
    refresh is younger than ``older_than`` seconds."""
    if not _locked(conn, wait):
        return RefreshResult(False)
    now = now or now_utc()
    state = conn.execute(
        select(StatRefresh.settled_before, StatRefresh.refreshed_at).where(
            StatRefresh.name == STATE
        )
    ).one()
    settled, refreshed_at = state
    horizon = now - SETTLE_MARGIN
    recent = refreshed_at is not None and (now - refreshed_at).total_seconds() < (older_than or 0)
    if older_than is not None and recent:
        return RefreshResult(False, settled_before=settled)
    target = horizon if settled is not None and settled >= horizon else None
    if target is None:
        target = _next_horizon(conn, settled, horizon, max_letters)
    letters = _add_letters(conn, settled, target) if target != settled else 0
    handovers = _add_handovers(conn, settled, target) if target != settled else 0
    new_settled = max(target, settled) if settled is not None else target
    conn.execute(
        update(StatRefresh)
        .where(StatRefresh.name == STATE)
        .values(settled_before=new_settled, refreshed_at=now)
    )
    return RefreshResult(True, letters, handovers, new_settled, new_settled >= horizon)


def _add_letters(conn: Connection, start: datetime | None, end: datetime) -> int:
    """Count the letters issued in [start, end) into the rollup; how many."""
    window = _between(Letter.issued_at, start, end)
    year, month = _wib(conn, "year", Letter.issued_at), _wib(conn, "month", Letter.issued_at)
    channel = func.coalesce(LetterRequest.channel, "loket")
    grouped = conn.execute(
        select(year, month, Letter.village_code, Letter.workflow_id, channel, func.count())
        .join(LetterRequest, LetterRequest.id == Letter.request_id)
        .where(*window)
        .group_by(year, month, Letter.village_code, Letter.workflow_id, channel)
    ).all()
    by: Counter[tuple[int, str, str, str]] = Counter()
    for y, m, village, workflow, chan, n in grouped:
        for dimension, key in (("month", str(m)), ("type", workflow), ("channel", chan)):
            by[(y, village, dimension, key)] += n
    rows = [
        {"year": y, "village_code": v, "dimension": d, "key": k, "letters": n}
        for (y, v, d, k), n in by.items()
    ]
    _upsert(conn, StatLetters, ["year", "village_code", "dimension", "key"], rows)
    times = conn.execute(
        select(Letter.village_code, Letter.issued_at, LetterRequest.created_at)
        .join(LetterRequest, LetterRequest.id == Letter.request_id)
        .where(*window)
    )
    histogram: Counter[tuple[int, str, int]] = Counter()
    for village, issued_at, created_at in times:
        bucket = bucket_of((issued_at - created_at).total_seconds())
        histogram[(_year(issued_at), _district(village), bucket)] += 1
    _add_histogram(conn, "signature", histogram)
    return sum(row[-1] for row in grouped)


def _add_handovers(conn: Connection, start: datetime | None, end: datetime) -> int:
    """Count the hand-overs recorded in [start, end) into the rollup; how many."""
    times = conn.execute(
        select(Letter.village_code, Letter.issued_at, Letter.handed_over_at).where(
            Letter.handed_over_at.is_not(None), *_between(Letter.handed_over_at, start, end)
        )
    )
    histogram: Counter[tuple[int, str, int]] = Counter()
    for village, issued_at, handed_over_at in times:
        bucket = bucket_of((handed_over_at - issued_at).total_seconds())
        histogram[(_year(issued_at), _district(village), bucket)] += 1
    _add_histogram(conn, "handover", histogram)
    return sum(histogram.values())


def _add_histogram(conn: Connection, measure: str, counts: Counter[tuple[int, str, int]]) -> None:
    rows = [
        {"year": y, "district_code": d, "measure": measure, "bucket": b, "letters": n}
        for (y, d, b), n in counts.items()
    ]
    _upsert(conn, StatDuration, ["year", "district_code", "measure", "bucket"], rows)


def reset(conn: Connection) -> None:
    """Empty the rollup and its watermark (for `suratdesa stats refresh --rebuild`)."""
    _locked(conn, wait=True)
    conn.execute(delete(StatLetters))
    conn.execute(delete(StatDuration))
    conn.execute(
        update(StatRefresh)
        .where(StatRefresh.name == STATE)
        .values(settled_before=None, refreshed_at=None)
    )


# --------------------------------------------------------------------------- reading

Cell = tuple[str, str, int, str]  # village code, workflow id, month, channel
DIMENSIONS = ("month", "village", "type", "channel")


@dataclass
class Counts:
    """Exact letters per month, village, type and channel, and the service-time histograms,
    for one year (and kecamatan)."""

    by: dict[str, Counter[str]] = field(default_factory=lambda: {d: Counter() for d in DIMENSIONS})
    histograms: dict[str, Counter[int]] = field(
        default_factory=lambda: {m: Counter() for m in MEASURES}
    )
    settled_before: datetime | None = None
    refreshed_at: datetime | None = None

    def add_cells(self, cells: Iterable[tuple[Cell, int]]) -> None:
        for (village, workflow, month, channel), n in cells:
            self.by["month"][str(month)] += n
            self.by["village"][village] += n
            self.by["type"][workflow] += n
            self.by["channel"][channel] += n

    @property
    def total(self) -> int:
        return sum(self.by["channel"].values())


def settled_before(conn: Connection) -> datetime | None:
    return conn.scalar(select(StatRefresh.settled_before).where(StatRefresh.name == STATE))


def read_counts(
    conn: Connection, year: int, district_code: str | None, bounds: tuple[datetime, datetime]
) -> Counts:
    """Rollup + on-demand rest (see the module doc). Call in one snapshot (REPEATABLE READ on
    PostgreSQL, a read transaction on SQLite) so S and the rollup belong together."""
    state = conn.execute(
        select(StatRefresh.settled_before, StatRefresh.refreshed_at).where(
            StatRefresh.name == STATE
        )
    ).one()
    counts = Counts(settled_before=state[0], refreshed_at=state[1])
    if counts.settled_before is None and conn.dialect.name == "postgresql":
        # Before the first refresh the whole year is aggregated here: compiling costs more
        # than it saves, and the sort fits in memory.
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '32MB'")
    _read_rollup(conn, counts, year, district_code)
    start, end = bounds
    since = counts.settled_before
    lower = max(start, since) if since is not None else start
    counts.add_cells(cell_counts(conn, (lower, end), district_code).items())
    times = conn.execute(
        select(Letter.issued_at, LetterRequest.created_at)
        .join(LetterRequest, LetterRequest.id == Letter.request_id)
        .where(Letter.issued_at >= lower, Letter.issued_at < end, *_in_district(district_code))
    )
    for issued_at, created_at in times:
        counts.histograms["signature"][bucket_of((issued_at - created_at).total_seconds())] += 1
    handed = conn.execute(
        select(Letter.issued_at, Letter.handed_over_at).where(
            Letter.handed_over_at.is_not(None),
            *_between(Letter.handed_over_at, since, None),
            Letter.issued_at >= start,
            Letter.issued_at < end,
            *_in_district(district_code),
        )
    )
    for issued_at, handed_over_at in handed:
        counts.histograms["handover"][bucket_of((handed_over_at - issued_at).total_seconds())] += 1
    return counts


def _read_rollup(conn: Connection, counts: Counts, year: int, district_code: str | None) -> None:
    where = [StatLetters.year == year]
    if district_code is not None:
        where.append(StatLetters.village_code.startswith(district_code + ".", autoescape=True))
    table = StatLetters
    for dimension, key, n in conn.execute(
        select(table.dimension, table.key, func.sum(table.letters))
        .where(*where)
        .group_by(table.dimension, table.key)
    ):
        counts.by[dimension][key] += int(n)
    for village, n in conn.execute(  # each dimension adds up to the village: take one
        select(table.village_code, func.sum(table.letters))
        .where(*where, table.dimension == "channel")
        .group_by(table.village_code)
    ):
        counts.by["village"][village] += int(n)
    durations = [StatDuration.year == year]
    if district_code is not None:
        durations.append(StatDuration.district_code == district_code)
    for measure, bucket, n in conn.execute(
        select(StatDuration.measure, StatDuration.bucket, func.sum(StatDuration.letters))
        .where(*durations)
        .group_by(StatDuration.measure, StatDuration.bucket)
    ):
        counts.histograms[measure][bucket] += int(n)


def cell_counts(
    conn: Connection, bounds: tuple[datetime, datetime], district_code: str | None
) -> Counter[Cell]:
    """Exact counts per (village, type, WIB month, channel) of the letters issued in
    [start, end), straight from the letters: one grouped statement."""
    month = _wib(conn, "month", Letter.issued_at).label("month")
    start, end = bounds
    stmt = (
        select(Letter.village_code, Letter.workflow_id, month, LetterRequest.channel, func.count())
        .join(LetterRequest, LetterRequest.id == Letter.request_id)
        .where(Letter.issued_at >= start, Letter.issued_at < end, *_in_district(district_code))
        .group_by(Letter.village_code, Letter.workflow_id, month, LetterRequest.channel)
    )
    counts: Counter[Cell] = Counter()
    for village, workflow, m, channel, n in conn.execute(stmt):
        counts[(village, workflow, int(m), channel or "loket")] += n
    return counts


def utc(moment: datetime | str | None) -> datetime | None:
    """An aware UTC datetime from what a bare SQL function returns (SQLite gives text)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def catch_up(
    engine: Engine, *, rebuild: bool = False, now: datetime | None = None
) -> RefreshResult:
    """`suratdesa stats refresh`: move the watermark to now - SETTLE_MARGIN in steps of
    COMMAND_STEP_LETTERS letters, one transaction each (waiting for a refresh that runs);
    with ``rebuild``, from an empty rollup (in the same transaction as the first step, so a
    reader sees the old rollup or the new one, never none)."""
    letters = handovers = 0
    first = True
    while True:
        with engine.begin() as conn:
            if rebuild and first:
                reset(conn)
            step = refresh(
                conn, now=now, max_letters=COMMAND_STEP_LETTERS, older_than=None, wait=True
            )
        first = False
        letters, handovers = letters + step.letters, handovers + step.handovers
        if step.caught_up:
            break
    if engine.dialect.name == "postgresql" and letters + handovers > 50_000:
        with engine.connect() as conn:  # fresh planner statistics for the grown rollup
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "ANALYZE stat_letters, stat_durations"
            )
    return RefreshResult(True, letters, handovers, step.settled_before, True)
