"""A resident's letter from a phone, in Debian's Chromium at 360 px: the resident identifies at
/warga/ and asks for a general certificate; the sekdes returns it once and the resident
corrects it on the status page; the operator completes it, the sekdes approves, the head signs;
the status page reads "Siap diambil"; the operator records the hand-over; it reads "Sudah
diambil". The resident's notices (returned, ready) reach a real SMTP server (e-mail contact)
and a real webhook receiver (a second resident who gave a phone number). Then /warga/ is an
installable app (no installability errors over CDP) whose offline page shows with the network
cut. Screenshots: test-artifacts/citizen-*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.bootstrap import DEMO_PASSWORD
from engine.storage.db import transaction
from engine.storage.models import LetterRequest, Resident
from suratdesa.web import create_app
from tests.conftest import ARTIFACTS, CHROMIUM, IN_CI
from tests.letters import GROGOL
from tests.notify_peers import smtp_server, wait_for, webhook_receiver, with_notify  # noqa: F401

PHONE = {"width": 360, "height": 740}
EMAIL = "sari.warga@example.org"
WA = "081234567890"


@pytest.fixture
def settings(settings, smtp_server, webhook_receiver):  # noqa: F811 - pointed at the peers
    return with_notify(settings, smtp_server, webhook_receiver)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"citizen-{name}.png"), full_page=True)


def grogol_residents(services, n: int) -> list[Resident]:
    with transaction(services.factory) as session:
        rows = session.scalars(
            select(Resident)
            .where(Resident.village_code == GROGOL, Resident.alive.is_(True))
            .order_by(Resident.nik)
            .limit(n)
        ).all()
        session.expunge_all()
    return list(rows)


def staff_page(browser, base: str, username: str):
    context = browser.new_context(locale="id-ID", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/staf/masuk")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button:has-text('Masuk')")
    page.wait_for_url(re.compile(r"/staf/beranda"))
    return page


def staff_action(page, base: str, request_id: int, label: str, reason: str | None = None):
    page.goto(f"{base}/staf/permohonan/{request_id}")
    form = page.locator("form.action", has=page.locator(f"button:has-text('{label}')"))
    if reason:
        form.locator("[name=reason]").fill(reason)
    form.locator(f"button:has-text('{label}')").click()
    page.wait_for_selector("p.ok")


def phone_request_via_api(base: str, services, resident: Resident) -> str:
    """A second resident asks through the JSON API (as a store app would), with a phone."""
    client = TestClient(create_app(services.settings))
    token = client.post(
        "/api/warga/identify",
        json={
            "nik": resident.nik,
            "kk": resident.kk,
            "birth_date": resident.birth_date.isoformat(),
        },
    ).json()["token"]
    made = client.post(
        "/api/warga/requests",
        json={
            "workflow_id": "surat-keterangan-umum",
            "data": {"keperluan": "Pendaftaran sekolah anak"},
            "contact": WA,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert made.status_code == 201, made.text
    return made.json()["tracking_code"]


def test_citizen_asks_from_a_phone_and_picks_the_letter_up(
    live_server,
    browser,
    services,
    passphrase,
    smtp_server,  # noqa: F811
    webhook_receiver,  # noqa: F811
):
    base = live_server
    sari, budi = grogol_residents(services, 2)
    phone_code = phone_request_via_api(base, services, budi)

    citizen = browser.new_context(locale="id-ID", viewport=PHONE, is_mobile=True, has_touch=True)
    me = citizen.new_page()
    me.goto(f"{base}/warga/")
    shot(me, "01-home")
    me.click("#start")
    me.wait_for_url(re.compile(r"/warga/masuk"))
    me.fill("#nik", sari.nik)
    me.fill("#kk", sari.kk)
    me.fill("#birth_date", sari.birth_date.isoformat())
    shot(me, "02-identify")
    me.click("button:has-text('Lanjut')")
    me.wait_for_url(re.compile(r"/warga/ajukan$"))
    shot(me, "03-types")
    me.click("a:has-text('Surat Keterangan Umum')")
    me.fill("#field_keperluan", "Melamar pekerjaan")
    me.fill("#contact", EMAIL)
    shot(me, "04-form")
    me.click("button:has-text('Kirim permohonan')")
    me.wait_for_selector("#created")
    code = me.inner_text("#tracking-code").strip()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    assert me.inner_text("#status") == "Diterima"
    assert me.evaluate("document.querySelector('img.qr').naturalWidth") > 0
    assert me.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(me, "05-received")
    with transaction(services.factory) as session:
        ids = dict(
            session.execute(
                select(LetterRequest.citizen_contact, LetterRequest.id).where(
                    LetterRequest.channel == "warga"
                )
            ).all()
        )
    request_id, phone_id = ids[EMAIL], ids[WA]

    operator = staff_page(browser, base, "operator.grogol")
    operator.goto(f"{base}/staf/warga")
    assert operator.locator(f"a[href='/staf/permohonan/{request_id}']").count() >= 1
    shot(operator, "06-operator-queue")
    operator.click(f"a[href='/staf/permohonan/{request_id}'] >> nth=0")
    assert "Warga" in operator.inner_text("#citizen-request")
    operator.fill("textarea[name=field_keterangan]", "Dilengkapi petugas: KTP asli dilihat")
    operator.click("button:has-text('Ajukan')")
    operator.wait_for_selector("p.ok")
    operator.goto(f"{base}/staf/permohonan/{phone_id}")
    operator.click("button:has-text('Ajukan')")
    operator.wait_for_selector("p.ok")

    sekdes = staff_page(browser, base, "sekdes.grogol")
    staff_action(sekdes, base, request_id, "Kembalikan", "Sebutkan instansi tujuan lamaran")
    me.goto(f"{base}/warga/status/{code}")
    assert me.inner_text("#status") == "Dikembalikan"
    assert me.inner_text("#reason") == "Sebutkan instansi tujuan lamaran"
    me.fill("#field_keperluan", "Melamar pekerjaan di PT Sritex Sukoharjo")
    shot(me, "07-returned")
    me.click("button:has-text('Kirim perbaikan')")
    me.wait_for_selector("#corrected")
    assert me.inner_text("#status") == "Diterima"
    operator.goto(f"{base}/staf/permohonan/{request_id}")
    operator.click("button:has-text('Ajukan')")
    operator.wait_for_selector("p.ok")
    for rid in (request_id, phone_id):
        staff_action(sekdes, base, rid, "Setujui")
    me.goto(f"{base}/warga/status/{code}")
    assert me.inner_text("#status") == "Diperiksa"

    head = staff_page(browser, base, "head.grogol")
    head.goto(f"{base}/staf/tandatangan")
    for rid in (request_id, phone_id):
        head.check(f"input[name=req][value^='{rid}:']")
    head.fill("input[name=passphrase]", passphrase)
    head.click("button:has-text('Tandatangani surat yang dipilih')")
    head.wait_for_selector("#finished", timeout=60_000)

    me.goto(f"{base}/warga/status/{code}")
    assert me.inner_text("#status") == "Siap diambil"
    assert me.inner_text("#letter-number")
    shot(me, "08-ready")

    operator.goto(f"{base}/staf/permohonan/{request_id}")
    operator.fill("input[name=receiver_name]", sari.name)
    operator.select_option("select[name=receiver_relation]", "Yang bersangkutan")
    operator.fill("input[name=receiver_id_number]", sari.nik)
    shot(operator, "09-handover")
    operator.click("#handover-form button")
    operator.wait_for_selector("#handed-over")
    assert sari.name in operator.inner_text("#handed-over")

    me.goto(f"{base}/warga/status/{code}")
    assert me.inner_text("#status") == "Sudah diambil"
    shot(me, "10-picked-up")

    # The resident's notices went to their contact: e-mail for Sari, the webhook for Budi.
    wait_for(lambda: len(smtp_server.messages) >= 2, what="two e-mails to the resident")
    to_sari = [m for m in smtp_server.messages if EMAIL in m.rcpt_tos]
    subjects = [str(m["Subject"]) for m in to_sari]
    assert any("perlu diperbaiki" in s for s in subjects), subjects
    assert any("siap diambil" in s for s in subjects), subjects
    hooks = wait_for(
        lambda: [r for r in webhook_receiver.requests if WA in r.body.decode()],
        what="the webhook notice to the phone",
    )
    assert all(webhook_receiver.verify(r) for r in hooks)
    assert any("siap diambil" in r.body.decode() for r in hooks)
    assert phone_code not in "".join(r.body.decode() for r in hooks)  # the code is never sent
    citizen.close()


def test_warga_is_installable_and_shows_the_offline_page(live_server, tmp_path):
    """In a normal (persistent) profile: Chromium reports no installability error in an
    incognito-like context only because it is one ("in-incognito")."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is required in CI but not installed")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
            locale="id-ID",
            viewport=PHONE,
            is_mobile=True,
            has_touch=True,
        )
        try:
            _installable_and_offline(context, live_server)
        finally:
            context.close()


def _installable_and_offline(context, base: str) -> None:
    page = context.new_page()
    page.goto(f"{base}/warga/")
    # Wait (no sleep) until the service worker is active and controls the page.
    page.evaluate(
        """() => navigator.serviceWorker.ready.then(() => navigator.serviceWorker.controller
            || new Promise((done) => navigator.serviceWorker.addEventListener(
                "controllerchange", done, { once: true })))"""
    )
    cdp = context.new_cdp_session(page)
    errors = cdp.send("Page.getInstallabilityErrors")
    assert errors.get("installabilityErrors") == [], errors
    manifest = cdp.send("Page.getAppManifest")
    assert not manifest.get("errors"), manifest
    context.set_offline(True)
    page.goto(f"{base}/warga/ajukan")
    assert page.inner_text("#offline") == "Anda sedang luring"
    shot(page, "11-offline")
    context.set_offline(False)
    page.goto(f"{base}/warga/")
    assert "Ajukan surat" in page.inner_text("main")
