"""Revoking and replacing a letter in the staff app (issue 9, item 3): the same engine calls as
the JSON API, a required reason, a confirmation step, CSRF, the engine's rule on who may, and
the status with its reason on the request page afterwards. Also the paged lists: "Permohonan
saya" with its search box and the review queue, with a "next page" link."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.requests import queues
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, Letter, LetterRequest
from suratdesa.web import create_app
from tests.letters import GROGOL, LETTERS, Staff, issue
from tests.test_staff_app import P, page_csrf, sign_in

ROW_ID = r'<td><a href="/staf/permohonan/(\d+)">\1</a>'  # a list row's first cell


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def letter(app, logins, passphrase, services) -> dict:
    issued = issue(Staff(TestClient(app), logins), "surat-keterangan-umum", passphrase)
    with transaction(services.factory) as session:
        issued["request_id"] = session.scalar(
            select(Letter.request_id).where(Letter.number == issued["number"])
        )
    return issued


def state(services, number: str) -> tuple[str, str | None, int]:
    with transaction(services.factory) as session:
        found = session.execute(
            select(Letter.status, Letter.revoke_reason).where(Letter.number == number)
        ).one()
        events = session.scalar(select(func.count()).select_from(AuditEvent))
    return found.status, found.revoke_reason, events


def post(client, request_id: int, kind: str, reason: str, confirm: bool = False, csrf=None):
    data = {"csrf": page_csrf(client) if csrf is None else csrf, "reason": reason}
    if confirm:
        data["konfirmasi"] = "1"
    return client.post(f"{P}/permohonan/{request_id}/surat/{kind}", data=data)


def test_head_revokes_with_a_reason_after_confirming(app, services, letter):
    head = sign_in(app, "head.grogol")
    rid = letter["request_id"]
    page = head.get(f"{P}/permohonan/{rid}")
    assert 'id="letter-manage-form"' in page.text and "Cabut surat" in page.text
    assert "Ganti surat" in page.text
    before = state(services, letter["number"])
    # An empty reason: a clear error in Indonesian, nothing changes.
    for blank in ("", "   "):
        r = post(head, rid, "cabut", blank)
        assert r.status_code == 422
        assert "Alasan wajib diisi" in r.text and 'id="error-reason"' in r.text
        r = post(head, rid, "cabut", blank, confirm=True)
        assert r.status_code == 422 and "Alasan wajib diisi" in r.text
    assert state(services, letter["number"]) == before
    # The first step only asks for confirmation.
    r = post(head, rid, "cabut", "Nama pemohon salah ketik")
    assert r.status_code == 200 and 'id="letter-confirm"' in r.text
    assert "Nama pemohon salah ketik" in r.text and 'name="konfirmasi" value="1"' in r.text
    assert state(services, letter["number"]) == before
    r = post(head, rid, "cabut", "Nama pemohon salah ketik", confirm=True)
    assert r.status_code == 303 and r.headers["location"].startswith(f"{P}/permohonan/{rid}")
    status, reason, events = state(services, letter["number"])
    assert (status, reason, events) == ("revoked", "Nama pemohon salah ketik", before[2] + 1)
    page = head.get(r.headers["location"])
    assert 'id="letter-status"' in page.text and "Surat ini <b>dicabut</b>" in page.text
    assert "Nama pemohon salah ketik" in page.text
    assert 'id="letter-manage-form"' not in page.text
    assert "Surat dicabut" in page.text  # the timeline, in Indonesian
    # Again: the engine refuses (409), the page says so, nothing changes.
    r = post(head, rid, "cabut", "Lagi", confirm=True)
    assert r.status_code == 409 and "sudah tidak berlaku" in r.text
    assert state(services, letter["number"])[2] == events
    # The archive shows the status in Indonesian.
    archive_page = head.get(f"{P}/arsip", params={"nomor": letter["number"]})
    assert "Dicabut" in archive_page.text and ">revoked<" not in archive_page.text


def test_revoke_needs_the_forms_csrf_token(app, services, letter):
    head = sign_in(app, "head.grogol")
    before = state(services, letter["number"])
    for csrf in ("", "palsu"):
        r = post(head, letter["request_id"], "cabut", "Alasan", confirm=True, csrf=csrf)
        assert r.status_code == 403
        r = post(head, letter["request_id"], "ganti", "Alasan", confirm=True, csrf=csrf)
        assert r.status_code == 403
    assert state(services, letter["number"]) == before


@pytest.mark.parametrize(
    "who, code", [("operator.grogol", 403), ("sekdes.grogol", 403), ("head.kenep", 404)]
)
def test_only_whom_the_engine_allows_may_revoke_or_replace(app, services, letter, who, code):
    client = sign_in(app, who)
    rid = letter["request_id"]
    if code == 403:
        page = client.get(f"{P}/permohonan/{rid}")
        assert 'id="letter-manage-form"' not in page.text
    before = state(services, letter["number"])
    for kind in ("cabut", "ganti"):
        assert post(client, rid, kind, "Coba", confirm=True).status_code == code
        assert post(client, rid, kind, "Coba").status_code == code
    assert state(services, letter["number"]) == before


def test_regency_admin_may_revoke(app, services, letter):
    admin = sign_in(app, "admin")
    rid = letter["request_id"]
    assert 'id="letter-manage-form"' in admin.get(f"{P}/permohonan/{rid}").text
    r = post(admin, rid, "cabut", "Permintaan inspektorat", confirm=True)
    assert r.status_code == 303
    assert state(services, letter["number"])[:2] == ("revoked", "Permintaan inspektorat")


def test_head_starts_a_replacement_after_confirming(app, services, letter):
    head = sign_in(app, "head.grogol")
    rid = letter["request_id"]
    r = post(head, rid, "ganti", "")
    assert r.status_code == 422 and "Alasan wajib diisi" in r.text
    r = post(head, rid, "ganti", "Keperluan keliru")
    assert r.status_code == 200 and 'id="letter-confirm"' in r.text
    with transaction(services.factory) as session:
        assert session.scalar(select(func.count()).select_from(LetterRequest)) == 1
    r = post(head, rid, "ganti", "Keperluan keliru", confirm=True)
    assert r.status_code == 303
    new_id = int(re.search(r"/permohonan/(\d+)", r.headers["location"]).group(1))
    with transaction(services.factory) as session:
        new = session.get(LetterRequest, new_id)
        old = session.scalar(select(Letter).where(Letter.request_id == rid))
        assert new.replaces_letter_id == old.id and new.state == "draft"
        assert old.status == "active"  # valid until the corrected letter is signed
    page = head.get(r.headers["location"])
    assert "Penggantian surat dimulai" in page.text and "Keperluan keliru" in page.text
    # A second replacement while the first is open: refused, said on the page.
    r = post(head, rid, "ganti", "Lagi", confirm=True)
    assert r.status_code == 409 and "sudah diajukan" in r.text


def test_unknown_letter_action_and_request_without_letter_are_404(app, logins):
    head = sign_in(app, "head.grogol")
    operator = Staff(TestClient(app), logins)
    subjects, data = LETTERS["surat-keterangan-umum"](logins.sample_niks[GROGOL][:4])
    r = operator.post(
        "operator.grogol",
        "/api/requests",
        {"workflow_id": "surat-keterangan-umum", "subjects": subjects, "data": data},
    )
    rid = r.json()["id"]
    assert head.get(f"{P}/permohonan/{rid}/surat/cabut").status_code == 404
    assert post(head, rid, "cabut", "Alasan", confirm=True).status_code == 404
    assert post(head, rid, "hapus", "Alasan", confirm=True).status_code == 404


# --------------------------------------------------------------------------- paged lists


def test_my_requests_pages_and_searches(app, logins, monkeypatch):
    monkeypatch.setattr(queues, "PAGE_SIZE", 2)
    staff = Staff(TestClient(app), logins)
    niks = logins.sample_niks[GROGOL]
    made = {}
    for workflow_id in ("surat-keterangan-umum", "surat-keterangan-usaha"):
        subjects, data = LETTERS[workflow_id](niks[:4])
        for _ in range(3):
            r = staff.post(
                "operator.grogol",
                "/api/requests",
                {"workflow_id": workflow_id, "subjects": subjects, "data": data},
            )
            made.setdefault(workflow_id, []).append(r.json()["id"])
    operator = sign_in(app, "operator.grogol")
    seen: list[int] = []
    url = f"{P}/permohonan"
    while url:
        page = operator.get(url)
        assert page.status_code == 200
        assert 'id="list-search"' in page.text
        seen += [int(i) for i in re.findall(ROW_ID, page.text)]
        found = re.search(r'<a href="([^"]+)" rel="next"', page.text)
        url = P + "/permohonan" + found.group(1).replace("&amp;", "&") if found else None
    assert sorted(seen) == sorted(made["surat-keterangan-umum"] + made["surat-keterangan-usaha"])
    assert len(seen) == len(set(seen)) == 6
    r = operator.get(f"{P}/permohonan", params={"cari": "usaha"})
    ids = [int(i) for i in re.findall(ROW_ID, r.text)]
    assert set(ids) <= set(made["surat-keterangan-usaha"]) and len(ids) == 2
    assert 'rel="next"' in r.text and "cari=usaha" in r.text
    r = operator.get(f"{P}/permohonan", params={"cari": "3" * 17})
    assert r.status_code == 422 and 'id="error-cari"' in r.text
    r = operator.get(f"{P}/permohonan", params={"setelah": "sampah"})
    assert r.status_code == 422 and 'id="error-setelah"' in r.text


def test_review_queue_has_a_next_page(app, logins, monkeypatch):
    monkeypatch.setattr(queues, "PAGE_SIZE", 2)
    staff = Staff(TestClient(app), logins)
    subjects, data = LETTERS["surat-keterangan-umum"](logins.sample_niks[GROGOL][:4])
    for _ in range(3):
        r = staff.post(
            "operator.grogol",
            "/api/requests",
            {"workflow_id": "surat-keterangan-umum", "subjects": subjects, "data": data},
        )
        staff.act("operator.grogol", r.json(), "submit")
    sekdes = sign_in(app, "sekdes.grogol")
    first = sekdes.get(f"{P}/antrean")
    assert first.status_code == 200 and "(3)" in first.text
    link = re.search(r'<a href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    second = sekdes.get(f"{P}/antrean{link}")
    ids = re.findall(ROW_ID, first.text + second.text)
    assert len(ids) == len(set(ids)) == 3
    assert 'rel="next"' not in second.text and 'id="first-page"' in second.text
