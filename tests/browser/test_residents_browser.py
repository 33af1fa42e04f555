"""An unknown NIK in the letter form is no longer a dead end (issue 10 item 3), in Debian's
Chromium at 360 px and 1366 px, for a desa (Grogol) and a kelurahan (Kenep): the operator types
a NIK nobody has, adds the resident from the look-up ("Tambah penduduk"), comes back to the
letter form with the NIK filled in, finishes and submits the letter; the resident's page then
lists the request, and its change history names the operator who added the resident and why.
Screenshots: test-artifacts/residents-<kind>-<width>-<step>.png."""

from __future__ import annotations

import re
from datetime import date

import pytest

from engine.bootstrap import DEMO_PASSWORD
from engine.people.nik import make_nik
from tests.conftest import ARTIFACTS

VILLAGES = {
    # kind: (operator, the operator's full name, kecamatan prefix of the new NIK)
    "desa": ("operator.grogol", "Rina Contoh", "331101"),
    "kelurahan": ("operator.kenep", "Yuni Contoh", "331104"),
}


def shot(page, kind: str, width: int, step: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"residents-{kind}-{width}-{step}.png"), full_page=True)


@pytest.mark.parametrize("width", [360, 1366])
@pytest.mark.parametrize("kind", ["desa", "kelurahan"])
def test_operator_adds_an_unknown_resident_and_finishes_the_letter(
    live_server, browser, kind, width
):
    username, full_name, prefix = VILLAGES[kind]
    nik = make_nik(prefix, date(1993, 8, 21), "P", 4711)
    context = browser.new_context(locale="id-ID", viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server}/staf/masuk")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))

    # The letter form: the NIK is unknown, the look-up offers to add the resident.
    page.goto(f"{live_server}/staf/baru?jenis=surat-keterangan-umum")
    page.fill("input[name=subject_applicant]", f"{nik[:4]} {nik[4:8]} {nik[8:12]} {nik[12:]}")
    page.wait_for_selector("#add-resident")
    assert "tidak terdaftar" in page.inner_text("#info-applicant")
    shot(page, kind, width, "1-dead-end")
    page.click("#add-resident")

    # The add form: NIK, birth date and sex come from the NIK; a mistake keeps what was typed.
    page.wait_for_selector("#resident-form")
    assert page.input_value("input[name=nik]") == nik
    assert page.input_value("input[name=birth_date]") == "1993-08-21"
    assert page.input_value("select[name=sex]") == "P"
    assert page.is_visible("#back-to-letter")
    page.fill("input[name=kk]", "3311010101")  # too short
    page.fill("input[name=name]", "Ayu Contoh Baru")
    page.fill("input[name=birth_place]", "Sukoharjo")
    page.select_option("select[name=religion]", "Islam")
    page.select_option("select[name=marital_status]", "Belum Kawin")
    page.fill("input[name=occupation]", "Pelajar/Mahasiswa")
    page.select_option("select[name=family_relation]", "Anak")
    page.fill("input[name=address]", "Dukuh Contoh")
    page.fill("input[name=rt]", "1")
    page.fill("input[name=rw]", "2")
    page.fill("textarea[name=reason]", "Warga belum terdata, KK dibawa ke kantor")
    page.click("#resident-form button")
    page.wait_for_selector("#error-kk")
    assert "16 digit" in page.inner_text("#error-kk")
    assert page.input_value("input[name=name]") == "Ayu Contoh Baru"
    assert "KK dibawa" in page.input_value("textarea[name=reason]")
    shot(page, kind, width, "2-add-form-error")
    page.fill("input[name=kk]", "3311010101770001")
    page.click("#resident-form button")

    # Back at the letter: the NIK filled in and the new resident shown; finish and submit.
    page.wait_for_url(re.compile(r"/staf/baru\?"))
    assert page.input_value("input[name=subject_applicant]") == nik
    assert "Ayu Contoh Baru" in page.inner_text("#info-applicant")
    page.fill("textarea[name=field_keperluan]", "Pendaftaran kuliah")
    shot(page, kind, width, "3-letter-form")
    page.click("#new-request button[type=submit], #new-request > button")
    page.wait_for_url(re.compile(r"/staf/permohonan/\d+"))
    request_id = re.search(r"/permohonan/(\d+)", page.url).group(1)
    shot(page, kind, width, "4-request")

    # The resident's page: the request in the letter history, who added them in the changes.
    page.click("#nav-residents")
    page.fill("input[name=q]", nik[:10])
    page.click("form[role=search] button")
    page.click("#residents a:has-text('Ayu Contoh Baru')")
    page.wait_for_selector("#letter-history")
    history = page.inner_text("#letter-history")
    assert f"#{request_id}" in history and "Surat Keterangan Umum" in history
    assert "Pemohon" in history and "applicant" not in history
    changes = page.inner_text("#resident-changes")
    assert "Ditambahkan" in changes and full_name in changes
    assert "Warga belum terdata, KK dibawa ke kantor" in changes
    shot(page, kind, width, "5-resident-page")
    page.click(f"#letter-history a[href$='/permohonan/{request_id}']")
    page.wait_for_url(re.compile(rf"/staf/permohonan/{request_id}$"))
    context.close()
