"""The staff stumbles of issue 9 in Chromium, for a Desa (Grogol) and a Kelurahan (Kenep), at
360 px and 1366 px: titles that follow the village kind, the signing queue (purpose, DRAFT
preview, the sekdes's "a.n." notice, ticks kept after a wrong passphrase), one reason box and a
rejection that needs its confirmation, a returned request that says so with its reason, a
history that names people rather than accounts, and HTML 404 pages. Screenshots go to
test-artifacts/staff_stumbles/."""

from __future__ import annotations

import re

import pytest

from engine.bootstrap import DEMO_PASSWORD
from suratdesa.web import create_app
from tests.conftest import ARTIFACTS
from tests.letters import GROGOL, KENEP
from tests.test_staff_app import create_death_letter, do, sign_in
from tests.test_staff_stumbles import general_letter_at_signing

SHOTS = ARTIFACTS / "staff_stumbles"
# kind -> (slug, village code, the head's title, the secretary's title, the title never shown)
VILLAGES = {
    "desa": ("grogol", GROGOL, "Kepala Desa", "Sekretaris Desa", "Lurah"),
    "kelurahan": ("kenep", KENEP, "Lurah", "Sekretaris Kelurahan", "Kepala Desa"),
}
CASES = [(kind, width) for kind in VILLAGES for width in (360, 1366)]


def signed_in_page(browser, live_server, username: str, width: int):
    context = browser.new_context(locale="id-ID", viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server}/staf/masuk")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))
    return context, page


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def fits_the_screen(page) -> bool:
    """No sideways scrolling of the page itself (wide tables scroll inside their own box)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize(("kind", "width"), CASES)
def test_sekdes_signing_queue(live_server, browser, services, logins, kind, width):
    slug, code, head, secretary, wrong = VILLAGES[kind]
    app = create_app(services.settings)
    request_id = general_letter_at_signing(app, logins, slug, code, "Pengajuan beasiswa")
    context, page = signed_in_page(browser, live_server, f"sekdes.{slug}", width)
    assert secretary in page.inner_text("header")
    page.goto(f"{live_server}/staf/tandatangan")
    assert f"a.n. {head} " in page.inner_text("#on-behalf")
    assert "Pengajuan beasiswa" in page.inner_text("td.purpose")
    assert page.locator(f"a[href$='/permohonan/{request_id}/pratinjau.pdf']").count() == 1
    assert wrong not in page.inner_text("body")
    box = page.locator(f"input[name=req][value^='{request_id}:']")
    box.check()
    page.fill("input[name=passphrase]", "salah")
    page.click("button:has-text('Tandatangani')")
    page.wait_for_selector("p.error")
    assert page.locator(f"input[name=req][value^='{request_id}:']").is_checked()
    assert fits_the_screen(page)
    shot(page, f"sign-queue-{kind}-{width}")
    context.close()


@pytest.mark.parametrize(("kind", "width"), CASES)
def test_reject_needs_confirmation_and_return_shows_the_reason(
    live_server, browser, services, logins, kind, width
):
    slug, code, _head, _secretary, wrong = VILLAGES[kind]
    app = create_app(services.settings)
    niks = logins.sample_niks[code]
    operator = sign_in(app, f"operator.{slug}")
    to_reject = create_death_letter(operator, niks[0], niks[3])
    to_return = create_death_letter(operator, niks[1], niks[3])

    context, page = signed_in_page(browser, live_server, f"kasi.{slug}", width)
    page.goto(f"{live_server}/staf/permohonan/{to_reject}")
    assert page.locator("textarea[name=reason]").count() == 1  # one reason box for both
    page.fill("textarea[name=reason]", "Data tidak sesuai")
    page.click("button.reject")
    page.wait_for_selector(".field-error")
    assert "centang dulu kotak konfirmasi" in page.inner_text("body")
    assert page.input_value("textarea[name=reason]") == "Data tidak sesuai"  # kept
    shot(page, f"reject-unconfirmed-{kind}-{width}")
    page.check("input[name=confirm_reject]")
    page.click("button.reject")
    page.wait_for_url(re.compile(rf"/permohonan/{to_reject}"))
    page.wait_for_selector("text=Ditolak")
    assert wrong not in page.inner_text("body")
    assert fits_the_screen(page)
    shot(page, f"rejected-{kind}-{width}")
    context.close()

    kasi = sign_in(app, f"kasi.{slug}")
    assert do(kasi, to_return, "return", "NIK pelapor keliru").status_code == 303
    context, page = signed_in_page(browser, live_server, f"operator.{slug}", width)
    page.goto(f"{live_server}/staf/permohonan/{to_return}")
    body = page.inner_text("body")
    assert "Dikembalikan dengan alasan" in body and "NIK pelapor keliru" in body
    # the history names people, not accounts
    assert f"kasi.{slug}" not in body and f"operator.{slug}" not in body
    assert fits_the_screen(page)
    shot(page, f"returned-{kind}-{width}")
    context.close()


@pytest.mark.parametrize(("kind", "width"), CASES)
def test_titles_and_404_page(live_server, browser, kind, width):
    slug, _code, head, _secretary, wrong = VILLAGES[kind]
    context, page = signed_in_page(browser, live_server, f"head.{slug}", width)
    assert head in page.inner_text("header")
    assert wrong not in page.inner_text("body")
    response = page.goto(f"{live_server}/staf/permohonan/999999/tidak-ada")
    assert response.status == 404
    assert page.locator("h1").count() == 1
    assert page.locator("a[href$='/staf/beranda']").count() >= 1  # a way back
    assert head in page.inner_text("header")  # the page keeps the signed-in header
    assert fits_the_screen(page)
    shot(page, f"not-found-{kind}-{width}")
    context.close()
