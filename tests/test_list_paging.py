"""Keyset paging on the staff lists that were still capped (issue 9, item 3): the signing
queue, the notices, the regency admin's accounts, the operator's citizen requests and the
acting heads. Each list is walked page by page with small page sizes: every row once, none
missing, a stable order when timestamps tie, other villages (or users) never on a later page,
and a cursor the engine did not make refused with a 422 page that says so in Indonesian."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from engine.citizens.requests import (
    CHANNEL,
    create_citizen_request,
    operator_queue,
    operator_queue_page,
)
from engine.errors import InvalidInput
from engine.notify import inbox, outbox
from engine.people import acting, user_list
from engine.people.users import Actor, get_user
from engine.requests import queues
from engine.requests.letter_requests import act
from engine.storage.db import transaction
from engine.storage.models import (
    ActingAssignment,
    AuditEvent,
    LetterRequest,
    Notice,
    Resident,
    User,
)
from suratdesa.web import create_app
from tests.letters import GROGOL, KENEP, LETTERS, Staff
from tests.test_staff_app import P, page_csrf, sign_in

BAD_CURSORS = ("garbage", "2026-01-01T00:00:00+00:00_99999999999", "x" * 300, "_1")
BAD_MESSAGE = "Penanda halaman tidak valid"
TIE = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


@pytest.fixture
def app(services):
    return create_app(services.settings)


@pytest.fixture
def staff(settings, logins) -> Staff:
    return Staff(TestClient(create_app(settings)), logins)


def walk(services, load, limit: int = 2) -> list[int]:
    """Every page of ``load(session, after, limit)``: the ids in page order."""
    ids: list[int] = []
    after = None
    with transaction(services.factory) as session:
        for _ in range(1000):
            page = load(session, after, limit)
            assert len(page.rows) <= limit
            assert page.rows or page.next_cursor is None  # no empty page before the end
            ids += [r.id for r in page.rows]
            if page.next_cursor is None:
                return ids
            after = page.next_cursor
    raise AssertionError("the pages never ended")


def walk_pages(client: TestClient, path: str, pattern: str) -> tuple[list[list[int]], list[str]]:
    """Follow the "Halaman berikutnya" links from ``path``: the ids on each page and the
    pages' HTML."""
    pages, html, url = [], [], path
    for _ in range(100):
        r = client.get(url)
        assert r.status_code == 200, r.text[:300]
        html.append(r.text)
        pages.append([int(x) for x in dict.fromkeys(re.findall(pattern, r.text))])
        found = re.search(r'<a href="([^"]+)" rel="next"', r.text)
        if found is None:
            return pages, html
        url = path.split("?")[0] + found.group(1).replace("&amp;", "&")
    raise AssertionError("the pages never ended")


def flat(pages: list[list[int]]) -> list[int]:
    return [i for page in pages for i in page]


def tie(services, model, ids: list[int], column: str = "updated_at") -> None:
    with transaction(services.factory) as session:
        session.execute(update(model).where(model.id.in_(ids)).values({column: TIE}))


