"""What the regency admin stumbled over (issue 9, item 3), in the engine and through HTTP:
villages picked by name with search, re-enabling accounts and resetting passwords (sessions
end, the old password fails), times in WIB on staff and public pages, workflow steps in
Bahasa Indonesia, one wrong-passphrase notice, and a demo whose URLs follow its port."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.bootstrap import DEMO_PASSWORD, DemoLogins
from engine.config import PROJECT_ROOT
from engine.dates import format_wib
from engine.errors import Forbidden, HeadSignerExists, InvalidInput
from engine.people import admin, sessions
from engine.people.auth import SignInFailed
from engine.people.auth import sign_in as engine_sign_in
from engine.people.users import (
    Actor,
    check_password,
    disable_user,
    enable_user,
    get_user,
    hash_password,
    reset_password,
    reset_password_check,
    signing_accounts,
)
from engine.services import Services
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, User
from suratdesa.web import create_app
from tests.letters import GROGOL, KENEP, Staff, decode_qr, issue
from tests.test_staff_app import P, client_for, csrf_of, page_csrf, sign_in
from tests.test_staff_stumbles import general_letter_at_signing


@pytest.fixture
def app(services):
    return create_app(services.settings)


def admin_actor(session) -> Actor:
    return Actor.of(get_user(session, "admin"))


def last_event(session, action: str) -> AuditEvent:
    return session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    ).first()


# --------------------------------------------------------------------------- engine: accounts


def test_reset_password_ends_sessions_and_the_old_password_fails(services):
    with transaction(services.factory) as session:
        user = get_user(session, "operator.grogol")
        live = sessions.start(session, user.id)
        assert sessions.resolve(session, live) is not None
        by = admin_actor(session)
        password = reset_password_check(by, user, "  ")  # empty: generated
        assert len(password) == 12 and password.isalnum()
        result = reset_password(session, by, user, hash_password(password), generated=True)
        assert result["sessions_ended"] == 1
        assert sessions.resolve(session, live) is None
        assert not check_password(user, DEMO_PASSWORD)
        assert check_password(user, password)
        event = last_event(session, "user.password_reset")
        assert event.actor == "admin" and event.detail["generated"] is True
        assert event.detail["username"] == "operator.grogol"
        assert password not in str(event.detail)  # never the password itself
    assert authenticate_ok(services, "operator.grogol", password)
    assert not authenticate_ok(services, "operator.grogol", DEMO_PASSWORD)


def authenticate_ok(services: Services, username: str, password: str) -> bool:
    try:
        engine_sign_in(services.factory, username, password, client="10.9.9.9")
    except SignInFailed:
        return False
    return True


def test_reset_password_rules_live_in_the_engine(services):
    with transaction(services.factory) as session:
        by = admin_actor(session)
        me = get_user(session, "admin")
        with pytest.raises(InvalidInput, match="menu Kata sandi"):
            reset_password_check(by, me, "sandi-baru-123")
        operator = get_user(session, "operator.grogol")
        with pytest.raises(InvalidInput, match="minimal 8 karakter"):
            reset_password_check(by, operator, "pendek")
        assert reset_password_check(by, operator, "sandi-baru-123") == "sandi-baru-123"
        head = Actor.of(get_user(session, "head.grogol"))
        with pytest.raises(Forbidden):
            reset_password_check(head, operator, "sandi-baru-123")


def test_re_enable_an_account_and_one_head_per_village(services):
    with transaction(services.factory) as session:
        by = admin_actor(session)
        kasi = get_user(session, "kasi.grogol")
        with pytest.raises(InvalidInput, match="sudah aktif"):
            enable_user(session, by, kasi, "salah klik")
        disable_user(session, by, kasi, "cuti panjang")
        with pytest.raises(InvalidInput, match="Alasan"):
            enable_user(session, by, kasi, " ")
        enable_user(session, by, kasi, "kembali bertugas")
        assert kasi.active
        assert last_event(session, "user.enable").reason == "kembali bertugas"

        head = get_user(session, "head.kenep")
        disable_user(session, by, head, "pensiun")
        from engine.people.users import create_user

        create_user(
            session,
            by=by,
            username="lurah.baru",
            full_name="Lurah Baru",
            role="head",
            village_code=KENEP,
            password="sandi-lurah-baru",
        )
        with pytest.raises(HeadSignerExists) as refused:
            enable_user(session, by, head, "batal pensiun")
        # the title follows the village kind: a kelurahan has a Lurah
        assert "Kelurahan Kenep sudah punya Lurah aktif" in str(refused.value)
        assert "desa/lurah" not in str(refused.value)


def test_certificates_are_offered_only_to_accounts_that_sign(services):
    with transaction(services.factory) as session:
        users = list(session.scalars(select(User).where(User.village_code == GROGOL)))
        offered = {u.username for u in users if u.id in signing_accounts(session, users)}
        assert offered == {"head.grogol", "sekdes.grogol"}


# --------------------------------------------------------------------------- engine: villages


def test_village_search_by_name_shows_the_kecamatan(services):
    with transaction(services.factory) as session:
        found = [admin.village_choice(v) for v in admin.search_villages(session, "grogol")]
        # both villages named Grogol first, then the villages of Kecamatan Grogol
        assert found[:2] == [
            "Desa Grogol, Kec. Weru (33.11.01.2001)",
            "Desa Grogol, Kec. Grogol (33.11.09.2008)",
        ] or found[:2] == [
            "Desa Grogol, Kec. Grogol (33.11.09.2008)",
            "Desa Grogol, Kec. Weru (33.11.01.2001)",
        ]
        assert "Desa Cemani, Kec. Grogol (33.11.09.2014)" in found
        kenep = [admin.village_choice(v) for v in admin.search_villages(session, "KEN")]
        assert "Kelurahan Kenep, Kec. Sukoharjo (33.11.04.1001)" in kenep
        assert admin.search_villages(session, "100%_") == []


def test_resolve_village_by_name_choice_or_code(services):
    with transaction(services.factory) as session:
        assert admin.resolve_village(session, "Kenep") == KENEP
        assert admin.resolve_village(session, "kelurahan kenep") == KENEP
        assert admin.resolve_village(session, "Grogol, Kec. Weru") == GROGOL
        assert admin.resolve_village(session, "Desa Grogol, Kec. Weru (33.11.01.2001)") == GROGOL
        assert admin.resolve_village(session, GROGOL) == GROGOL
        assert admin.resolve_village(session, "  ") is None
        with pytest.raises(InvalidInput) as two:
            admin.resolve_village(session, "Grogol")
        assert "Kec. Weru" in str(two.value) and "Kec. Grogol" in str(two.value)
        with pytest.raises(InvalidInput, match="tidak dikenal"):
            admin.resolve_village(session, "Atlantis")
        with pytest.raises(InvalidInput, match="tidak dikenal"):
            admin.resolve_village(session, "33.11.99.9999")


# --------------------------------------------------------------------------- WIB


def test_one_wib_format():
    late_utc = datetime(2026, 11, 29, 17, 30, 5, tzinfo=UTC)
    assert format_wib(late_utc) == "30-11-2026 00.30 WIB"
    assert format_wib(late_utc, seconds=True) == "30-11-2026 00.30.05 WIB"
    assert format_wib(late_utc.replace(tzinfo=None)) == "30-11-2026 00.30 WIB"  # naive = UTC
    assert format_wib(None) == ""


def test_staff_pages_show_times_in_wib(app, logins):
    general_letter_at_signing(app, logins, "grogol", GROGOL, "Melamar kerja")
    head = sign_in(app, "head.grogol")
    queue = head.get(f"{P}/tandatangan").text
    assert re.search(r"<td>\d{2}-\d{2}-\d{4} \d{2}\.\d{2} WIB</td>", queue)
    users = sign_in(app, "admin").get(f"{P}/admin/pengguna").text
    assert re.search(r"berlaku sampai \d{2}-\d{2}-\d{4} \d{2}\.\d{2} WIB", users), users[:3000]
    assert "UTC" not in queue and "UTC" not in users


def test_portal_pages_show_times_in_wib(settings, logins, passphrase):
    client = TestClient(create_app(settings))
    letter = issue(Staff(client, logins), "surat-keterangan-umum", passphrase)
    page = client.post("/verify", files={"file": ("surat.pdf", letter["pdf"], "application/pdf")})
    assert page.status_code == 200, page.text
    assert "UTC" not in page.text
    stamps = re.findall(r"\d{2}-\d{2}-\d{4} \d{2}\.\d{2}\.\d{2} WIB", page.text)
    assert len(stamps) >= 2  # the signer's time and the timestamp
    qr_page = client.get(letter["verify_url"].removeprefix(settings.public_url))
    assert qr_page.status_code == 200 and "UTC" not in qr_page.text
    assert "UTC" not in client.get("/pki/signers").text


# --------------------------------------------------------------------------- staff app: admin


def create_form(client: TestClient, **fields) -> dict:
    return {
        "csrf": page_csrf(client, f"{P}/admin/pengguna"),
        "full_name": "Staf Baru",
        "role": "operator",
        "nip": "",
        "password": "sandi-awal-123",
        **fields,
    }


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("Kenep", KENEP),
        ("Desa Grogol, Kec. Weru (33.11.01.2001)", GROGOL),
    ],
)
def test_admin_creates_a_user_picking_the_village_by_name(app, services, typed, code):
    client = sign_in(app, "admin")
    r = client.post(
        f"{P}/admin/pengguna", data=create_form(client, username="op.baru", village=typed)
    )
    assert r.status_code == 303, r.text
    with transaction(services.factory) as session:
        assert get_user(session, "op.baru").village_code == code
    page = client.get(f"{P}/admin/pengguna").text
    assert 'list="village-list"' in page and "Kec. Weru" in page
    assert 'name="village_code"' not in page  # no code to type


def test_admin_create_user_ambiguous_or_unknown_village_is_a_clear_error(app):
    client = sign_in(app, "admin")
    two = client.post(
        f"{P}/admin/pengguna", data=create_form(client, username="x1", village="Grogol")
    )
    assert two.status_code == 422
    assert "Ada 2 desa/kelurahan bernama Grogol" in two.text and "Kec. Weru" in two.text
    assert 'value="Grogol"' in two.text  # what was typed stays in the field
    none = client.post(
        f"{P}/admin/pengguna", data=create_form(client, username="x2", village="Atlantis")
    )
    assert none.status_code == 422 and "tidak dikenal" in none.text
    missing = client.post(
        f"{P}/admin/pengguna", data=create_form(client, username="x3", village="")
    )
    assert missing.status_code == 422 and "Pilih desa/kelurahan" in missing.text


def test_village_search_endpoint_and_user_filter(app):
    client = sign_in(app, "admin")
    options = client.get(f"{P}/admin/cari-desa", params={"village": "kene"}).text
    assert '<option value="Kelurahan Kenep, Kec. Sukoharjo (33.11.04.1001)">' in options
    by_kecamatan = client.get(f"{P}/admin/cari-desa", params={"q": "weru"}).text
    assert "Desa Grogol, Kec. Weru" in by_kecamatan
    assert sign_in(app, "operator.grogol").get(f"{P}/admin/cari-desa").status_code == 403
    only_kenep = client.get(f"{P}/admin/pengguna", params={"desa": "Kenep"}).text
    assert "operator.kenep" in only_kenep and "operator.grogol" not in only_kenep
    opened = client.get(f"{P}/admin/buka-desa", params={"desa": "Kenep"})
    assert opened.status_code == 303 and opened.headers["location"].endswith(f"/admin/desa/{KENEP}")
    village = client.get(opened.headers["location"]).text
    assert "Nama Lurah" in village


def test_admin_resets_a_password_the_user_is_signed_out(app, services):
    victim = sign_in(app, "operator.kenep")
    assert victim.get(f"{P}/beranda").status_code == 200
    client = sign_in(app, "admin")
    with transaction(services.factory) as session:
        user_id = get_user(session, "operator.kenep").id
    csrf = page_csrf(client, f"{P}/admin/pengguna")
    r = client.post(f"{P}/admin/pengguna/{user_id}/sandi", data={"csrf": csrf, "password": ""})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    shown = re.search(r'id="new-password">.*?<code>([^<]+)</code>', r.text, re.S).group(1)
    assert "semua sesi masuknya sudah diakhiri" in r.text
    # the user's open session has ended: back to the sign-in page
    after = victim.get(f"{P}/beranda")
    assert after.status_code == 303 and "/staf/masuk" in after.headers["location"]
    # the old password no longer works; the temporary one does
    page = client_for(app).get(f"{P}/masuk")
    old = client_for(app).post(
        f"{P}/masuk",
        data={"username": "operator.kenep", "password": DEMO_PASSWORD, "csrf": csrf_of(page.text)},
    )
    assert old.status_code != 303
    sign_in(app, "operator.kenep", shown)
    # shown once: the users page does not show it again
    assert shown not in client.get(f"{P}/admin/pengguna").text
    # a chosen temporary password, too short: refused by the engine's rule
    short = client.post(
        f"{P}/admin/pengguna/{user_id}/sandi",
        data={"csrf": page_csrf(client, f"{P}/admin/pengguna"), "password": "pendek"},
    )
    assert short.status_code == 422 and "Minimal 8" in short.text


def test_admin_disables_and_re_enables_a_user(app, services):
    client = sign_in(app, "admin")
    with transaction(services.factory) as session:
        user_id = get_user(session, "kasi.kenep").id
    base = f"{P}/admin/pengguna/{user_id}"
    csrf = page_csrf(client, f"{P}/admin/pengguna")
    assert client.post(f"{base}/nonaktif", data={"csrf": csrf, "reason": "cuti"}).status_code == 303
    page = client.get(f"{P}/admin/pengguna").text
    assert f'action="{base}/aktifkan"' in page
    assert (
        client.post(f"{base}/aktifkan", data={"csrf": csrf, "reason": "kembali"}).status_code == 303
    )
    sign_in(app, "kasi.kenep")
    page = client.get(f"{P}/admin/pengguna").text
    assert f'action="{base}/aktifkan"' not in page
    # certificates are offered to signers only, never to a kasi or an operator
    assert f'action="{base}/sertifikat"' not in page
    with transaction(services.factory) as session:
        head_id = get_user(session, "head.kenep").id
    assert f'action="{P}/admin/pengguna/{head_id}/sertifikat"' in page


def test_workflow_page_has_no_raw_state_names(app):
    page = sign_in(app, "admin").get(f"{P}/admin/alur").text
    steps = " ".join(re.findall(r"<li>(.*?)</li>", page, re.S))
    for raw in ("→ review", "→ signing", "→ issued", "→ draft", "→ rejected", "approve", "sign →"):
        assert raw not in steps, raw
    assert "Tanda tangan Kepala Desa/Lurah" in steps
    assert "Setujui → " in steps and "→ Terbit" in steps and "→ Ditolak" in steps


def test_wrong_passphrase_notice_is_shown_once(app, logins):
    request_id = general_letter_at_signing(app, logins, "kenep", KENEP, "Melamar kerja")
    head = sign_in(app, "head.kenep")
    queue = head.get(f"{P}/tandatangan").text
    pick = re.search(rf'name="req" value="({request_id}:\d+)"', queue).group(1)
    wrong = head.post(
        f"{P}/tandatangan", data={"csrf": page_csrf(head), "req": [pick], "passphrase": "salah"}
    )
    assert wrong.status_code == 403
    assert wrong.text.count("Sisa percobaan") == 1
    assert 'id="signer-tries"' not in wrong.text
    # on the next visit the standing notice says it (once)
    again = head.get(f"{P}/tandatangan").text
    assert 'id="signer-tries"' in again and again.count("Sisa percobaan") == 1


# --------------------------------------------------------------------------- demo port


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def demo_logins(stdout: str) -> DemoLogins:
    """The logins `suratdesa demo` printed: accounts with their API tokens, sample NIKs."""
    logins = DemoLogins()
    for line in stdout.splitlines():
        account = re.match(r"\s+(\S+)\s+(\S+)\s+(.+?)\s+token: (\S+)$", line)
        if account:
            logins.rows.append(account.groups())
        niks = re.match(r"Contoh NIK penduduk (\S+): (.+)$", line)
        if niks:
            logins.sample_niks[niks.group(1)] = niks.group(2).split(", ")
    return logins


def test_demo_urls_and_letters_follow_the_port(settings, tmp_path, passphrase):
    """`suratdesa demo --port P` prints http://127.0.0.1:P addresses (never :8000), and
    `suratdesa serve --port P` on that demo issues letters whose verify URL and QR code point
    at :P."""
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "PATH": "/usr/bin:/bin",
        "SURATDESA_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "SURATDESA_KEYS_DIR": str(settings.keys_dir),
        "SURATDESA_AUDIT_DIR": str(tmp_path / "audit"),
        "SURATDESA_SECRET_KEY": "x" * 48,
    }
    command = [sys.executable, "-m", "suratdesa.cli"]
    address = ["--host", "127.0.0.1", "--port", str(port)]
    demo = subprocess.run(
        [*command, "demo", *address], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT
    )
    assert demo.returncode == 0, demo.stderr
    assert f"{base}/staf/masuk" in demo.stdout and f"{base}/verify" in demo.stdout
    assert ":8000" not in demo.stdout
    # a resident to try the citizen pages with: NIK, No. KK and birth date as the registry holds
    assert f"{base}/warga/" in demo.stdout
    nik, kk, born = re.search(
        r"Coba layanan warga \(33\.11\.01\.2001\): NIK (\d{16}), No\. KK (\d{16}), "
        r"tanggal lahir (\d\d-\d\d-\d{4})",
        demo.stdout,
    ).groups()
    with sqlite3.connect(tmp_path / "demo.db") as db:
        row = db.execute("SELECT kk, birth_date FROM residents WHERE nik = ?", (nik,)).fetchone()
    assert row == (kk, "-".join(reversed(born.split("-"))))
    server = subprocess.Popen(
        [*command, "serve", *address],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            wait_until_serving(client, server)
            letter = issue(
                Staff(client, demo_logins(demo.stdout)), "surat-keterangan-umum", passphrase
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert letter["verify_url"].startswith(f"{base}/v/")
    assert decode_qr(letter["pdf"])[0].startswith(f"{base.upper()}/V/")


def wait_until_serving(client, server: subprocess.Popen) -> None:
    import time

    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"serve exited: {server.stderr.read().decode()}")
        try:
            if client.get("/staf/masuk").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("serve did not answer within 60 s")


def test_serve_on_keeps_a_configured_public_url(tmp_path):
    probe = (
        "from engine.config import serve_on, get_settings; serve_on('0.0.0.0', 8101); "
        "print(get_settings().public_url)"
    )

    def public_url(**extra: str) -> str:
        env = {"PATH": "/usr/bin:/bin", "SURATDESA_SECRET_KEY": "x" * 48, **extra}
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert public_url() == "http://127.0.0.1:8101"  # all interfaces: the local address
    configured = "https://surat.sukoharjokab.go.id"
    assert public_url(SURATDESA_PUBLIC_URL=configured) == configured
