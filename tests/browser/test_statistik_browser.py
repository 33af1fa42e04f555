"""/statistik in Chromium at 360 px and 1366 px: the charts are drawn (SVG, no script), every
chart has its table, nothing spills sideways on a phone, and the filter form works.
Screenshots: test-artifacts/statistik-<width>.png."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from suratdesa.web import create_app
from tests.conftest import ARTIFACTS
from tests.letters import Staff, issue


@pytest.mark.parametrize("width", [360, 1366])
def test_statistik_page_at_phone_and_desktop_width(
    live_server, browser, services, logins, passphrase, width
):
    staff = Staff(TestClient(create_app(services.settings)), logins)
    for _ in range(5):
        issue(staff, "surat-keterangan-umum", passphrase)
    issue(staff, "surat-keterangan-domisili", passphrase, "kenep")
    context = browser.new_context(locale="id-ID", viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server}/statistik")
    assert page.inner_text("h1").startswith("Statistik layanan surat")
    assert page.inner_text("#total") == "5"  # 6 letters, rounded to the nearest 5
    assert page.locator("svg.chart").count() >= 4
    assert page.locator("svg.chart rect").count() >= 3  # bars for the month, Weru, the type
    assert "<5" in page.inner_text("#t-jenis")  # the single domisili letter
    for table in ("#t-bulan", "#t-kecamatan", "#t-jenis", "#t-saluran", "#t-waktu"):
        assert page.locator(f"{table} caption").count() == 1
        assert page.locator(f"{table} th[scope=col]").count() >= 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"statistik-{width}.png"), full_page=True)
    # Nothing wider than the screen: no sideways scrolling on a phone.
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => "
        "e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert overflow <= 0, (overflow, wide)
    chart_width = page.locator("svg.chart").first.bounding_box()["width"]
    assert 0 < chart_width <= width

    page.select_option("#kecamatan", label="Weru")
    page.click("button:has-text('Tampilkan')")
    page.wait_for_url("**kecamatan=33.11.01**")
    assert "Kecamatan Weru" in page.inner_text("h1")
    assert page.locator("#t-kecamatan").count() == 0
    assert "Grogol" in page.inner_text("#t-desa")
    context.close()
