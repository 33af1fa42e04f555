"""The regency admin edits a letter type in Debian's Chromium: changes the template's wording,
checks it (a mistake is named with its line), previews the DRAFT PDF, publishes; a request
started before keeps the old wording, one started after prints the new; rolling back to the
file's version brings the old wording back. Screenshots: test-artifacts/letter_types/."""

from __future__ import annotations

import re

import httpx

from engine.bootstrap import DEMO_PASSWORD
from tests.conftest import ARTIFACTS
from tests.letters import Staff, pdf_text
from tests.test_letter_type_editor import MARKER, UMUM, finish, reworded, start

SHOTS = ARTIFACTS / "letter_types"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/staf/masuk")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))


def test_admin_changes_previews_publishes_and_rolls_back(
    live_server, browser, services, logins, passphrase, tmp_path
) -> None:
    api = Staff(httpx.Client(base_url=live_server, timeout=60), logins)
    version = services.catalog.current(UMUM).version
    before = start(api)  # a request started before the change

    context = browser.new_context(locale="id-ID", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, live_server, "admin")
    page.goto(f"{live_server}/staf/admin/alur")
    page.click(f"#edit-{UMUM}")
    page.wait_for_selector("textarea#template")
    template = page.input_value("textarea#template")
    yaml_text = page.input_value("textarea#yaml")

    # a mistake first: the check names the line
    page.fill("textarea#yaml", yaml_text.replace("role: head", "role: lurah"))
    page.click("#check")
    problems = page.inner_text("#problems")
    line = next(i for i, x in enumerate(yaml_text.splitlines(), 1) if "role: head" in x)
    assert f"baris {line}" in problems and "lurah" in problems, problems
    shot(page, "01-problem-with-line")

    # the new wording, with the version raised
    page.fill("textarea#yaml", yaml_text.replace(f"version: {version}", f"version: {version + 1}"))
    page.fill("textarea#template", reworded(template))
    page.click("#check")
    page.wait_for_selector("#no-problems")
    shot(page, "02-no-problems")

    # Chromium shows the PDF in its viewer; the route keeps the bytes the server sent
    sent: dict = {}

    def keep(route) -> None:
        answer = route.fetch()
        sent.update(body=answer.body(), type=answer.headers["content-type"])
        route.fulfill(response=answer)

    context.route("**/staf/admin/alur/pratinjau", keep)
    with context.expect_page() as tab:
        page.click("#preview")  # opens in a new tab
    tab.value.wait_for_load_state()
    assert sent["type"] == "application/pdf"
    text = pdf_text(sent["body"], tmp_path)
    assert MARKER in text and "DRAFT" in text

    page.fill("#note", "Kalimat baru di akhir isi surat")
    page.click("#publish")
    page.wait_for_selector("#published")
    shot(page, "03-published")
    assert services.catalog.current(UMUM).version == version + 1
    rows = page.inner_text("#versions")
    assert f"v{version + 1}" in rows and "Kalimat baru di akhir isi surat" in rows

    after = start(api)
    assert MARKER not in pdf_text(finish(api, before, passphrase), tmp_path)
    assert MARKER in pdf_text(finish(api, after, passphrase), tmp_path)

    # roll back to the file's version, with a confirmation and a reason
    page.click("#version-berkas a.rollback")
    page.wait_for_selector("#rollback-form")
    shot(page, "04-confirm-rollback")
    page.fill("textarea[name=reason]", "Kembali ke kalimat lama")
    page.click("#confirm-rollback")
    page.wait_for_selector("#rolled-back")
    shot(page, "05-rolled-back")
    newest = page.locator("#versions tbody tr").first.inner_text()
    assert f"v{version}" in newest and "dikembalikan" in newest and "berlaku" in newest
    assert page.locator("#version-berkas a.rollback").count() == 0  # it is the text in force
    assert services.catalog.current(UMUM).version == version

    rolled = start(api)
    assert MARKER not in pdf_text(finish(api, rolled, passphrase), tmp_path)
    context.close()
