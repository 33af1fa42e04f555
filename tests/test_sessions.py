"""Server-side staff sessions: sign-out ends the session (a copied cookie stops working at once),
a password change ends the user's other sessions and revokes their API tokens, disabling an
account ends its sessions, and cookies are Secure behind an https public URL."""

from __future__ import annotations

import re
from dataclasses import replace

from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from engine.bootstrap import DEMO_PASSWORD
from engine.config import _dev_secret_key
from engine.people.users import Actor, disable_user, get_user, issue_token
from engine.storage.db import transaction
from engine.storage.models import StaffSession
from suratdesa.web import create_app

P = "/staf"
NEW_PASSWORD = "kata-sandi-baru-123"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def signed_in(app, username: str, password: str = DEMO_PASSWORD) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get(f"{P}/masuk").text)
    r = client.post(f"{P}/masuk", data={"username": username, "password": password, "csrf": token})
    assert r.status_code == 303, r.text
    return client


def copy_of(app, client: TestClient) -> TestClient:
    """Another browser holding a copy of the session cookie."""
    thief = TestClient(app, follow_redirects=False)
    thief.cookies.set("sd_session", client.cookies["sd_session"])
    return thief


def can_open_home(client: TestClient) -> bool:
    r = client.get(f"{P}/beranda")
    assert r.status_code in (200, 303), r.status_code
    return r.status_code == 200


def test_replayed_cookie_stops_working_after_sign_out(services):
    app = create_app(services.settings)
    client = signed_in(app, "operator.grogol")
    thief = copy_of(app, client)
    assert can_open_home(thief)
    csrf = csrf_of(client.get(f"{P}/beranda").text)
    r = client.post(f"{P}/keluar", data={"csrf": csrf})
    assert r.status_code == 303
    assert not can_open_home(thief)  # the copy, replayed after sign-out
    assert thief.get(f"{P}/beranda").headers["location"].startswith(f"{P}/masuk")
    # Another app process (its own engine objects, same database) refuses it too.
    other = copy_of(create_app(services.settings), thief)
    assert not can_open_home(other)
    with transaction(services.factory) as session:
        rows = session.scalars(select(StaffSession)).all()
        assert [(r.ended_reason, r.ended_at is not None) for r in rows] == [("signout", True)]


def test_cookie_carries_only_the_session_id_stored_hashed(services):
    app = create_app(services.settings)
    client = signed_in(app, "operator.grogol")
    secret = services.settings.secret_key or _dev_secret_key()
    payload = URLSafeTimedSerializer(secret, salt="suratdesa-staff").loads(
        client.cookies["sd_session"]
    )
    assert list(payload) == ["s"]  # no user id, no role: only the session id
    token = payload["s"]
    assert token and len(token) >= 43
    with transaction(services.factory) as session:
        row = session.scalars(select(StaffSession)).one()
        assert row.token_sha256 != token and len(row.token_sha256) == 64
        assert row.expires_at > row.created_at


def test_password_change_ends_other_sessions_and_api_tokens(services):
    app = create_app(services.settings)
    here = signed_in(app, "kasi.grogol")
    elsewhere = signed_in(app, "kasi.grogol")
    other_user = signed_in(app, "sekdes.grogol")
    with transaction(services.factory) as session:
        token = issue_token(session, get_user(session, "kasi.grogol"))
    api = TestClient(app)
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/workflows", headers=bearer).status_code == 200

    csrf = csrf_of(here.get(f"{P}/sandi").text)
    r = here.post(
        f"{P}/sandi",
        data={"csrf": csrf, "current": DEMO_PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD},
    )
    assert r.status_code == 303 and r.headers["location"] == f"{P}/beranda?ok=sandi"
    assert can_open_home(here)  # the session that made the change stays
    assert not can_open_home(elsewhere)
    assert can_open_home(other_user)
    assert api.get("/api/workflows", headers=bearer).status_code == 401
    signed_in(app, "kasi.grogol", NEW_PASSWORD)


def test_wrong_current_password_changes_nothing(services):
    app = create_app(services.settings)
    here = signed_in(app, "kasi.grogol")
    elsewhere = signed_in(app, "kasi.grogol")
    csrf = csrf_of(here.get(f"{P}/sandi").text)
    r = here.post(
        f"{P}/sandi",
        data={"csrf": csrf, "current": "salah-sekali", "new": NEW_PASSWORD, "repeat": NEW_PASSWORD},
    )
    assert r.status_code == 422 and "Kata sandi lama salah." in r.text
    assert can_open_home(elsewhere)


def test_disabled_account_sessions_end(services):
    app = create_app(services.settings)
    client = signed_in(app, "operator.grogol")
    assert can_open_home(client)
    with transaction(services.factory) as session:
        admin = Actor.of(get_user(session, "admin"))
        disable_user(session, admin, get_user(session, "operator.grogol"), "pindah tugas")
    assert not can_open_home(client)
    with transaction(services.factory) as session:
        row = session.scalars(select(StaffSession)).one()
        assert row.ended_reason == "disabled"


def test_session_expires_by_stored_time(services):
    app = create_app(services.settings)
    client = signed_in(app, "operator.grogol")
    with transaction(services.factory) as session:
        row = session.scalars(select(StaffSession)).one()
        row.expires_at = row.created_at
    assert not can_open_home(client)


def set_cookies(response) -> list[str]:
    return response.headers.get_list("set-cookie")


def test_cookies_are_secure_with_an_https_public_url(services):
    app = create_app(replace(services.settings, public_url="https://surat.sukoharjokab.go.id"))
    client = TestClient(app, follow_redirects=False, base_url="https://testserver")
    page = client.get(f"{P}/masuk")
    assert all("secure" in c.lower() for c in set_cookies(page)) and set_cookies(page)
    r = client.post(
        f"{P}/masuk",
        data={"username": "operator.grogol", "password": DEMO_PASSWORD, "csrf": csrf_of(page.text)},
    )
    (cookie,) = [c for c in set_cookies(r) if c.startswith("sd_session=")]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    csrf = csrf_of(client.get(f"{P}/beranda").text)
    out = client.post(f"{P}/keluar", data={"csrf": csrf})
    (cleared,) = [c for c in set_cookies(out) if c.startswith("sd_session=")]
    assert "Secure" in cleared


def test_cookies_not_secure_with_an_http_public_url(services):
    app = create_app(services.settings)  # http://testserver
    client = TestClient(app, follow_redirects=False)
    page = client.get(f"{P}/masuk")
    r = client.post(
        f"{P}/masuk",
        data={"username": "operator.grogol", "password": DEMO_PASSWORD, "csrf": csrf_of(page.text)},
    )
    (cookie,) = [c for c in set_cookies(r) if c.startswith("sd_session=")]
    assert "secure" not in cookie.lower()
