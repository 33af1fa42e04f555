"""Finding letters and requests (issue 9, item 3): the archive by number prefix, any part of the
number and NIK prefix, one village's letters for its staff and every village's for the regency
admin; keyset paging with no duplicate or missing row across pages, on the archive, an
operator's own requests (with their search) and the review queues."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from engine.errors import InvalidInput
from engine.letters import archive
from engine.requests import queues
from engine.storage.db import transaction
from engine.storage.models import Letter, LetterRequest, Resident, User
from suratdesa.web import create_app
from tests.letters import GROGOL, KENEP, LETTERS, Staff, issue

TYPES = ("surat-keterangan-umum", "surat-keterangan-domisili", "surat-keterangan-usaha")


@pytest.fixture
def staff(settings, logins) -> Staff:
    return Staff(TestClient(create_app(settings)), logins)


@pytest.fixture
def issued(staff, passphrase) -> dict[str, list[dict]]:
    """Letters issued through the API: three types in Grogol, one in Kenep."""
    grogol = [issue(staff, workflow_id, passphrase) for workflow_id in TYPES]
    kenep = [issue(staff, "surat-keterangan-umum", passphrase, "kenep")]
    return {GROGOL: grogol, KENEP: kenep}


def numbers(services, q: archive.ArchiveQuery, limit: int = archive.PAGE_SIZE) -> list[str]:
    with transaction(services.factory) as session:
        return [r.number for r in archive.search(session, q, limit=limit).rows]


def every_page(services, q: archive.ArchiveQuery, limit: int) -> list[archive.ArchiveRow]:
    rows: list[archive.ArchiveRow] = []
    after = None
    with transaction(services.factory) as session:
        while True:
            page = archive.search(session, q, after=after, limit=limit)
            assert len(page.rows) <= limit
            rows += page.rows
            if page.next_cursor is None:
                return rows
            after = page.next_cursor


def test_archive_finds_a_letter_by_number_prefix_and_by_any_part(services, issued):
    grogol = [letter["number"] for letter in issued[GROGOL]]
    kenep = issued[KENEP][0]["number"]
    target = grogol[1]
    head, seq, *_rest = target.split("/")
    tail = "/" + "/".join(target.split("/")[-2:])  # "/XI/2026"
    for part in (target, f"{head}/{seq}", seq, tail, tail.lower(), target[3:-3]):
        found = numbers(services, archive.ArchiveQuery(GROGOL, number=part))
        assert target in found, part
        assert sorted(found) == sorted(n for n in grogol if part.lower() in n.lower()), part
        assert kenep not in found
    # LIKE wildcards are plain characters: they find nothing here.
    for wildcard in ("%", "_", "4_4"):
        assert numbers(services, archive.ArchiveQuery(GROGOL, number=wildcard)) == []
    assert numbers(services, archive.ArchiveQuery(GROGOL, number="0000/none")) == []


def test_archive_finds_by_nik_prefix_only_from_the_start(services, logins, issued):
    letters = issued[GROGOL]
    with transaction(services.factory) as session:
        by_number = dict(session.execute(select(Letter.number, Letter.subject_nik)).all())
    nik = by_number[letters[0]["number"]]
    grogol = {letter["number"] for letter in letters}
    for prefix in (nik, nik[:10], nik[:4], nik[:1]):
        found = set(numbers(services, archive.ArchiveQuery(GROGOL, nik=prefix)))
        assert letters[0]["number"] in found, prefix
        assert found == {n for n in grogol if by_number[n].startswith(prefix)}, prefix
    # The middle of a NIK is not its start.
    assert letters[0]["number"] not in numbers(services, archive.ArchiveQuery(GROGOL, nik=nik[4:]))
    for bad in ("33a1", "3" * 17, "33 11", "-1"):
        with pytest.raises(InvalidInput) as caught:
            archive.check(archive.ArchiveQuery(GROGOL, nik=bad))
        assert "nik" in caught.value.errors


def test_archive_keeps_each_village_to_itself_and_shows_the_admin_all(services, issued):
    kenep = issued[KENEP][0]["number"]
    grogol = [letter["number"] for letter in issued[GROGOL]]
    part = "/" + kenep.split("/")[-1]  # the year: in every number
    assert sorted(numbers(services, archive.ArchiveQuery(GROGOL, number=part))) == sorted(grogol)
    assert numbers(services, archive.ArchiveQuery(KENEP, number=part)) == [kenep]
    everything = numbers(services, archive.ArchiveQuery(None, number=part))
    assert sorted(everything) == sorted([*grogol, kenep])
    with transaction(services.factory) as session:
        nik = session.scalar(select(Letter.subject_nik).where(Letter.number == kenep))
    assert numbers(services, archive.ArchiveQuery(GROGOL, nik=nik)) == []
    assert numbers(services, archive.ArchiveQuery(None, nik=nik)) == [kenep]


def test_digits_prefix_ranges():
    assert archive.digits_prefix_range("3311") == ("3311", "3312")
    assert archive.digits_prefix_range("0099") == ("0099", "0100")
    assert archive.digits_prefix_range("3319") == ("3319", "3320")
    assert archive.digits_prefix_range("99") == ("99", None)


def test_archive_pages_cover_every_letter_once_with_ties_and_a_search(services, issued, staff):
    """More letters than a page (page size 2), some issued at the very same moment: walking
    the pages returns each letter once, newest first, also under a search."""
    with transaction(services.factory) as session:
        ids = list(session.scalars(select(Letter.id).where(Letter.village_code == GROGOL)))
        moment = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
        session.execute(update(Letter).where(Letter.id.in_(ids[:2])).values(issued_at=moment))
        expected = list(
            session.execute(
                select(Letter.id)
                .where(Letter.village_code == GROGOL)
                .order_by(Letter.issued_at.desc(), Letter.id.desc())
            ).scalars()
        )
    assert len(expected) == 3
    for limit in (1, 2):
        rows = every_page(services, archive.ArchiveQuery(GROGOL), limit)
        assert [r.id for r in rows] == expected, limit
    year = "/" + issued[GROGOL][0]["number"].split("/")[-1]
    searched = every_page(services, archive.ArchiveQuery(GROGOL, number=year), 2)
    assert [r.id for r in searched] == expected
    everyone = every_page(services, archive.ArchiveQuery(None), 1)
    assert len(everyone) == len({r.id for r in everyone}) == 4
    with pytest.raises(InvalidInput), transaction(services.factory) as session:
        archive.search(session, archive.ArchiveQuery(GROGOL), after="bukan-penanda")


# --------------------------------------------------------------------------- request lists


def open_requests(staff: Staff, logins, count: int, workflow_id: str, slug: str = "grogol"):
    village = {"grogol": GROGOL, "kenep": KENEP}[slug]
    subjects, data = LETTERS[workflow_id](logins.sample_niks[village][:4])
    made = []
    for _ in range(count):
        r = staff.post(
            f"operator.{slug}",
            "/api/requests",
            {"workflow_id": workflow_id, "subjects": subjects, "data": data},
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    return made


def user_id(services, username: str) -> int:
    with transaction(services.factory) as session:
        return session.scalar(select(User.id).where(User.username == username))


def own_pages(services, user: int, search: str = "", limit: int = 2) -> list[int]:
    ids: list[int] = []
    after = None
    with transaction(services.factory) as session:
        while True:
            page = queues.own_requests_page(
                session, services.catalog, user, search=search, after=after, limit=limit
            )
            assert len(page.rows) <= limit
            ids += [r.id for r in page.rows]
            if page.next_cursor is None:
                return ids
            after = page.next_cursor


def test_own_requests_page_by_keyset_and_search(staff, services, logins):
    general = open_requests(staff, logins, 3, "surat-keterangan-umum")
    business = open_requests(staff, logins, 2, "surat-keterangan-usaha")
    open_requests(staff, logins, 1, "surat-keterangan-umum", "kenep")
    operator = user_id(services, "operator.grogol")
    with transaction(services.factory) as session:
        # Two share one moment: the id breaks the tie.
        same = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
        ids = [general[0]["id"], business[0]["id"]]
        session.execute(
            update(LetterRequest).where(LetterRequest.id.in_(ids)).values(updated_at=same)
        )
        expected = list(
            session.scalars(
                select(LetterRequest.id)
                .where(LetterRequest.created_by_id == operator)
                .order_by(LetterRequest.updated_at.desc(), LetterRequest.id.desc())
            )
        )
    assert len(expected) == 5
    assert own_pages(services, operator, limit=2) == expected
    assert own_pages(services, operator, limit=50) == expected
    # By letter type (part of its title, any case), by NIK prefix, by part of a name.
    business_ids = {r["id"] for r in business}
    assert set(own_pages(services, operator, "keterangan usaha")) == business_ids
    assert set(own_pages(services, operator, "USAHA")) == business_ids
    niks = logins.sample_niks[GROGOL]
    usaha_nik = LETTERS["surat-keterangan-usaha"](niks[:4])[0]["applicant"]
    general_nik = LETTERS["surat-keterangan-umum"](niks[:4])[0]["applicant"]
    general_ids = {r["id"] for r in general}
    for prefix in (usaha_nik, usaha_nik[:12], usaha_nik[:6]):
        wanted = business_ids | (general_ids if general_nik.startswith(prefix) else set())
        assert set(own_pages(services, operator, prefix)) == wanted, prefix
    with transaction(services.factory) as session:
        name = session.scalar(select(Resident.name).where(Resident.nik == usaha_nik))
    assert business_ids <= set(own_pages(services, operator, name[1:5].lower()))
    assert own_pages(services, operator, "tidak ada nama seperti ini") == []
    assert own_pages(services, operator, "%") == []
    for bad in ("3" * 17, "a\x00b", "x" * 101):
        with pytest.raises(InvalidInput) as caught:
            own_pages(services, operator, bad)
        assert "search" in caught.value.errors


def test_review_queue_pages_by_keyset_in_its_own_village(staff, services, logins):
    made = open_requests(staff, logins, 5, "surat-keterangan-umum")
    for request in made:
        staff.act("operator.grogol", request, "submit")
    kenep = open_requests(staff, logins, 1, "surat-keterangan-umum", "kenep")[0]
    staff.act("operator.kenep", kenep, "submit")
    with transaction(services.factory) as session:
        sekdes = session.scalar(select(User).where(User.username == "sekdes.grogol"))
        role = sekdes.role
        whole = [r.id for r in queues.queue(session, services.catalog, GROGOL, role)]
    assert sorted(whole) == sorted(r["id"] for r in made)
    paged: list[int] = []
    after = None
    with transaction(services.factory) as session:
        while True:
            page = queues.queue_page(session, services.catalog, GROGOL, role, after=after, limit=2)
            paged += [r.id for r in page.rows]
            if page.next_cursor is None:
                break
            after = page.next_cursor
    assert paged == whole  # oldest first, each once
    assert kenep["id"] not in paged
