"""Open statistics (/statistik): counts per kecamatan, village, type, month and channel from
letters issued in the test, the disclosure rule (1-4 shown as "<5", the rest and every total
rounded to 5, so a hidden cell cannot be recovered from a total), the service-time percentiles,
the CSV and JSON downloads without personal data, and the page with its SVG charts and tables.
Runs on SQLite, and on PostgreSQL with SURATDESA_TEST_DATABASE_URL."""

from __future__ import annotations

import csv
import io
import itertools
import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine import regions
from engine.dates import WIB
from engine.letters import pickup
from engine.letters import statistics_rollup as rollup
from engine.letters.statistics import (
    Duration,
    Statistics,
    StatisticsCache,
    as_dict,
    compute,
    percentile,
    protect,
    publish,
    year_bounds,
)
from engine.people.users import Actor
from engine.storage.db import transaction
from engine.storage.models import (
    Letter,
    LetterRequest,
    Resident,
    StatDuration,
    StatLetters,
    User,
)
from engine.timeutil import now_utc
from suratdesa.web import create_app
from tests.letters import GROGOL, KENEP, Staff, issue

WERU = GROGOL.rsplit(".", 1)[0]
KENEP_DISTRICT = KENEP.rsplit(".", 1)[0]


# --------------------------------------------------------------------------- the rule


def test_counts_below_five_are_hidden_and_the_rest_rounded_to_five():
    shown = {n: publish(n).display for n in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 1234)}
    assert shown == {
        0: "0",
        1: "<5",
        2: "<5",
        3: "<5",
        4: "<5",
        5: "5",
        6: "5",
        7: "5",
        8: "10",
        9: "10",
        10: "10",
        12: "10",
        13: "15",
        1234: "1.235",
    }
    assert publish(3).value is None and publish(3).suppressed
    assert publish(8).value == 10


BIG = 60  # "≥5" stands for 5 or more; the brute force below tries up to this


def _interval(display: str) -> range:
    """What anyone can tell about a count from its published figure (zeros read "0" except in
    a table whose total is under 5, where "<5" may also be 0)."""
    if display == "<5":
        return range(0, 5)
    if display == "≥5":
        return range(5, BIG)
    n = int(display.replace(".", ""))
    return range(0, 1) if n == 0 else range(max(5, n - 2), n + 3)


def _candidates(shown: dict[str, str], cells: list[str]) -> list[dict[str, int]]:
    """Every exact table that fits the published figures: each cell in its interval, the
    cells adding up to a total that fits the total's figure."""
    totals = set(_interval(shown["total"]))
    return [
        dict(zip(cells, values, strict=True))
        for values in itertools.product(*(_interval(shown[c]) for c in cells))
        if sum(values) in totals
    ]


@pytest.mark.parametrize("size,top", [(2, 30), (3, 16), (4, 9)])
def test_no_hidden_cell_can_be_worked_out_from_a_table_and_its_total(size, top):
    """Brute force over every small table: whatever its counts, each hidden cell ("<5" or
    "≥5") still has at least two values that fit the shown cells and the shown total."""
    cells = [f"c{i}" for i in range(size)]
    seen: set[tuple[str, ...]] = set()
    for values in itertools.product(range(top), repeat=size):
        if sum(1 for v in values if v) == size and sum(values) < 5:
            continue  # as many cells as letters, one each, no zero cell: documented
        exact = {"total": sum(values), **dict(zip(cells, values, strict=True))}
        shown = {k: f.display for k, f in protect(exact, [("total", cells)]).items()}
        key = tuple(shown[k] for k in ["total", *cells])
        if key in seen:
            continue
        seen.add(key)
        fits = _candidates(shown, cells)
        assert tuple(exact[c] for c in cells) in {tuple(f[c] for c in cells) for f in fits}
        for c in cells:
            if shown[c] in ("<5", "≥5"):
                assert len({f[c] for f in fits}) >= 2, (exact, shown, c)


