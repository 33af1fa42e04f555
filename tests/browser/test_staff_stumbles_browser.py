"""The signing queue in Chromium for a kelurahan, at 360 px and 1366 px: the purpose and a
DRAFT preview per letter, the sekdes's "a.n. Lurah ..." notice, and ticks kept after a wrong
passphrase. Screenshots go to test-artifacts/staff_stumbles/."""

from __future__ import annotations

import re

import pytest

from engine.bootstrap import DEMO_PASSWORD
from suratdesa.web import create_app
from tests.conftest import ARTIFACTS
from tests.letters import KENEP
from tests.test_staff_stumbles import general_letter_at_signing

SHOTS = ARTIFACTS / "staff_stumbles"


@pytest.mark.parametrize("width", [360, 1366])
def test_sekdes_signing_queue_in_a_kelurahan(live_server, browser, services, logins, width):
    app = create_app(services.settings)
    request_id = general_letter_at_signing(app, logins, "kenep", KENEP, "Pengajuan beasiswa")
    context = browser.new_context(locale="id-ID", viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server}/staf/masuk")
    page.fill("input[name=username]", "sekdes.kenep")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))
    page.goto(f"{live_server}/staf/tandatangan")
    assert "a.n. Lurah Kenep" in page.inner_text("#on-behalf")
    assert "Pengajuan beasiswa" in page.inner_text("td.purpose")
    assert page.locator(f"a[href$='/permohonan/{request_id}/pratinjau.pdf']").count() == 1
    assert "Kepala Desa" not in page.content()
    box = page.locator(f"input[name=req][value^='{request_id}:']")
    box.check()
    page.fill("input[name=passphrase]", "salah")
    page.click("button:has-text('Tandatangani')")
    page.wait_for_selector("p.error")
    assert page.locator(f"input[name=req][value^='{request_id}:']").is_checked()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"sign-queue-kelurahan-{width}.png"), full_page=True)
    context.close()
