"""Staff pages through HTTP: password change and sign-out, and a resident whose name is HTML
escaped on every page that shows it. Browser checks (JavaScript off, a 360 px phone, page
weight) are in tests/browser/test_staff_pages.py."""

from __future__ import annotations

import re
from datetime import date

import pytest

from engine.people.nik import make_nik
from engine.people.users import Actor, get_user
from engine.requests.letter_requests import act, create_request
from engine.storage.db import transaction
from engine.storage.models import Resident
from suratdesa.web import create_app
from tests.letters import GROGOL, pdf_text
from tests.test_staff_app import DEMO_PASSWORD, P, client_for, csrf_of, page_csrf, sign_in

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def app(services):
    return create_app(services.settings)


# --------------------------------------------------------------------------- password, sign-out


def test_password_change_needs_the_old_one_and_ends_other_sessions(app):
    new = "sandi-baru-2026"
    other_device = sign_in(app, "kasi.grogol")
    me = sign_in(app, "kasi.grogol")
    token = csrf_of(me.get(f"{P}/sandi").text)

    wrong = me.post(
        f"{P}/sandi", data={"csrf": token, "current": "bukan-ini", "new": new, "repeat": new}
    )
    assert wrong.status_code == 422 and "Kata sandi lama salah." in wrong.text
    short = me.post(
        f"{P}/sandi", data={"csrf": token, "current": DEMO_PASSWORD, "new": "x", "repeat": "x"}
    )
    assert short.status_code == 422 and "minimal 8 karakter" in short.text
    no_csrf = me.post(f"{P}/sandi", data={"current": DEMO_PASSWORD, "new": new, "repeat": new})
    assert no_csrf.status_code == 403
    assert other_device.get(f"{P}/beranda").status_code == 200  # nothing changed yet

    ok = me.post(
        f"{P}/sandi", data={"csrf": token, "current": DEMO_PASSWORD, "new": new, "repeat": new}
    )
    assert ok.status_code == 303 and ok.headers["location"] == f"{P}/beranda?ok=sandi"
    assert me.get(f"{P}/beranda").status_code == 200  # this browser got a fresh session
    stale = other_device.get(f"{P}/beranda")
    assert stale.status_code == 303 and "habis=1" in stale.headers["location"]

    fresh = client_for(app)
    login = csrf_of(fresh.get(f"{P}/masuk").text)
    old = fresh.post(
        f"{P}/masuk", data={"username": "kasi.grogol", "password": DEMO_PASSWORD, "csrf": login}
    )
    assert old.status_code == 401
    assert sign_in(app, "kasi.grogol", new).get(f"{P}/beranda").status_code == 200


def test_sign_out_clears_the_session(app):
    client = sign_in(app, "operator.grogol")
    assert client.get(f"{P}/beranda").status_code == 200
    r = client.post(f"{P}/keluar", data={"csrf": page_csrf(client)})
    assert r.status_code == 303 and r.headers["location"] == f"{P}/masuk"
    assert 'sd_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    assert "sd_session" not in client.cookies
    after = client.get(f"{P}/beranda")
    assert after.status_code == 303 and after.headers["location"].startswith(f"{P}/masuk")


# --------------------------------------------------------------------------- escaping


def test_resident_name_with_html_is_escaped_everywhere(app, services, logins, passphrase, tmp_path):
    nik = make_nik("33.11.01", date(1990, 5, 17), "L", 4242)
    with transaction(services.factory) as session:
        session.add(
            Resident(
                nik=nik,
                kk="3311010101004242",
                name=EVIL,
                birth_place="Sukoharjo",
                birth_date=date(1990, 5, 17),
                sex="L",
                religion="Islam",
                marital_status="Kawin",
                occupation="Petani",
                address="Dusun <b>Contoh</b>",
                rt="001",
                rw="002",
                village_code=GROGOL,
                alive=True,
            )
        )
        actors = {r: Actor.of(get_user(session, f"{r}.grogol")) for r in ("operator", "kasi")}
        actors["sekdes"] = Actor.of(get_user(session, "sekdes.grogol"))
        waiting = create_request(
            session,
            services.catalog,
            actors["operator"],
            "surat-keterangan-umum",
            {"applicant": nik},
            {"keperluan": "Uji"},
        )
        act(session, services.catalog, actors["operator"], waiting.id, "submit", version=1)
        issued = create_request(
            session,
            services.catalog,
            actors["operator"],
            "surat-keterangan-umum",
            {"applicant": nik},
            {"keperluan": "Uji"},
        )
        act(session, services.catalog, actors["operator"], issued.id, "submit", version=1)
        act(session, services.catalog, actors["sekdes"], issued.id, "approve", version=2)
        waiting_id, issued_id, issued_version = waiting.id, issued.id, issued.version
        head = Actor.of(get_user(session, "head.grogol"))
    services.issuer.sign(head, issued_id, version=issued_version, passphrase=passphrase)

    op = sign_in(app, "operator.grogol")
    sekdes = sign_in(app, "sekdes.grogol")
    pages = {
        "request": op.get(f"{P}/permohonan/{waiting_id}"),
        "issued request": op.get(f"{P}/permohonan/{issued_id}"),
        "operator home": op.get(f"{P}/beranda"),
        "my requests": op.get(f"{P}/permohonan"),
        "NIK look-up": op.get(
            f"{P}/penduduk",
            params={"jenis": "surat-keterangan-umum", "subjek": "applicant", "nik": nik},
        ),
        "review queue": sekdes.get(f"{P}/antrean"),
        "archive": op.get(f"{P}/arsip"),
        "archive by name": op.get(f"{P}/arsip", params={"nama": "script"}),
    }
    for name, r in pages.items():
        assert r.status_code == 200, name
        assert EVIL not in r.text, name
        assert ESCAPED in r.text, name
        assert "<b>Contoh</b>" not in r.text, name
    assert ">None<" not in pages["request"].text  # an empty optional field shows empty
    # The DRAFT preview prints the name as text: the letter markup is not broken by it.
    preview = op.get(f"{P}/permohonan/{waiting_id}/pratinjau.pdf")
    assert preview.status_code == 200 and preview.content.startswith(b"%PDF")
    text = pdf_text(preview.content, tmp_path)
    assert EVIL in text or EVIL.upper() in text
    letter = pdf_text(op.get(f"{P}/permohonan/{issued_id}/surat.pdf").content, tmp_path)
    assert f"Nama : {EVIL.upper()}" in re.sub(r"\s+", " ", letter)  # the letter prints names upper
    assert "Dusun <b>Contoh</b>" in letter