def test_secondary_suppression_in_the_examples_of_the_docs():
    """Three villages with 1, 1 and 5 letters, kecamatan 7: shown as "<5", "<5", "5" and "5"
    (5 to 7), the two hidden ones would add up to 2 at most, so each is 1: the 5 is hidden
    ("≥5"); with 5 or more there and 1 or more in each other, the total's 5 to 7 still pins
    them, so the total is hidden too. Two villages with 4 each: the total's "10" (8 to 12)
    gives both away: the total is hidden."""
    exact = {"total": 7, "a": 1, "b": 1, "c": 5}
    shown = {k: f.display for k, f in protect(exact, [("total", ["a", "b", "c"])]).items()}
    assert shown == {"total": "≥5", "a": "<5", "b": "<5", "c": "≥5"}
    exact = {"total": 9, "a": 2, "b": 1, "c": 6}  # 1-4 and 1-4 beside 5-8 in 7-11: not pinned
    shown = {k: f.display for k, f in protect(exact, [("total", ["a", "b", "c"])]).items()}
    assert shown == {"total": "10", "a": "<5", "b": "<5", "c": "5"}
    exact = {"total": 8, "a": 4, "b": 4}
    shown = {k: f.display for k, f in protect(exact, [("total", ["a", "b"])]).items()}
    assert shown == {"total": "≥5", "a": "<5", "b": "<5"}
    # Four months of one letter each in a year of four letters: the other months' zeros
    # read "<5" too, or the four would each be known to be 1.
    months = [f"m{i}" for i in range(12)]
    exact = {"total": 4, **{m: (1 if i < 4 else 0) for i, m in enumerate(months)}}
    shown = {k: f.display for k, f in protect(exact, [("total", months)]).items()}
    assert set(shown.values()) == {"<5"}


def test_percentile_is_linear_between_ranks_like_percentile_cont():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.9) == pytest.approx(7.6)
    assert percentile([5.0], 0.9) == 5.0


# --------------------------------------------------------------------------- real letters


def _hand_over(services, letters: list[dict]) -> None:
    with transaction(services.factory) as session:
        user = session.scalar(select(User).where(User.username == "operator.grogol"))
        for letter in letters:
            row = session.scalar(select(Letter).where(Letter.number == letter["number"]))
            pickup.hand_over(
                session,
                Actor.of(user),
                row.request_id,
                receiver_name="Penerima Contoh",
                relation="Yang bersangkutan",
                id_number="3311010101010001",
            )


def _durations(services) -> tuple[list[float], list[float]]:
    with transaction(services.factory) as session:
        rows = session.execute(
            select(Letter.issued_at, LetterRequest.created_at, Letter.handed_over_at).join(
                LetterRequest, LetterRequest.id == Letter.request_id
            )
        ).all()
    sign = sorted((i - c).total_seconds() for i, c, _ in rows)
    hand = sorted((h - i).total_seconds() for i, _, h in rows if h is not None)
    return sign, hand


@pytest.fixture
def issued(services, logins, passphrase):
    """Six general letters in Grogol (Weru), two domisili letters in Kenep; five handed over."""
    staff = Staff(TestClient(create_app(services.settings)), logins)
    grogol = [issue(staff, "surat-keterangan-umum", passphrase) for _ in range(6)]
    kenep = [issue(staff, "surat-keterangan-domisili", passphrase, "kenep") for _ in range(2)]
    _hand_over(services, grogol[:5])
    return grogol + kenep


def _personal_data(services, letters) -> list[str]:
    with transaction(services.factory) as session:
        residents = session.scalars(
            select(Resident).where(Resident.village_code.in_([GROGOL, KENEP]))
        ).all()
        people = [r.nik for r in residents] + [r.name for r in residents]
    return people + [letter["number"] for letter in letters] + ["Penerima Contoh"]


