"""The staff app in Chromium: a death letter from NIK to a signed PDF whose QR verifies, with the
sekdes returning it once. Screenshots of every step go to test-artifacts/staff_flow/."""

from __future__ import annotations

import re

from engine.bootstrap import DEMO_PASSWORD
from tests.conftest import ARTIFACTS
from tests.letters import decode_qr

SHOTS = ARTIFACTS / "staff_flow"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(browser, base: str, username: str):
    context = browser.new_context(locale="id-ID", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))
    return page


def act(page, base: str, request_id: int, action_label: str, reason: str | None = None) -> None:
    page.goto(f"{base}/staf/permohonan/{request_id}")
    form = page.locator("form.action", has=page.locator(f"button:has-text('{action_label}')"))
    if reason:
        form.locator("[name=reason]").fill(reason)
    form.locator(f"button:has-text('{action_label}')").click()
    page.wait_for_selector("p.ok")


def create_death_letter(page, base: str, deceased: str, reporter: str, place: str) -> int:
    page.goto(f"{base}/staf/baru?jenis=surat-keterangan-kematian")
    page.fill("input[name=subject_deceased]", deceased)
    page.wait_for_selector("#info-deceased .resident")  # htmx shows the resident as you type
    page.fill("input[name=subject_reporter]", reporter)
    page.wait_for_selector("#info-reporter .resident")
    page.fill("input[name=field_date_of_death]", "2026-01-05")
    page.fill("input[name=field_place_of_death]", place)
    page.select_option("select[name=field_cause]", "Sakit")
    page.click("button:has-text('Simpan dan ajukan')")
    page.wait_for_url(re.compile(r"/staf/permohonan/\d+"))
    return int(re.search(r"/permohonan/(\d+)", page.url).group(1))


def test_death_letter_from_nik_to_verified_qr(live_server, browser, logins, passphrase, tmp_path):
    base = live_server
    niks = logins.sample_niks["33.11.01.2001"]
    op = sign_in(browser, base, "operator.grogol")
    shot(op, "01-operator-home")
    main_id = create_death_letter(op, base, niks[0], niks[3], "Rumah")
    shot(op, "02-operator-created")
    others = [create_death_letter(op, base, niks[i], niks[3], "Rumah") for i in (1, 2)]

    kasi = sign_in(browser, base, "kasi.grogol")
    for rid in [main_id, *others]:
        act(kasi, base, rid, "Setujui")
    sekdes = sign_in(browser, base, "sekdes.grogol")
    sekdes.goto(f"{base}/staf/antrean")
    shot(sekdes, "03-sekdes-queue")
    act(sekdes, base, main_id, "Kembalikan", "Tempat meninggal kurang lengkap")
    shot(sekdes, "04-sekdes-returned")
    act(kasi, base, main_id, "Kembalikan", "Tempat meninggal kurang lengkap")

    op.goto(f"{base}/staf/permohonan/{main_id}")
    assert op.inner_text("#return-reason") == "Tempat meninggal kurang lengkap"
    op.fill("input[name=field_place_of_death]", "RSUD Ir. Soekarno Sukoharjo")
    shot(op, "05-operator-fixing")
    op.click("button:has-text('Ajukan')")
    op.wait_for_selector("p.ok")
    act(kasi, base, main_id, "Setujui")
    for rid in [main_id, *others]:
        act(sekdes, base, rid, "Setujui")
    shot(sekdes, "06-sekdes-approved")

    head = sign_in(browser, base, "head.grogol")
    head.goto(f"{base}/staf/tandatangan")
    for rid in [main_id, *others]:
        head.check(f"input[name=req][value^='{rid}:']")
    head.fill("input[name=passphrase]", passphrase)
    shot(head, "07-head-batch-selected")
    head.click("button:has-text('Tandatangani surat yang dipilih')")
    head.wait_for_selector("#finished", timeout=60_000)  # htmx polls the batch's rows
    shot(head, "08-head-batch-done")
    assert head.locator("tr.done").count() == 3

    op.goto(f"{base}/staf/permohonan/{main_id}")
    shot(op, "09-operator-letter")
    number = re.search(r"Nomor surat: (\S+)", op.inner_text("main")).group(1)
    with op.expect_download() as info:
        op.click("#download")
    pdf = tmp_path / "surat.pdf"
    info.value.save_as(pdf)
    urls = decode_qr(pdf.read_bytes())
    assert len(urls) == 1 and urls[0].lower().startswith(base.lower()), urls  # QR alphanumeric mode
    op.goto(urls[0])
    shot(op, "10-qr-verifies")
    verdict = op.inner_text("#verdict")
    assert "TIDAK DITEMUKAN" not in verdict and "DICABUT" not in verdict
    assert number in op.inner_text("body")
