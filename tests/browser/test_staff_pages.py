"""The staff app in Chromium beyond the main flow: the core path with JavaScript off (every form
is a plain POST), a 360 px wide phone (no sideways scrolling), and the weight of each main page's
first load. Screenshots go to test-artifacts/staff_pages/."""

from __future__ import annotations

import re

import pytest

from engine.bootstrap import DEMO_PASSWORD
from engine.people.users import Actor, get_user
from engine.requests.letter_requests import act, create_request
from engine.storage.db import transaction
from tests.conftest import ARTIFACTS
from tests.letters import GROGOL

SHOTS = ARTIFACTS / "staff_pages"
MAX_FIRST_LOAD = 100 * 1024
UMUM = "surat-keterangan-umum"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def context_for(browser, **options):
    return browser.new_context(locale="id-ID", **options)


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/staf/masuk")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))


def request_at_review(services, logins) -> int:
    with transaction(services.factory) as session:
        operator = Actor.of(get_user(session, "operator.grogol"))
        req = create_request(
            session,
            services.catalog,
            operator,
            UMUM,
            {"applicant": logins.sample_niks[GROGOL][1]},
            {"keperluan": "Mendaftar sekolah anak"},
        )
        act(session, services.catalog, operator, req.id, "submit", version=req.version)
        return req.id


def test_core_path_without_javascript(live_server, browser, logins):
    context = context_for(
        browser, java_script_enabled=False, viewport={"width": 1024, "height": 800}
    )
    page = context.new_page()
    try:
        sign_in(page, live_server, "operator.grogol")
        page.goto(f"{live_server}/staf/baru")
        page.select_option("select[name=jenis]", UMUM)
        page.click("button:has-text('Pilih')")  # the <noscript> button: no onchange without JS
        page.wait_for_selector("form#new-request")
        nik = logins.sample_niks[GROGOL][0]
        page.fill("input[name=subject_applicant]", nik)
        page.fill("textarea[name=field_keperluan]", "Melamar pekerjaan")
        page.click("button:has-text('Simpan dan ajukan')")
        page.wait_for_url(re.compile(r"/staf/permohonan/\d+\?ok=submit"))
        shot(page, "nojs-01-submitted")
        assert "Diajukan" in page.inner_text("p.ok")
        assert nik in page.inner_text("main")
        assert "Pemeriksaan Sekretaris Desa" in page.inner_text("#state")

        # A mistake comes back as a page with the message and what was typed.
        page.goto(f"{live_server}/staf/baru?jenis={UMUM}")
        page.fill("input[name=subject_applicant]", nik[:-1] + "x")
        page.fill("textarea[name=field_keperluan]", "Tetap di sini")
        page.click("button:has-text('Simpan dan ajukan')")
        page.wait_for_selector("p.error")
        assert page.input_value("textarea[name=field_keperluan]") == "Tetap di sini"
        shot(page, "nojs-02-mistake")
        page.click("header button:has-text('Keluar')")
        page.wait_for_url(re.compile(r"/staf/masuk"))
    finally:
        context.close()


def test_phone_width_has_no_sideways_scroll(live_server, browser, services, logins):
    request_id = request_at_review(services, logins)
    context = context_for(browser, viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, live_server, "operator.grogol")
        for name, path in (
            ("home", "/staf/beranda"),
            ("new-letter", f"/staf/baru?jenis={UMUM}"),
            ("request", f"/staf/permohonan/{request_id}"),
        ):
            page.goto(live_server + path)
            page.wait_for_load_state("load")
            shot(page, f"360-{name}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{name}: {width}px wide"
    finally:
        context.close()


FIRST_LOAD_JS = """() => {
  const entries = [...performance.getEntriesByType('navigation'),
                   ...performance.getEntriesByType('resource')];
  return entries.map(e => [e.name, e.transferSize, e.encodedBodySize]);
}"""


@pytest.mark.parametrize(
    ("username", "path"),
    [
        (None, "/staf/masuk"),
        ("operator.grogol", "/staf/beranda"),
        ("operator.grogol", f"/staf/baru?jenis={UMUM}"),
        ("operator.grogol", "/staf/permohonan/{id}"),
        ("operator.grogol", "/staf/permohonan"),
        ("sekdes.grogol", "/staf/antrean"),
        ("head.grogol", "/staf/tandatangan"),
        ("operator.grogol", "/staf/arsip"),
    ],
)
def test_first_load_under_100_kb(live_server, browser, services, logins, username, path):
    request_id = request_at_review(services, logins)
    url = live_server + path.format(id=request_id)
    state = None
    if username:
        signing = context_for(browser)
        sign_in(signing.new_page(), live_server, username)
        state = signing.storage_state()  # cookies only: the new context starts with no cache
        signing.close()
    context = context_for(browser, storage_state=state)
    page = context.new_page()
    try:
        sizes: list[int] = []
        page.on("response", lambda r: sizes.append(len(r.body())) if r.ok else None)
        response = page.goto(url)
        page.wait_for_load_state("load")
        assert response.ok and page.url == url, page.url
        entries = page.evaluate(FIRST_LOAD_JS)
        transferred = sum(max(t, b) for _name, t, b in entries)
        names = [n for n, _t, _b in entries]
        assert any(n.endswith(".css") for n in names) and any(n.endswith(".js") for n in names)
        assert 0 < transferred <= MAX_FIRST_LOAD, (transferred, entries)
        assert 0 < sum(sizes) <= MAX_FIRST_LOAD, sizes
    finally:
        context.close()