def test_figures_from_issued_letters(services, logins, issued):
    year = now_utc().astimezone(WIB).year
    month = now_utc().astimezone(WIB).month
    client = TestClient(create_app(services.settings))
    data = client.get(f"/statistik.json?tahun={year}").json()

    villages = {v["code"]: v["display"] for v in data["by_village"]}
    assert villages[GROGOL] == "5"  # 6 letters, rounded to 5
    assert villages[KENEP] == "<5"  # 2 letters: hidden
    others = {v["display"] for v in data["by_village"] if v["code"] not in (GROGOL, KENEP)}
    assert others == {"0"}
    assert len(data["by_village"]) == len(regions.villages()) == 167
    districts = {d["code"]: d["display"] for d in data["by_district"]}
    assert districts[WERU] == "5" and districts[KENEP_DISTRICT] == "<5"
    types = {t["workflow_id"]: (t["count"], t["display"]) for t in data["by_type"]}
    assert types["surat-keterangan-umum"] == (5, "5")
    assert types["surat-keterangan-domisili"] == (None, "<5")
    assert types["surat-keterangan-kematian"] == (0, "0")
    months = {m["month"]: m["display"] for m in data["by_month"]}
    assert months[month] == "10"  # 8 letters this month, rounded to the nearest 5
    assert {d for m, d in months.items() if m != month} == {"0"}
    assert {c["channel"]: c["display"] for c in data["by_channel"]} == {"loket": "10", "warga": "0"}
    # The regency total is rounded from the exact 8, so the hidden Kenep cell (2) cannot be
    # had by subtracting: 10 - 5 = 5, which is no count Kenep could have ("<5").
    assert data["total"] == {"count": 10, "display": "10"}

    sign, hand = _durations(services)
    assert data["time_to_signature"]["letters"]["display"] == "10"
    # Read from 0.1-hour buckets (each value taken as its bucket's middle), then rounded to
    # 0.1 h: within 0.1 h of the exact percentile_cont (docs/statistics.md).
    for name, exact in (("time_to_signature", sign), ("time_to_handover", hand)):
        for key, q in (("median_hours", 0.5), ("p90_hours", 0.9)):
            assert abs(data[name][key] - percentile(exact, q) / 3600) <= 0.1 + 1e-9, (name, key)
    assert data["time_to_handover"]["letters"]["display"] == "5"

    weru = client.get(f"/statistik.json?tahun={year}&kecamatan={WERU}").json()
    assert weru["district"] == "Weru" and weru["total"]["display"] == "5"
    assert [d["code"] for d in weru["by_district"]] == [WERU]
    assert all(v["district_code"] == WERU for v in weru["by_village"])
    assert weru["time_to_handover"]["median_hours"] is not None  # 5 handed over in Weru
    kenep = client.get(f"/statistik.json?tahun={year}&kecamatan={KENEP_DISTRICT}").json()
    assert kenep["total"]["display"] == "<5"
    assert kenep["time_to_signature"]["median_hours"] is None  # under 5 letters: not shown
    assert kenep["time_to_handover"]["letters"]["display"] == "0"
    last_year = client.get(f"/statistik.json?tahun={year - 1}").json()
    assert last_year["total"]["display"] == "0"


def test_downloads_and_page_carry_no_personal_data(services, issued):
    year = now_utc().astimezone(WIB).year
    client = TestClient(create_app(services.settings))
    page = client.get("/statistik")
    as_json = client.get("/statistik.json")
    as_csv = client.get(f"/statistik.csv?tahun={year}")
    for r in (page, as_json, as_csv):
        assert r.status_code == 200
        for secret in _personal_data(services, issued):
            assert secret not in r.text, secret
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert f'filename="statistik-surat-{year}.csv"' in as_csv.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["tahun", "kecamatan", "dimensi", "kode", "nama", "nilai"]
    by_key = {(r[2], r[3]): r[5] for r in rows[1:]}
    assert by_key[("total", "")] == "10"
    assert by_key[("desa_kelurahan", GROGOL)] == "5"
    assert by_key[("desa_kelurahan", KENEP)] == "<5"
    assert by_key[("jenis_surat", "surat-keterangan-domisili")] == "<5"
    assert ("jam_sampai_tanda_tangan", "median") in by_key
    assert {r[0] for r in rows[1:]} == {str(year)}
    assert set(as_json.json()) >= {"year", "computed_at", "rule", "total", "by_month"}

    html = page.text
    assert html.count("<svg") >= 4 and html.count("<table") >= 6
    assert '<th scope="col">Bulan</th>' in html and '<th scope="row">Januari</th>' in html
    assert "<caption>Jumlah surat per bulan" in html and 'role="img"' in html
    assert "&lt;5" in html and "Diperbarui " in html and " WIB" in html
    assert 'href="/statistik.csv?tahun=' in html and 'href="/statistik">Statistik</a>' in html
    assert "<script" not in html


