"""The staff web app through HTTP: sign-in, CSRF, the operator -> reviewers -> head path, bad
input. Browser-level checks live in tests/browser/test_staff_*.py."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient

from engine.bootstrap import DEMO_PASSWORD
from suratdesa.web import create_app

P = "/staf"


@pytest.fixture
def app(services):
    application = create_app(services.settings)
    return application


def client_for(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def sign_in(app, username: str, password: str = DEMO_PASSWORD) -> TestClient:
    client = client_for(app)
    page = client.get(f"{P}/masuk")
    r = client.post(
        f"{P}/masuk",
        data={"username": username, "password": password, "csrf": csrf_of(page.text)},
    )
    assert r.status_code == 303, r.text
    return client


def page_csrf(client: TestClient, path: str = f"{P}/beranda") -> str:
    return csrf_of(client.get(path).text)


def create_death_letter(client: TestClient, deceased: str, reporter: str, **fields) -> int:
    data = {
        "csrf": page_csrf(client),
        "jenis": "surat-keterangan-kematian",
        "subject_deceased": deceased,
        "subject_reporter": reporter,
        "field_date_of_death": "2026-01-05",
        "field_place_of_death": "Rumah",
        "field_cause": "Sakit",
        **fields,
    }
    r = client.post(f"{P}/baru", data=data)
    assert r.status_code == 303, r.text
    return int(re.search(r"/permohonan/(\d+)", r.headers["location"]).group(1))


def version_of(client: TestClient, request_id: int) -> str:
    html = client.get(f"{P}/permohonan/{request_id}").text
    return re.search(r'name="version" value="(\d+)"', html).group(1)


def do(client: TestClient, request_id: int, action: str, reason: str = "", **extra):
    return client.post(
        f"{P}/permohonan/{request_id}/tindakan",
        data={
            "csrf": page_csrf(client),
            "action": action,
            "version": version_of(client, request_id),
            "reason": reason,
            **extra,
        },
    )


def wait_batch(client: TestClient, location: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        html = client.get(location).text
        if 'id="finished"' in html:
            return html
        time.sleep(0.2)
    raise AssertionError("batch did not finish")


def test_root_leads_browsers_to_sign_in(app):
    r = client_for(app).get("/")
    assert r.status_code in (302, 303, 307) and r.headers["location"] == f"{P}/masuk"


def test_sign_in_needs_csrf_and_same_message_for_unknown_user(app):
    client = client_for(app)
    assert (
        client.post(
            f"{P}/masuk", data={"username": "operator.grogol", "password": DEMO_PASSWORD}
        ).status_code
        == 403
    )
    token = csrf_of(client.get(f"{P}/masuk").text)
    wrong = client.post(
        f"{P}/masuk", data={"username": "operator.grogol", "password": "x", "csrf": token}
    )
    unknown = client.post(f"{P}/masuk", data={"username": "nobody", "password": "x", "csrf": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "Nama pengguna atau kata sandi salah." in wrong.text
    assert "Nama pengguna atau kata sandi salah." in unknown.text


def test_throttled_after_five_failures_with_the_same_answer(app):
    """Five failures from one address on one name: the right password is refused for now,
    with the usual answer (the throttle lifts by itself: tests/test_signin_throttle.py)."""
    client = client_for(app)
    token = csrf_of(client.get(f"{P}/masuk").text)
    for _ in range(5):
        client.post(
            f"{P}/masuk", data={"username": "kasi.grogol", "password": "salah", "csrf": token}
        )
    r = client.post(
        f"{P}/masuk", data={"username": "kasi.grogol", "password": DEMO_PASSWORD, "csrf": token}
    )
    assert r.status_code == 401 and "Nama pengguna atau kata sandi salah." in r.text
    assert "sd_session" not in r.headers.get("set-cookie", "")


def test_expired_or_missing_session_goes_to_sign_in_then_back(app):
    client = client_for(app)
    r = client.get(f"{P}/arsip?nama=Budi")
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"{P}/masuk?next=")
    login = client.get(r.headers["location"])
    assert 'value="/staf/arsip?nama=Budi"' in login.text
    r = client.post(
        f"{P}/masuk",
        data={
            "username": "operator.grogol",
            "password": DEMO_PASSWORD,
            "csrf": csrf_of(login.text),
            "next": "/staf/arsip?nama=Budi",
        },
    )
    assert r.headers["location"] == "/staf/arsip?nama=Budi"
    client.cookies.set("sd_session", "garbage")
    assert client.get(f"{P}/beranda").status_code == 303


def test_state_change_without_csrf_is_403(app, logins):
    client = sign_in(app, "operator.grogol")
    r = client.post(f"{P}/baru", data={"jenis": "surat-keterangan-umum"})
    assert r.status_code == 403
    r = client.post(f"{P}/keluar")
    assert r.status_code == 403


def test_nik_lookup_says_exactly_what_is_wrong(app, logins):
    client = sign_in(app, "operator.grogol")
    base = f"{P}/penduduk?jenis=surat-keterangan-kematian&subjek=deceased&nik="
    nik = logins.sample_niks["33.11.01.2001"][0]
    assert "Contoh" in client.get(base + nik).text
    bad = client.get(base + "33110" + "x" * 11).text
    assert "digit" in bad.lower() or "angka" in bad.lower()
    other = logins.sample_niks["33.11.04.1001"][0]
    assert "tidak terdaftar di desa/kelurahan Anda" in client.get(base + other).text


def test_full_path_return_fix_approve_batch_sign_download(app, services, logins, passphrase):
    niks = logins.sample_niks["33.11.01.2001"]
    op = sign_in(app, "operator.grogol")
    ids = [create_death_letter(op, niks[i], niks[3]) for i in range(3)]
    kasi, sekdes, head = (sign_in(app, f"{r}.grogol") for r in ("kasi", "sekdes", "head"))
    queue = kasi.get(f"{P}/antrean").text
    assert all(f"/permohonan/{i}" in queue for i in ids)
    for i in ids:
        assert do(kasi, i, "approve").status_code == 303
    # sekdes returns the first with a reason; kasi sends it back to the operator
    r = do(sekdes, ids[0], "return", "Tempat meninggal kurang lengkap")
    assert r.status_code == 303
    assert do(kasi, ids[0], "return", "Tempat meninggal kurang lengkap").status_code == 303
    page = op.get(f"{P}/permohonan/{ids[0]}").text
    assert "Tempat meninggal kurang lengkap" in page
    r = do(
        op,
        ids[0],
        "submit",
        field_date_of_death="2026-01-05",
        field_place_of_death="RSUD Sukoharjo",
        field_cause="Sakit",
    )
    assert r.status_code == 303
    assert do(kasi, ids[0], "approve").status_code == 303
    for i in ids:
        assert do(sekdes, i, "approve").status_code == 303
    # stale: a second approve with an old version is a clear message, not an error page
    stale = sekdes.post(
        f"{P}/permohonan/{ids[1]}/tindakan",
        data={"csrf": page_csrf(sekdes), "action": "approve", "version": "1"},
    )
    assert stale.status_code == 409 and "sudah diproses orang lain" in stale.text
    sign_page = head.get(f"{P}/tandatangan").text
    picks = re.findall(r'name="req" value="(\d+:\d+)"', sign_page)
    assert len(picks) == 3
    wrong = head.post(
        f"{P}/tandatangan", data={"csrf": page_csrf(head), "req": picks, "passphrase": "salah"}
    )
    assert wrong.status_code == 403 and "Tidak ada surat yang ditandatangani" in wrong.text
    r = head.post(
        f"{P}/tandatangan",
        data={"csrf": page_csrf(head), "req": picks + picks[:1], "passphrase": passphrase},
    )
    assert r.status_code == 303
    html = wait_batch(head, r.headers["location"])
    assert html.count("✔") == 3
    pdf = op.get(f"{P}/permohonan/{ids[0]}/surat.pdf?unduh=1")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # double-click: the same version again signs nothing more
    again = head.post(
        f"{P}/tandatangan",
        data={"csrf": page_csrf(head), "req": picks[:1], "passphrase": passphrase},
    )
    html = wait_batch(head, again.headers["location"])
    assert "✘" in html and "sudah" in html
