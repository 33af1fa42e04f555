"""The regency admin's and the head's stumbles in Debian's Chromium, for a Desa (Grogol) and a
Kelurahan (Kenep), at 360 px and 1366 px: the village is picked by name from suggestions
that name the kecamatan (htmx search), the signing page says a wrong passphrase once, and
times are shown in WIB. Screenshots: test-artifacts/admin-<kind>-<width>-<step>.png."""

from __future__ import annotations

import re

import pytest

from engine.bootstrap import DEMO_PASSWORD
from engine.storage.db import transaction
from engine.storage.models import User
from suratdesa.web import create_app
from tests.conftest import ARTIFACTS
from tests.letters import GROGOL, KENEP
from tests.test_staff_stumbles import general_letter_at_signing

WIB_TIME = re.compile(r"\d{2}-\d{2}-\d{4} \d{2}\.\d{2} WIB")
# (kind, slug, code, what the admin types, the suggestion picked)
VILLAGES = [
    ("desa", "grogol", GROGOL, "Grogol", "Desa Grogol, Kec. Weru (33.11.01.2001)"),
    ("kelurahan", "kenep", KENEP, "Kenep", "Kelurahan Kenep, Kec. Sukoharjo (33.11.04.1001)"),
]


def shot(page, kind: str, width: int, step: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{kind}-{width}-{step}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/staf/masuk")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))


@pytest.mark.parametrize("width", [360, 1366])
@pytest.mark.parametrize(("kind", "slug", "code", "typed", "choice"), VILLAGES)
def test_admin_picks_the_village_by_name(
    live_server, browser, services, width, kind, slug, code, typed, choice
):
    context = browser.new_context(locale="id-ID", viewport={"width": width, "height": 800})
    page = context.new_page()
    sign_in(page, live_server, "admin")
    page.goto(f"{live_server}/staf/admin/pengguna")
    assert page.locator("input[name=village_code]").count() == 0  # no code to type
    picker = page.locator("#village-input")
    picker.press_sequentially(typed.lower()[:4])
    # htmx narrows the suggestions from the server: every one names its kecamatan
    page.wait_for_function(
        "n => document.querySelectorAll('#village-list option').length <= n", arg=20
    )
    options = page.locator("#village-list option").evaluate_all("os => os.map(o => o.value)")
    assert choice in options, options
    assert all(", Kec. " in option for option in options)
    box = picker.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width  # fits a 360 px phone
    shot(page, kind, width, "picker")
    username = f"op2.{slug}.{width}"
    page.fill("input[name=username]", username)
    page.fill("input[name=full_name]", f"Operator Dua {typed}")
    page.select_option("select[name=role]", "operator")
    picker.fill(choice)  # what picking the suggestion puts in the field
    page.fill("#new-user input[name=password]", "sandi-awal-123")
    page.click("#new-user button")
    page.wait_for_url(re.compile(r"/staf/admin/pengguna$"))
    row = page.locator("tr", has_text=username)
    assert choice.rsplit(" (", 1)[0] in row.inner_text()
    with transaction(services.factory) as session:
        created = session.query(User).filter_by(username=username).one()
        assert created.village_code == code
    # the signer certificates' validity is shown in WIB
    head_row = page.locator("tr", has_text=f"head.{slug}")
    assert WIB_TIME.search(head_row.inner_text())
    shot(page, kind, width, "created")

    # a name two villages share is refused with both choices, kecamatan beside
    if kind == "desa":
        page.fill("input[name=username]", f"op3.{slug}.{width}")
        page.fill("input[name=full_name]", "Operator Tiga")
        picker.fill("Grogol")
        page.fill("#new-user input[name=password]", "sandi-awal-123")
        page.click("#new-user button")
        alert = page.locator("p.error").inner_text()
        assert "Kec. Weru" in alert and "Kec. Grogol" in alert
        shot(page, kind, width, "ambiguous")
    context.close()


@pytest.mark.parametrize("width", [360, 1366])
@pytest.mark.parametrize(("kind", "slug", "code", "typed", "choice"), VILLAGES)
def test_wrong_passphrase_is_said_once_and_times_are_wib(
    live_server, browser, services, logins, width, kind, slug, code, typed, choice
):
    app = create_app(services.settings)
    request_id = general_letter_at_signing(app, logins, slug, code, "Melamar kerja")
    context = browser.new_context(locale="id-ID", viewport={"width": width, "height": 800})
    page = context.new_page()
    sign_in(page, live_server, f"head.{slug}")
    page.goto(f"{live_server}/staf/tandatangan")
    row = page.locator("tr", has=page.locator(f"input[name=req][value^='{request_id}:']"))
    assert WIB_TIME.search(row.inner_text())
    row.locator("input[name=req]").check()
    page.fill("input[name=passphrase]", "salah-sekali")
    page.click("button:has-text('Tandatangani')")
    page.wait_for_selector("p.error")
    text = page.inner_text("main")
    assert text.count("Sisa percobaan") == 1, text
    assert page.locator("#signer-tries").count() == 0
    assert page.locator("p.error, p.notice#signer-tries").count() == 1
    shot(page, kind, width, "wrong-passphrase")
    page.goto(f"{live_server}/staf/permohonan/{request_id}")
    history = page.inner_text("ol.timeline")
    assert WIB_TIME.search(history) and "WIB WIB" not in history and "UTC" not in history
    shot(page, kind, width, "history")
    context.close()