def test_bad_filters_are_refused_in_indonesian(services):
    client = TestClient(create_app(services.settings))
    r = client.get("/statistik.json?tahun=19x")
    assert r.status_code == 422 and "Tahun" in r.json()["detail"]
    r = client.get("/statistik?kecamatan=99.99.99")
    assert r.status_code == 422 and "Kecamatan tidak dikenal" in r.text
    assert client.get("/statistik.csv?tahun=1999").status_code == 422


def test_statistics_are_rate_limited_per_address(settings, one_rate_window):
    app = create_app(replace(settings, rate_v_per_minute=3))
    one = TestClient(app, client=("10.0.0.31", 40000))
    other = TestClient(app, client=("10.0.0.32", 40000))
    assert [one.get("/statistik.json").status_code for _ in range(3)] == [200] * 3
    refused = one.get("/statistik")
    assert refused.status_code == 429 and "Terlalu banyak" in refused.text
    assert one.get("/statistik.json").status_code == 429
    assert other.get("/statistik.csv").status_code == 200


# --------------------------------------------------------------------------- the cache


def _stats(marker: int) -> Statistics:
    zero = publish(0)
    none = Duration(zero, None, None)
    return Statistics(marker, None, None, [marker], zero, [], [], [], [], [], none, none)


def test_cache_serves_stale_figures_while_one_refresh_runs():
    now = [0.0]
    cache = StatisticsCache(ttl=300, clock=lambda: now[0])
    calls: list[int] = []
    release = threading.Event()
    done = threading.Event()

    def first() -> Statistics:
        calls.append(1)
        return _stats(1)

    def slow() -> Statistics:
        calls.append(2)
        release.wait(10)
        done.set()
        return _stats(2)

    assert cache.get(2026, None, first).year == 1  # empty: computed now
    now[0] = 100
    assert cache.get(2026, None, slow).year == 1 and calls == [1]  # fresh: not recomputed
    now[0] = 400
    assert cache.get(2026, None, slow).year == 1  # stale: answered at once, refresh started
    assert cache.get(2026, None, slow).year == 1  # still stale; no second refresh
    release.set()
    assert done.wait(10)
    for _ in range(1000):  # the refresh thread stores its result right after `done`
        if cache.get(2026, None, slow).year == 2:
            break
        threading.Event().wait(0.01)
    assert cache.get(2026, None, slow).year == 2 and calls == [1, 2]
    assert cache.get(2026, "33.11.01", first).year == 1  # another key: its own figures


# --------------------------------------------------------------------------- the rollup


def _engine(services):
    return services.factory.kw["bind"]