def api_requests(staff: Staff, logins, count: int, slug: str = "grogol") -> list[dict]:
    village = {"grogol": GROGOL, "kenep": KENEP}[slug]
    subjects, data = LETTERS["surat-keterangan-umum"](logins.sample_niks[village][:4])
    made = []
    for _ in range(count):
        r = staff.post(
            f"operator.{slug}",
            "/api/requests",
            {"workflow_id": "surat-keterangan-umum", "subjects": subjects, "data": data},
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    return made


def assert_bad_cursors_refused(load) -> None:
    for bad in BAD_CURSORS:
        with pytest.raises(InvalidInput) as caught:
            load(bad)
        assert "cursor" in caught.value.errors, bad


# --------------------------------------------------------------------------- signing queue


@pytest.fixture
def at_signing(staff, logins, services) -> dict[str, list[int]]:
    """Five general letters waiting for the head in Grogol (three changed at one moment), one
    in Kenep."""
    grogol = [staff.walk_to_signing("grogol", r)["id"] for r in api_requests(staff, logins, 5)]
    kenep = [
        staff.walk_to_signing("kenep", r)["id"] for r in api_requests(staff, logins, 1, "kenep")
    ]
    tie(services, LetterRequest, grogol[1:4])
    return {GROGOL: grogol, KENEP: kenep}


def signing_order(services, village: str, pairs) -> list[int]:
    with transaction(services.factory) as session:
        condition = queues._pairs_filter(pairs)
        return list(
            session.scalars(
                select(LetterRequest.id)
                .where(LetterRequest.village_code == village, condition)
                .order_by(LetterRequest.updated_at, LetterRequest.id)
            )
        )


def test_signing_queue_pages_by_keyset_for_the_head_and_the_sekdes(services, at_signing):
    for role, as_head in (("head", True), ("sekdes", False)):
        pairs = queues.signing_states(services.catalog, role, as_head=as_head)
        expected = signing_order(services, GROGOL, pairs)
        assert sorted(expected) == sorted(at_signing[GROGOL])

        def load(session, after, limit, pairs=pairs):
            return queues.queue_page(
                session, services.catalog, GROGOL, "head", pairs=pairs, after=after, limit=limit
            )

        for size in (1, 2, 3, 50):
            assert walk(services, load, size) == expected, (role, size)
        assert at_signing[KENEP][0] not in walk(services, load)
        with transaction(services.factory) as session:
            assert_bad_cursors_refused(lambda bad, s=session: load(s, bad, 2))


def test_signing_page_pages_and_keeps_ticks_on_their_page(app, services, at_signing, monkeypatch):
    monkeypatch.setattr(queues, "PAGE_SIZE", 2)
    head = sign_in(app, "head.grogol")
    pages, html = walk_pages(head, f"{P}/tandatangan", r'name="req" value="(\d+):\d+"')
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(flat(pages)) == sorted(at_signing[GROGOL])
    assert len(set(flat(pages))) == len(flat(pages))
    assert "(5)</h1>" in html[0]  # the whole queue's count, not the page's
    assert 'id="ticks-per-page"' in html[0] and "Centang hanya berlaku di halaman ini" in html[0]
    assert 'name="setelah"' not in html[0] and 'name="setelah"' in html[1]
    assert 'id="first-page"' in html[1] and 'id="first-page"' not in html[0]

    # A wrong passphrase on page 2 shows page 2 again with only its own tick kept.
    second = re.search(r'<a href="\?setelah=([^"]+)" rel="next"', html[0]).group(1)
    page2 = head.get(f"{P}/tandatangan?setelah={second}").text
    picks = re.findall(r'name="req" value="(\d+:\d+)"', page2)
    cursor = re.search(r'name="setelah" value="([^"]+)"', page2).group(1)
    wrong = head.post(
        f"{P}/tandatangan",
        data={
            "csrf": page_csrf(head),
            "req": [picks[1]],
            "passphrase": "salah",
            "setelah": cursor,
        },
    )
    assert wrong.status_code == 403
    assert re.findall(r'name="req" value="(\d+:\d+)"', wrong.text) == picks
    assert re.search(rf'value="{picks[1]}"[^>]*checked', wrong.text)
    assert not re.search(rf'value="{picks[0]}"[^>]*checked', wrong.text)
    assert f'name="setelah" value="{cursor}"' in wrong.text

    # The sekdes still reads "a.n." on a later page.
    sekdes = sign_in(app, "sekdes.grogol")
    _pages, sekdes_html = walk_pages(sekdes, f"{P}/tandatangan", r'name="req" value="(\d+):')
    assert all('id="on-behalf"' in h for h in sekdes_html)

    refused = head.get(f"{P}/tandatangan?setelah=garbage")
    assert refused.status_code == 422 and BAD_MESSAGE in refused.text
    assert "mulai lagi dari halaman pertama" in refused.text


# --------------------------------------------------------------------------- notices


def add_notices(services, username: str, count: int, *, transport: str = outbox.INAPP) -> list[int]:
    with transaction(services.factory) as session:
        user = get_user(session, username)
        event = session.scalar(select(func.min(AuditEvent.id)))
        assert event is not None
        start = datetime(2026, 11, 1, tzinfo=UTC)
        rows = [
            Notice(
                created_at=start + timedelta(hours=i),
                event_id=event,
                village_code=user.village_code,
                kind="queue",
                audience="staff",
                user_id=user.id,
                transport=transport,
                subject=f"Pemberitahuan {i}",
                body="Ada permohonan baru.",
                link=None,
                status="sent",
            )
            for i in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [n.id for n in rows]


def test_notices_page_by_keyset_each_user_their_own(app, services, staff, logins, monkeypatch):
    api_requests(staff, logins, 1)  # some audit event to hang the notices on
    mine = add_notices(services, "sekdes.grogol", 7)
    add_notices(services, "sekdes.grogol", 2, transport=outbox.EMAIL)
    others = add_notices(services, "sekdes.kenep", 3)
    tie(services, Notice, mine[2:5], "created_at")
    with transaction(services.factory) as session:
        user = get_user(session, "sekdes.grogol").id
        expected = list(
            session.scalars(
                select(Notice.id)
                .where(Notice.user_id == user, Notice.transport == outbox.INAPP)
                .order_by(Notice.created_at.desc(), Notice.id.desc())
            )
        )
    assert set(mine) <= set(expected) and not set(others) & set(expected)

    def load(session, after, limit):
        return inbox.notices_page(session, user, after=after, limit=limit)

    for size in (1, 2, 3, 50):
        assert walk(services, load, size) == expected, size
    with transaction(services.factory) as session:
        assert_bad_cursors_refused(lambda bad: inbox.notices_page(session, user, after=bad))
        with pytest.raises(InvalidInput):
            inbox.notices_page(session, user, limit=0)

    monkeypatch.setattr(inbox, "PAGE_SIZE", 2)
    client = sign_in(app, "sekdes.grogol")
    pages, html = walk_pages(client, f"{P}/pemberitahuan", r'id="notice-(\d+)"')
    assert flat(pages) == expected and all(len(p) <= 2 for p in pages)
    assert 'id="first-page"' in html[-1] and "Halaman pertama" in html[-1]
    refused = client.get(f"{P}/pemberitahuan?setelah=garbage")
    assert refused.status_code == 422 and BAD_MESSAGE in refused.text


# --------------------------------------------------------------------------- users


def user_order(services, village: str | None) -> list[int]:
    """The ids in the database's own order (its collation decides how usernames sort)."""
    query = select(User.id).order_by(func.coalesce(User.village_code, ""), User.username)
    if village is not None:
        query = query.where(User.village_code == village)
    with transaction(services.factory) as session:
        return list(session.scalars(query))


def test_users_page_by_keyset_with_the_village_filter(app, services, monkeypatch):
    def load_for(village):
        def load(session, after, limit):
            return user_list.users_page(session, village_code=village, after=after, limit=limit)

        return load

    everyone = user_order(services, None)
    assert len(everyone) > 4
    with transaction(services.factory) as session:
        admin_id = get_user(session, "admin").id
    assert everyone[0] == admin_id  # no village: first
    for size in (1, 2, 3, 1000):
        assert walk(services, load_for(None), size) == everyone, size
    grogol = user_order(services, GROGOL)
    assert walk(services, load_for(GROGOL), 2) == grogol
    with transaction(services.factory) as session:
        assert_bad_cursors_refused(lambda bad: user_list.users_page(session, after=bad))
        for bad in ("0", "-1", "99999999", "1.5"):
            with pytest.raises(InvalidInput):
                user_list.users_page(session, after=bad)

    monkeypatch.setattr(user_list, "PAGE_SIZE", 2)
    admin = sign_in(app, "admin")
    pages, html = walk_pages(admin, f"{P}/admin/pengguna?desa={GROGOL}", r'id="user-(\d+)"')
    assert flat(pages) == grogol and all(len(p) <= 2 for p in pages)
    for h in html[:-1]:  # the filter rides along with the cursor
        assert re.search(r'href="\?desa=[^"&]+&amp;setelah=[^"]+" rel="next"', h), h[-800:]
    pages, _html = walk_pages(admin, f"{P}/admin/pengguna", r'id="user-(\d+)"')
    assert flat(pages) == everyone
    refused = admin.get(f"{P}/admin/pengguna?desa={GROGOL}&setelah=abc")
    assert refused.status_code == 422 and BAD_MESSAGE in refused.text
    shown = {int(x) for x in re.findall(r'id="user-(\d+)"', refused.text)}
    assert shown and shown <= set(grogol)  # the village filter is kept


# --------------------------------------------------------------------------- citizen requests


def citizen_requests(services, village: str, count: int) -> list[int]:
    with transaction(services.factory) as session:
        people = list(
            session.scalars(
                select(Resident.nik)
                .where(Resident.village_code == village, Resident.alive.is_(True))
                .order_by(Resident.nik)
                .limit(3)
            )
        )
        made = []
        for i in range(count):
            req, _code = create_citizen_request(
                session,
                services.catalog,
                people[i % len(people)],
                "surat-keterangan-umum",
                {"keperluan": "Melamar pekerjaan"},
                open_limit=20,
            )
            session.flush()
            made.append(req.id)
        return made


def test_citizen_requests_page_by_keyset_in_their_village(app, services, monkeypatch):
    grogol = citizen_requests(services, GROGOL, 7)
    kenep = citizen_requests(services, KENEP, 2)
    with transaction(services.factory) as session:  # one moves on: no longer waiting here
        operator = Actor.of(get_user(session, "operator.grogol"))
        act(session, services.catalog, operator, grogol[2], "submit", version=1)
    # Six at one moment, the submitted one among them: a page must read past it.
    tie(services, LetterRequest, grogol[0:6])
    with transaction(services.factory) as session:
        whole = [r.id for r in operator_queue(session, services.catalog, GROGOL)]
        assert session.get(LetterRequest, grogol[2]).channel == CHANNEL
    assert sorted(whole) == sorted(set(grogol) - {grogol[2]})

    def load(session, after, limit):
        return operator_queue_page(session, services.catalog, GROGOL, after=after, limit=limit)

    for size in (1, 2, 3, 50):
        assert walk(services, load, size) == whole, size
    assert not set(kenep) & set(walk(services, load))
    with transaction(services.factory) as session:
        assert_bad_cursors_refused(lambda bad: load(session, bad, 2))

    monkeypatch.setattr(queues, "PAGE_SIZE", 2)
    operator_client = sign_in(app, "operator.grogol")
    pages, _html = walk_pages(operator_client, f"{P}/warga", r'/permohonan/(\d+)"')
    assert flat(pages) == whole and all(len(p) <= 2 for p in pages)
    refused = operator_client.get(f"{P}/warga?setelah=garbage")
    assert refused.status_code == 422 and BAD_MESSAGE in refused.text
    assert 'id="pin-form"' in refused.text  # the PIN form still works from there


# --------------------------------------------------------------------------- acting heads


def add_assignments(services, username: str, starts: list[date]) -> list[int]:
    with transaction(services.factory) as session:
        user = get_user(session, username)
        admin = get_user(session, "admin")
        rows = [
            ActingAssignment(
                village_code=user.village_code,
                user_id=user.id,
                prefix="Plh.",
                starts_on=day,
                ends_on=day + timedelta(days=2),
                note=None,
                created_by_id=admin.id,
                created_at=TIE,
            )
            for day in starts
        ]
        session.add_all(rows)
        session.flush()
        return [a.id for a in rows]


def acting_order(services, village: str | None) -> list[int]:
    query = select(ActingAssignment.id).order_by(
        ActingAssignment.starts_on.desc(), ActingAssignment.id.desc()
    )
    if village is not None:
        query = query.where(ActingAssignment.village_code == village)
    with transaction(services.factory) as session:
        return list(session.scalars(query))


def test_acting_heads_page_by_keyset_in_their_village(app, services, monkeypatch):
    day = date(2025, 3, 1)
    days = [day, day, day + timedelta(days=5), day - timedelta(days=40), day, day]
    grogol = add_assignments(services, "sekdes.grogol", days)
    kenep = add_assignments(services, "sekdes.kenep", [day, day + timedelta(days=1)])
    expected = acting_order(services, GROGOL)
    assert sorted(expected) == sorted(grogol)

    def load_for(village):
        def load(session, after, limit):
            return acting.assignments_page(session, village, after=after, limit=limit)

        return load

    for size in (1, 2, 3, 100):
        assert walk(services, load_for(GROGOL), size) == expected, size
    assert walk(services, load_for(None), 2) == acting_order(services, None)
    assert not set(kenep) & set(walk(services, load_for(GROGOL)))
    with transaction(services.factory) as session:
        assert_bad_cursors_refused(lambda bad: acting.assignments_page(session, None, after=bad))

    monkeypatch.setattr(acting, "ASSIGNMENTS_PAGE_SIZE", 2)
    head = sign_in(app, "head.grogol")
    pages, _html = walk_pages(head, f"{P}/plt", r'id="acting-(\d+)"')
    assert flat(pages) == expected and all(len(p) <= 2 for p in pages)
    pages, _html = walk_pages(sign_in(app, "admin"), f"{P}/plt", r'id="acting-(\d+)"')
    assert flat(pages) == acting_order(services, None)
    refused = head.get(f"{P}/plt?setelah=garbage")
    assert refused.status_code == 422 and BAD_MESSAGE in refused.text
