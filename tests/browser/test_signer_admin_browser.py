"""Issue 12 in Debian's Chromium: the regency admin renews a head's signer certificate on the
users page (the head types the new passphrase there; the old certificate is revoked as
superseded), the head signs the next letter with it, and later the admin revokes it because
the head left office ("Berhenti menjabat", RFC 5280 cessationOfOperation). Both letters stay
ASLI on the portal, whose file check says each was signed before its certificate was revoked.
Screenshots: test-artifacts/signer-admin-<step>.png."""

from __future__ import annotations

import re

from sqlalchemy import select

from engine.people.signers import REVOCATION_REASONS
from engine.people.users import get_user
from engine.storage.db import transaction
from engine.storage.models import Letter
from suratdesa.web import create_app
from tests.browser.test_admin_browser import sign_in
from tests.conftest import ARTIFACTS
from tests.letters import GROGOL
from tests.test_staff_stumbles import general_letter_at_signing

NEW_PASSPHRASE = "kunci-kades-2027"
SIGNED_BEFORE = "ditandatangani sebelum sertifikat dicabut pada "


def shot(page, step: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"signer-admin-{step}.png"), full_page=True)


def head_signs(page, base: str, request_id: int, passphrase: str) -> None:
    page.goto(f"{base}/staf/tandatangan")
    page.check(f"input[name=req][value^='{request_id}:']")
    page.fill("input[name=passphrase]", passphrase)
    page.click("button:has-text('Tandatangani surat yang dipilih')")
    page.wait_for_selector("#finished", timeout=60_000)
    assert page.locator("tr.done").count() == 1


def letter_of(services, request_id: int) -> Letter:
    with transaction(services.factory) as session:
        letter = session.scalar(select(Letter).where(Letter.request_id == request_id))
        session.expunge(letter)
        return letter


def portal_check(page, base: str, letter: Letter, tmp_path, step: str) -> str:
    """Upload the signed PDF on /verify; the verdict word, and the signature's revocation line."""
    path = tmp_path / f"{letter.verify_code}.pdf"
    path.write_bytes(letter.pdf)
    page.goto(f"{base}/verify")
    page.set_input_files("#file", str(path))
    page.click("button:has-text('Periksa')")
    page.wait_for_selector("#verdict")
    page.locator("details summary").first.click()  # a valid letter's details start folded
    shot(page, step)
    verdict = page.inner_text("#verdict strong")
    row = page.locator("dt:has-text('Status pencabutan sertifikat') + dd").first
    return f"{verdict} | {row.inner_text()}"


def test_admin_renews_then_revokes_a_head_and_letters_stay_genuine(
    live_server, browser, services, logins, passphrase, tmp_path
):
    base = live_server
    app = create_app(services.settings)  # the office's steps before signing, over HTTP
    with transaction(services.factory) as session:
        head_id = get_user(session, "head.grogol").id
        old_serial = get_user(session, "head.grogol").signer_serial

    context = browser.new_context(locale="id-ID", viewport={"width": 1366, "height": 900})
    head = context.new_page()
    sign_in(head, base, "head.grogol")
    first_id = general_letter_at_signing(app, logins, "grogol", GROGOL, "Melamar kerja")
    head_signs(head, base, first_id, passphrase)

    # The admin renews the head's certificate; the head types the new passphrase.
    admin_context = browser.new_context(locale="id-ID", viewport={"width": 1366, "height": 900})
    admin = admin_context.new_page()
    sign_in(admin, base, "admin")
    admin.goto(f"{base}/staf/admin/pengguna")
    renew = admin.locator(f"#renew-{head_id}")
    renew.locator("input[name=passphrase]").fill(NEW_PASSPHRASE)
    renew.locator("select[name=old]").select_option("cabut")
    renew.locator("input[name=reason]").fill("Laptop kantor diganti")
    shot(admin, "01-renew-filled")
    renew.locator("button:has-text('Perbarui sertifikat')").click()
    admin.wait_for_url(re.compile(r"/staf/admin/pengguna$"))
    assert admin.locator("p.error").count() == 0
    assert "berlaku sampai" in admin.inner_text(f"#user-{head_id}")
    shot(admin, "02-renewed")
    with transaction(services.factory) as session:
        new_serial = get_user(session, "head.grogol").signer_serial
    assert new_serial != old_serial

    # The head signs the next letter with the new certificate.
    second_id = general_letter_at_signing(app, logins, "grogol", GROGOL, "Pendaftaran sekolah")
    head_signs(head, base, second_id, NEW_PASSPHRASE)
    first, second = letter_of(services, first_id), letter_of(services, second_id)

    portal = context.new_page()
    checked = portal_check(portal, base, first, tmp_path, "03-first-after-renewal")
    assert checked.startswith("ASLI | " + SIGNED_BEFORE), checked
    checked = portal_check(portal, base, second, tmp_path, "04-second-after-renewal")
    assert checked.startswith("ASLI | tidak dicabut"), checked
    assert re.search(
        rf"Nomor seri sertifikat\s+0*{new_serial}", portal.inner_text("main"), re.IGNORECASE
    )

    # The head leaves office: the admin revokes the certificate with that reason.
    admin.goto(f"{base}/staf/admin/pengguna")
    revoke = admin.locator(f"#user-{head_id} form[action$='/cabut']")
    left_office = REVOCATION_REASONS["berhenti-menjabat"][0]  # "Berhenti menjabat (...)"
    revoke.locator("select[name=code]").select_option(label=left_office)
    revoke.locator("input[name=reason]").fill("Masa jabatan habis")
    shot(admin, "05-revoke-filled")
    revoke.locator("button").click()
    admin.wait_for_url(re.compile(r"/staf/admin/pengguna$"))
    assert "dicabut" in admin.inner_text(f"#user-{head_id}")
    shot(admin, "06-revoked")

    for letter, step in ((first, "07-first"), (second, "08-second")):
        checked = portal_check(portal, base, letter, tmp_path, f"{step}-after-revocation")
        assert checked.startswith("ASLI | " + SIGNED_BEFORE), checked
        assert re.search(r"\d{2}-\d{2}-\d{4} \d{2}\.\d{2} WIB", checked)
        portal.goto(f"{base}/v/{letter.verify_code}")
        assert portal.inner_text("#verdict strong") == "ASLI"
        assert letter.number in portal.inner_text("#number")
    shot(portal, "09-qr-page")
    context.close()
    admin_context.close()