def _on_demand(services, year: int) -> tuple[Counter, dict[str, Counter]]:
    """The year's letters per (village, dimension, key) and the duration histograms per
    (kecamatan, bucket), straight from the letters (no rollup)."""
    start, end = year_bounds(year)
    with _engine(services).connect() as conn:
        cells = rollup.cell_counts(conn, (start, end), None)
    by: Counter = Counter()
    for (village, workflow, month, channel), n in cells.items():
        for dimension, key in (("month", str(month)), ("type", workflow), ("channel", channel)):
            by[(village, dimension, key)] += n
    histograms = {m: Counter() for m in rollup.MEASURES}
    with transaction(services.factory) as session:
        rows = session.execute(
            select(
                Letter.village_code,
                Letter.issued_at,
                LetterRequest.created_at,
                Letter.handed_over_at,
            )  # fmt: skip
            .join(LetterRequest, LetterRequest.id == Letter.request_id)
            .where(Letter.issued_at >= start, Letter.issued_at < end)
        ).all()
    for village, issued_at, created_at, handed_over_at in rows:
        district = village.rsplit(".", 1)[0]
        bucket = rollup.bucket_of((issued_at - created_at).total_seconds())
        histograms["signature"][(district, bucket)] += 1
        if handed_over_at is not None:
            bucket = rollup.bucket_of((handed_over_at - issued_at).total_seconds())
            histograms["handover"][(district, bucket)] += 1
    return by, histograms


def _rollup_tables(services, year: int) -> tuple[Counter, dict[str, Counter]]:
    """What the rollup tables hold for the year, in the shape of `_on_demand`."""
    with transaction(services.factory) as session:
        letters = session.scalars(select(StatLetters).where(StatLetters.year == year)).all()
        durations = session.scalars(select(StatDuration).where(StatDuration.year == year)).all()
    by = Counter({(r.village_code, r.dimension, r.key): r.letters for r in letters})
    histograms = {m: Counter() for m in rollup.MEASURES}
    for r in durations:
        histograms[r.measure][(r.district_code, r.bucket)] += r.letters
    return by, histograms


def _letters(by: Counter) -> int:
    return sum(n for (_, dimension, _), n in by.items() if dimension == "channel")


def _read(services, year: int) -> rollup.Counts:
    """The figures' exact counts as /statistik reads them: rollup + on-demand rest."""
    with _engine(services).connect() as conn, conn.begin():
        return rollup.read_counts(conn, year, None, year_bounds(year))


def _shift(services, number: str, **moments) -> None:
    """Test set-up: move a letter's timestamps (as if its transaction had taken them then)."""
    with transaction(services.factory) as session:
        letter = session.scalar(select(Letter).where(Letter.number == number))
        request = session.get(LetterRequest, letter.request_id)
        for name, moment in moments.items():
            target = request if name == "created_at" else letter
            setattr(target, name, moment)


def _published(services, year: int, district: str | None = None) -> dict:
    with _engine(services).connect() as conn, conn.begin():
        stats = compute(conn, year, district, {})
    data = as_dict(stats)
    data.pop("computed_at")
    return data


def test_rollup_equals_the_on_demand_aggregate_and_publishes_the_same(services, issued):
    year = now_utc().astimezone(WIB).year
    before = _published(services, year)  # nothing settled yet: all read on demand
    before_weru = _published(services, year, WERU)
    with _engine(services).connect() as conn:
        assert rollup.settled_before(conn) is None
    done = rollup.catch_up(_engine(services), now=now_utc() + timedelta(hours=1))
    assert (done.letters, done.handovers, done.caught_up) == (8, 5, True)

    cells, histograms = _on_demand(services, year)
    assert _letters(cells) == 8 and sum(histograms["handover"].values()) == 5
    assert _rollup_tables(services, year) == (cells, histograms)
    assert _published(services, year) == before  # the page's figures do not change
    assert _published(services, year, WERU) == before_weru
    counts = _read(services, year)  # everything is in the rollup, nothing read twice
    assert counts.total == 8 and sum(counts.histograms["handover"].values()) == 5
    # Rebuilding recounts the same.
    rollup.catch_up(_engine(services), rebuild=True, now=now_utc() + timedelta(hours=1))
    assert _rollup_tables(services, year) == (cells, histograms)


