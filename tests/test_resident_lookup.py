"""One rule for who may look up which resident (engine.people.residents.lookup_for /
lookup_subject_for), applied by the staff app's live NIK look-up and the JSON API alike: staff
read their own village's residents; a resident of another village answers like an unknown NIK,
with nothing personal."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.dates import format_tanggal
from engine.errors import NotFound
from engine.people.residents import ELSEWHERE, lookup_for
from engine.people.users import Actor
from engine.storage.db import transaction
from engine.storage.models import Resident, User
from suratdesa.web import create_app
from tests.letters import GROGOL, KENEP, Staff
from tests.test_staff_app import P, sign_in

UNKNOWN = "3311015505909999"  # well-formed, not registered


@pytest.fixture
def app(settings):
    return create_app(settings)


def resident(services, village: str, sex: str | None = None) -> Resident:
    with transaction(services.factory) as session:
        query = select(Resident).where(Resident.village_code == village, Resident.alive)
        if sex:
            query = query.where(Resident.sex == sex)
        found = session.scalars(query.order_by(Resident.id).limit(1)).one()
        session.expunge(found)
        return found


def personal_bits(r: Resident) -> list[str]:
    return [
        r.name,
        r.birth_place,
        format_tanggal(r.birth_date),
        r.birth_date.isoformat(),
        r.address,
        r.occupation,
    ]


def assert_nothing_personal(text: str, r: Resident) -> None:
    for bit in personal_bits(r):
        assert bit not in text, bit


def actor(services, username: str) -> Actor:
    with transaction(services.factory) as session:
        return Actor.of(session.scalar(select(User).where(User.username == username)))


def test_api_cross_village_lookup_shows_nothing_and_answers_like_an_unknown_nik(
    app, logins, services
):
    staff = Staff(TestClient(app), logins)
    other = resident(services, KENEP)
    r = staff.get("operator.grogol", f"/api/residents/{other.nik}")
    assert r.status_code == 404
    assert_nothing_personal(r.text, other)
    unknown = staff.get("operator.grogol", f"/api/residents/{UNKNOWN}")
    assert unknown.status_code == 404
    assert r.json()["detail"].replace(other.nik, "X") == unknown.json()["detail"].replace(
        UNKNOWN, "X"
    )
    # Every role of the village gets the same answer; their own residents are readable.
    own = resident(services, GROGOL)
    for user in ("operator.grogol", "kasi.grogol", "sekdes.grogol", "head.grogol"):
        assert staff.get(user, f"/api/residents/{other.nik}").status_code == 404
        ok = staff.get(user, f"/api/residents/{own.nik}")
        assert ok.status_code == 200 and ok.json()["name"] == own.name
    assert staff.get("operator.kenep", f"/api/residents/{other.nik}").json()["name"] == other.name


def test_staff_cross_village_lookup_shows_nothing_personal(app, services):
    op = sign_in(app, "operator.grogol")
    other = resident(services, KENEP)
    own = resident(services, GROGOL)

    def lookup(workflow: str, subject: str, nik: str):
        r = op.get(f"{P}/penduduk", params={"jenis": workflow, "subjek": subject, "nik": nik})
        assert r.status_code == 200
        return r.text

    # The letter's own subject (first subject) from another village: exactly as unknown.
    text = lookup("surat-keterangan-umum", "applicant", other.nik)
    assert_nothing_personal(text, other)
    assert "tidak terdaftar di desa/kelurahan Anda" in text
    unknown = lookup("surat-keterangan-umum", "applicant", UNKNOWN)
    assert text.replace(other.nik, "X") == unknown.replace(UNKNOWN, "X")
    # A subject the workflow lets live elsewhere (a birth letter's father): registered, but
    # nothing personal shown.
    father = resident(services, KENEP, sex="L")
    text = lookup("surat-keterangan-kelahiran", "father", father.nik)
    assert_nothing_personal(text, father)
    assert ELSEWHERE in text
    # The village's own resident: the data the operator needs.
    text = lookup("surat-keterangan-umum", "applicant", own.nik)
    assert own.name in text and format_tanggal(own.birth_date) in text


def test_engine_rule(services):
    other = resident(services, KENEP)
    grogol, kenep, admin = (
        actor(services, u) for u in ("operator.grogol", "operator.kenep", "admin")
    )
    with transaction(services.factory) as session:
        with pytest.raises(NotFound):
            lookup_for(session, grogol, other.nik)
        assert lookup_for(session, kenep, other.nik).name == other.name
        assert lookup_for(session, admin, other.nik).name == other.name
        with pytest.raises(NotFound):
            lookup_for(session, Actor.system("cli:x"), other.nik)
