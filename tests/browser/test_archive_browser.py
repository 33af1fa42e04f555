"""Finding and managing letters in Chromium (issue 9, item 3), for a Desa (Grogol) and a
Kelurahan (Kenep) at 360 px and 1366 px: the operator finds a letter in the archive by part of
its number and pages through "Permohonan saya"; the head revokes the letter with a required
reason and a confirmation, and the page shows it revoked with the reason. Letters and requests
are made through the API; the browser does only what the user does. Screenshots:
test-artifacts/archive-<kind>-<width>-<step>.png."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.bootstrap import DEMO_PASSWORD
from engine.requests import queues
from engine.storage.db import transaction
from engine.storage.models import Letter
from suratdesa.web import create_app
from tests.conftest import ARTIFACTS
from tests.letters import GROGOL, KENEP, LETTERS, Staff, issue

VILLAGES = {"desa": ("grogol", GROGOL), "kelurahan": ("kenep", KENEP)}


def sign_in(browser, base: str, username: str, width: int):
    context = browser.new_context(locale="id-ID", viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(f"{base}/staf/masuk")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))
    return context, page


def shot(page, kind: str, width: int, step: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"archive-{kind}-{width}-{step}.png"), full_page=True)


def row_ids(page) -> list[str]:
    return [a.inner_text() for a in page.locator("table.list tbody tr td:first-child a").all()]


@pytest.mark.parametrize("width", [360, 1366])
@pytest.mark.parametrize("kind", ["desa", "kelurahan"])
def test_find_page_and_revoke_in_the_browser(
    live_server, browser, services, logins, passphrase, monkeypatch, kind, width
):
    slug, code = VILLAGES[kind]
    monkeypatch.setattr(queues, "PAGE_SIZE", 2)  # three requests make two pages
    staff = Staff(TestClient(create_app(services.settings)), logins)
    letter = issue(staff, "surat-keterangan-umum", passphrase, slug)
    subjects, data = LETTERS["surat-keterangan-domisili"](logins.sample_niks[code][:4])
    for _ in range(2):
        r = staff.post(
            f"operator.{slug}",
            "/api/requests",
            {"workflow_id": "surat-keterangan-domisili", "subjects": subjects, "data": data},
        )
        assert r.status_code == 201, r.text
    with transaction(services.factory) as session:
        request_id = session.scalar(
            select(Letter.request_id).where(Letter.number == letter["number"])
        )
    number = letter["number"]
    part = "/" + "/".join(number.split("/")[-2:])  # "/XI/2026"

    # The operator finds the letter by part of its number, and pages "Permohonan saya".
    context, page = sign_in(browser, live_server, f"operator.{slug}", width)
    page.click("nav a:has-text('Arsip')")
    page.fill("input[name=nomor]", part)
    page.click("form.filters button:has-text('Cari')")
    page.wait_for_url(re.compile(r"nomor="))
    assert number in row_ids(page)
    shot(page, kind, width, "1-search")
    page.click("nav a:has-text('Permohonan saya')")
    first = row_ids(page)
    assert len(first) == 2
    page.click("#next-page")
    page.wait_for_url(re.compile(r"setelah="))
    second = row_ids(page)
    assert len(second) == 1 and not set(first) & set(second)
    assert str(request_id) in first + second
    shot(page, kind, width, "2-paging")
    context.close()

    # The head revokes it: a reason is required, then a confirmation.
    context, page = sign_in(browser, live_server, f"head.{slug}", width)
    page.click("nav a:has-text('Arsip')")
    page.fill("input[name=nomor]", number.split("/")[1])
    page.click("form.filters button:has-text('Cari')")
    page.wait_for_url(re.compile(r"nomor="))
    page.click(f"table.list a:has-text('{number}')")
    page.wait_for_url(re.compile(rf"/permohonan/{request_id}$"))
    page.click("#revoke-letter")
    page.wait_for_selector("#error-reason")
    assert "Alasan wajib diisi" in page.inner_text("#error-reason")
    shot(page, kind, width, "3-reason-required")
    page.fill("textarea[name=reason]", "Nama pemohon salah ketik")
    page.click("button:has-text('Lanjutkan')")
    page.wait_for_selector("#letter-confirm")
    assert "Nama pemohon salah ketik" in page.inner_text("#confirm-reason")
    shot(page, kind, width, "4-confirm")
    page.click("#confirm-letter-action")
    page.wait_for_selector("#letter-status-reason")
    assert "Surat ini dicabut" in page.inner_text("#letter-status")
    assert page.inner_text("#letter-status-reason") == "Nama pemohon salah ketik"
    assert page.locator("#letter-manage-form").count() == 0
    shot(page, kind, width, "5-revoked")
    context.close()
    with transaction(services.factory) as session:
        status = session.scalar(select(Letter.status).where(Letter.number == number))
    assert status == "revoked"