def test_refresh_counts_new_letters_and_late_hand_overs_exactly_once(
    services, logins, passphrase, issued
):
    """A letter issued and a hand-over recorded with timestamps older than the last refresh
    (their transactions committed after it, within SETTLE_MARGIN) are read on demand until a
    later refresh adds them to the rollup: each counted once, before and after."""
    engine = _engine(services)
    r1 = now_utc() + timedelta(hours=1)
    rollup.catch_up(engine, now=r1)  # watermark r1 - 15 min: the 8 letters, 5 hand-overs
    year = (r1 - rollup.SETTLE_MARGIN).astimezone(WIB).year
    assert timedelta(minutes=10) < rollup.SETTLE_MARGIN

    staff = Staff(TestClient(create_app(services.settings)), logins)
    late = issue(staff, "surat-keterangan-umum", passphrase)
    _shift(services, late["number"], issued_at=r1 - timedelta(minutes=10),
           created_at=r1 - timedelta(hours=3))  # fmt: skip
    _hand_over(services, [issued[5]])
    _shift(services, issued[5]["number"], handed_over_at=r1 - timedelta(minutes=5))
    assert _letters(_rollup_tables(services, year)[0]) == 8  # not in the rollup yet ...
    counts = _read(services, year)  # ... but in the figures, once
    assert counts.total == 9 and sum(counts.histograms["handover"].values()) == 6
    assert sum(counts.histograms["signature"].values()) == 9

    with engine.begin() as conn:  # a page's refresh right after: not due yet
        assert not rollup.refresh(conn, now=r1 + timedelta(seconds=10)).ran
    with engine.begin() as conn:
        step = rollup.refresh(conn, now=r1 + timedelta(minutes=30), older_than=None)
    assert (step.ran, step.letters, step.handovers) == (True, 1, 1)
    for later in (31, 45, 90):  # further refreshes add nothing twice
        with engine.begin() as conn:
            step = rollup.refresh(conn, now=r1 + timedelta(minutes=later), older_than=None)
        assert (step.letters, step.handovers) == (0, 0)
    counts = _read(services, year)
    assert counts.total == 9 and sum(counts.histograms["handover"].values()) == 6
    cells, histograms = _on_demand(services, year)
    assert _rollup_tables(services, year) == (cells, histograms)
    assert _letters(cells) == 9 and histograms["handover"].total() == 6


def test_page_refresh_is_bounded_and_skips_while_another_runs(services, issued):
    engine = _engine(services)
    later = now_utc() + timedelta(hours=1)
    with engine.begin() as conn:  # a page's step: at most max_letters letters
        step = rollup.refresh(conn, now=later, max_letters=3)
    assert step.ran and step.letters == 3 and not step.caught_up
    year = (later - rollup.SETTLE_MARGIN).astimezone(WIB).year
    counts = _read(services, year)  # 3 in the rollup + 5 on demand
    assert counts.total == 8 and sum(counts.histograms["handover"].values()) == 5
    if engine.dialect.name == "postgresql":  # SQLite: one writer at a time anyway
        with engine.begin() as holder:
            assert rollup.refresh(holder, now=later, older_than=None).ran
            with engine.begin() as other:  # the lock is held: a page does not wait
                assert not rollup.refresh(other, now=later, older_than=None).ran
    rollup.catch_up(engine, now=later)
    assert _rollup_tables(services, year) == _on_demand(services, year)


def test_histogram_percentiles_are_within_the_documented_resolution():
    import random

    rng = random.Random(11)
    for spread in (600, 3 * 3600, 72 * 3600, 30 * 86400):
        values = sorted(rng.uniform(0, spread) for _ in range(rng.randint(5, 400)))
        histogram = Counter(rollup.bucket_of(v) for v in values)
        for q in (0.5, 0.9):
            exact = percentile(values, q)
            read = rollup.histogram_percentile(histogram, q)
            allowed = 180 if exact < 7 * 86400 else exact * 0.05
            assert abs(read - exact) <= allowed + 1e-6, (spread, q, exact, read)
    assert rollup.bucket_of(-5) == 0 and rollup.bucket_of(10 * 365 * 86400) == rollup.LAST_BUCKET
