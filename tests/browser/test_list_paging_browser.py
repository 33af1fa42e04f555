"""The signing queue in pages, in Chromium: "Pilih semua" ticks only this page's letters, a
wrong passphrase on page 2 brings page 2 back with its tick, and the page says ticks count on
this page only. Screenshots go to test-artifacts/list_paging/."""

from __future__ import annotations

import re

from engine.bootstrap import DEMO_PASSWORD
from engine.requests import queues
from suratdesa.web import create_app
from tests.conftest import ARTIFACTS
from tests.letters import GROGOL
from tests.test_staff_stumbles import general_letter_at_signing

SHOTS = ARTIFACTS / "list_paging"


def test_signing_queue_pages_keep_ticks_per_page(live_server, page, services, logins, monkeypatch):
    monkeypatch.setattr(queues, "PAGE_SIZE", 2)
    app = create_app(services.settings)
    made = [
        general_letter_at_signing(app, logins, "grogol", GROGOL, f"Keperluan {i}") for i in range(3)
    ]
    page.goto(f"{live_server}/staf/masuk")
    page.fill("input[name=username]", "head.grogol")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))
    page.goto(f"{live_server}/staf/tandatangan")
    assert "(3)" in page.inner_text("h1")
    assert "halaman ini" in page.inner_text("#ticks-per-page")
    page.check("input[data-check-all=req]")
    assert page.locator("input[name=req]:checked").count() == 2  # this page's two only

    page.click("#next-page")
    page.wait_for_selector("#first-page")
    boxes = page.locator("input[name=req]")
    assert boxes.count() == 1 and page.locator("input[name=req]:checked").count() == 0
    value = boxes.first.get_attribute("value")
    assert int(value.split(":")[0]) in made
    boxes.first.check()
    page.fill("input[name=passphrase]", "salah")
    page.click("button:has-text('Tandatangani')")
    page.wait_for_selector("p.error")
    assert "Tidak ada surat yang ditandatangani" in page.inner_text("p.error")
    again = page.locator("input[name=req]")
    assert again.count() == 1 and again.first.get_attribute("value") == value  # still page 2
    assert again.first.is_checked()
    assert page.locator("#first-page").count() == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "sign-queue-page-2.png"), full_page=True)
