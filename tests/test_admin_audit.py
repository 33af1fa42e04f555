"""Every admin action is an audit event, written by the engine in the write's own transaction,
naming the real actor; the chain stays intact (`suratdesa audit verify`)."""

from __future__ import annotations

import io
import re
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.bootstrap import DEMO_ACTOR
from engine.dates import today_wib
from engine.people.users import Actor, get_user
from engine.requests.letter_requests import act, create_request
from engine.storage.db import session_factory, transaction
from engine.storage.models import ActingAssignment, AuditEvent, Letter, SignerCertificate, User
from suratdesa.cli import main
from suratdesa.web import create_app
from tests.test_staff_app import P, csrf_of, sign_in

GROGOL = "33.11.01.2001"
KENEP = "33.11.04.1001"


@pytest.fixture
def app(services):
    return create_app(services.settings)


@pytest.fixture
def cli(settings, monkeypatch, tmp_path, capsys):
    """The CLI in-process, with the test database and an OS user named "petugas-server"."""
    monkeypatch.setenv("SURATDESA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SURATDESA_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("SURATDESA_AUDIT_DIR", str(tmp_path / "audit"))
    monkeypatch.setattr("getpass.getuser", lambda: "petugas-server")

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        rc = main(list(args))
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


@pytest.fixture
def chain_intact(cli):
    """After the test's writes: `suratdesa audit verify` says intact."""

    def check() -> None:
        rc, out, err = cli("audit", "verify")
        assert rc == 0, err
        assert "intact" in out

    return check


def events(settings, action: str) -> list[AuditEvent]:
    """The test's events of one action (the demo seed's own, by "system:demo", left out)."""
    with transaction(session_factory(settings.database_url)) as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == action, AuditEvent.actor != DEMO_ACTOR.username)
                .order_by(AuditEvent.id)
            )
        )


def only_event(settings, action: str) -> AuditEvent:
    found = events(settings, action)
    assert len(found) == 1, [(e.actor, e.detail) for e in found]
    return found[0]


def user_id(settings, username: str) -> int:
    with transaction(session_factory(settings.database_url)) as session:
        return get_user(session, username).id


def admin_client(app):
    client = sign_in(app, "admin")
    return client, csrf_of(client.get(f"{P}/admin/pengguna").text)


# --------------------------------------------------------------------------- accounts


def test_user_create_in_the_staff_app_is_audited(app, settings, chain_intact):
    client, csrf = admin_client(app)
    r = client.post(
        f"{P}/admin/pengguna",
        data={
            "csrf": csrf,
            "username": "kasi2.grogol",
            "full_name": "Kasi Baru Contoh",
            "role": "kasi",
            "village_code": GROGOL,
            "password": "rahasia-123",
        },
    )
    assert r.status_code == 303, r.text
    ev = only_event(settings, "user.create")
    assert (ev.actor, ev.role, ev.actor_id) == ("admin", "admin", user_id(settings, "admin"))
    assert ev.detail["username"] == "kasi2.grogol"
    assert ev.detail["role"] == "kasi" and ev.detail["village_code"] == GROGOL
    assert ev.detail["user_id"] == user_id(settings, "kasi2.grogol")
    assert "rahasia-123" not in str(ev.detail) and ev.detail["password_set"] is True
    chain_intact()


def test_user_create_from_the_cli_names_the_os_user_or_the_admin(cli, settings, chain_intact):
    rc, _out, err = cli(
        "users", "create", "op2.grogol", "--name", "Operator Dua", "--role", "operator",
        "--village", GROGOL,
    )  # fmt: skip
    assert rc == 0, err
    rc, _out, err = cli(
        "users", "create", "op3.grogol", "--name", "Operator Tiga", "--role", "operator",
        "--village", GROGOL, "--by", "admin",
    )  # fmt: skip
    assert rc == 0, err
    rc, _out, err = cli(
        "users", "create", "op4.grogol", "--name", "X", "--role", "operator",
        "--village", GROGOL, "--by", "operator.grogol",
    )  # fmt: skip
    assert rc == 1 and "bukan akun admin" in err
    first, second = events(settings, "user.create")
    assert (first.actor, first.role, first.actor_id) == ("cli:petugas-server", "system", None)
    assert first.detail["username"] == "op2.grogol"
    assert (second.actor, second.actor_id) == ("admin", user_id(settings, "admin"))
    assert second.detail["username"] == "op3.grogol"
    chain_intact()


def test_user_disable_is_audited_with_its_reason(app, settings, chain_intact):
    client, csrf = admin_client(app)
    target = user_id(settings, "sekdes.grogol")
    with transaction(session_factory(settings.database_url)) as session:
        serial = session.get(User, target).signer_serial
    r = client.post(
        f"{P}/admin/pengguna/{target}/nonaktif", data={"csrf": csrf, "reason": "Pindah tugas"}
    )
    assert r.status_code == 303, r.text
    ev = only_event(settings, "user.disable")
    assert ev.actor == "admin" and ev.reason == "Pindah tugas"
    assert ev.detail["username"] == "sekdes.grogol" and ev.detail["user_id"] == target
    revoke = only_event(settings, "signer.revoke")
    assert revoke.actor == "admin" and revoke.detail["serial"] == serial
    assert revoke.id == ev.id + 1
    r = client.post(f"{P}/admin/pengguna/{target}/nonaktif", data={"csrf": csrf, "reason": "x"})
    assert r.status_code == 422  # already disabled: no second event
    assert len(events(settings, "user.disable")) == 1
    chain_intact()


def test_user_disable_from_the_cli_is_audited(cli, settings, chain_intact):
    rc, _out, err = cli("users", "disable", "kasi.kenep", "--reason", "Pensiun", "--by", "admin")
    assert rc == 0, err
    ev = only_event(settings, "user.disable")
    assert (ev.actor, ev.reason, ev.detail["username"]) == ("admin", "Pensiun", "kasi.kenep")
    chain_intact()


# --------------------------------------------------------------------------- signer keys


def test_signer_issue_in_the_staff_app_is_audited_and_registered(app, settings, chain_intact):
    client, csrf = admin_client(app)
    target = user_id(settings, "kasi.grogol")
    r = client.post(
        f"{P}/admin/pengguna/{target}/sertifikat",
        data={"csrf": csrf, "passphrase": "kunci-kasi-grogol"},
    )
    assert r.status_code == 303, r.text
    ev = only_event(settings, "signer.issue")
    with transaction(session_factory(settings.database_url)) as session:
        serial = session.get(User, target).signer_serial
        registered = session.get(SignerCertificate, serial)
        assert registered is not None and registered.user_id == target
    assert ev.actor == "admin"
    assert ev.detail["serial"] == serial and ev.detail["key_storage"] == "pkcs12"
    assert ev.detail["username"] == "kasi.grogol" and ev.detail["village_code"] == GROGOL
    assert ev.detail["title"] == "Kepala Seksi"
    chain_intact()


def test_signer_issue_from_the_cli_is_audited(cli, settings, chain_intact):
    rc, _out, err = cli(
        "keys", "issue-signer", "head.kenep", "--passphrase-stdin", stdin="kunci-lurah-baru\n"
    )
    assert rc == 0, err
    ev = only_event(settings, "signer.issue")
    assert (ev.actor, ev.role, ev.actor_id) == ("cli:petugas-server", "system", None)
    assert ev.detail["username"] == "head.kenep" and ev.detail["role"] == "head"
    chain_intact()


def test_signer_revoke_is_audited(app, settings, chain_intact):
    client, csrf = admin_client(app)
    target = user_id(settings, "head.kenep")
    r = client.post(
        f"{P}/admin/pengguna/{target}/cabut",
        data={"csrf": csrf, "reason": "Kartu hilang", "code": "kunci-bocor"},
    )
    assert r.status_code == 303, r.text
    ev = only_event(settings, "signer.revoke")
    assert (ev.actor, ev.reason, ev.detail["user_id"]) == ("admin", "Kartu hilang", target)
    # The reason picked on the page reaches the CRL as RFC 5280's keyCompromise.
    assert (ev.detail["reason_code"], ev.detail["crl_reason"]) == ("kunci-bocor", "key_compromise")
    assert "cabut" not in client.get(f"{P}/admin/pengguna").text.split(f"/{target}/")[1][:20]
    chain_intact()


# --------------------------------------------------------------------------- village and head


def test_head_name_and_nip_edit_is_audited(app, settings, chain_intact):
    client, _csrf = admin_client(app)
    page = client.get(f"{P}/admin/desa/{KENEP}").text
    r = client.post(
        f"{P}/admin/desa/{KENEP}",
        data={
            "csrf": csrf_of(page),
            "address": re.search(r'name="address" value="([^"]*)"', page).group(1),
            "head_name": "Dra. Sri Wahyuni Contoh",
            "head_nip": "198001012005011002",
        },
    )
    assert r.status_code == 303, r.text
    ev = only_event(settings, "user.update")
    assert ev.actor == "admin"
    assert ev.detail["username"] == "head.kenep" and ev.detail["village_code"] == KENEP
    assert ev.detail["changes"] == {
        "full_name": ["Sri Wahyuni Contoh", "Dra. Sri Wahyuni Contoh"],
        "nip": ["197001012000031001", "198001012005011002"],
    }
    assert events(settings, "village.update") == []  # the address did not change
    chain_intact()


def test_village_edit_is_audited(app, settings, chain_intact):
    client, _csrf = admin_client(app)
    page = client.get(f"{P}/admin/desa/{GROGOL}").text
    old = re.search(r'name="address" value="([^"]*)"', page).group(1)
    r = client.post(
        f"{P}/admin/desa/{GROGOL}",
        data={
            "csrf": csrf_of(page),
            "address": "Jl. Balai Desa No. 1, Grogol",
            "head_name": re.search(r'name="head_name" value="([^"]*)"', page).group(1),
            "head_nip": "",
        },
    )
    assert r.status_code == 303, r.text
    ev = only_event(settings, "village.update")
    assert ev.actor == "admin"
    assert ev.detail == {
        "village_code": GROGOL,
        "changes": {"address": [old, "Jl. Balai Desa No. 1, Grogol"]},
    }
    assert events(settings, "user.update") == []  # the head's name and NIP did not change
    bad = client.post(
        f"{P}/admin/desa/{GROGOL}",
        data={"csrf": csrf_of(page), "head_name": "X", "head_nip": "123"},
    )
    assert bad.status_code == 422 and "18 angka" in bad.text
    chain_intact()


# --------------------------------------------------------------------------- acting heads


def test_acting_record_and_end_are_audited(app, settings, chain_intact):
    client = sign_in(app, "head.grogol")
    page = client.get(f"{P}/plt").text
    kasi = user_id(settings, "kasi.grogol")
    start, end = today_wib(), today_wib() + timedelta(days=6)
    r = client.post(
        f"{P}/plt",
        data={
            "csrf": csrf_of(page),
            "user_id": str(kasi),
            "prefix": "Plh.",
            "starts_on": start.isoformat(),
            "ends_on": end.isoformat(),
            "note": "Kades cuti",
        },
    )
    assert r.status_code == 303, r.text
    recorded = only_event(settings, "acting.record")
    assert recorded.actor == "head.grogol" and recorded.role == "head"
    assert recorded.detail["user_id"] == kasi and recorded.detail["prefix"] == "Plh."
    assert recorded.detail["starts_on"] == start.isoformat()
    assert recorded.detail["ends_on"] == end.isoformat()
    assignment = recorded.detail["assignment_id"]

    other = sign_in(app, "head.kenep")
    r = other.post(
        f"{P}/plt/{assignment}/akhiri", data={"csrf": csrf_of(other.get(f"{P}/plt").text)}
    )
    assert r.status_code == 404  # another village's assignment
    r = client.post(f"{P}/plt/{assignment}/akhiri", data={"csrf": csrf_of(page)})
    assert r.status_code == 303, r.text
    ended = only_event(settings, "acting.end")
    yesterday = (today_wib() - timedelta(days=1)).isoformat()
    assert ended.actor == "head.grogol"
    assert ended.detail["ends_on"] == [end.isoformat(), yesterday]
    with transaction(session_factory(settings.database_url)) as session:
        assert session.get(ActingAssignment, assignment).ends_on.isoformat() == yesterday
    chain_intact()


# --------------------------------------------------------------------------- hand-over


def test_letter_handover_is_audited_once(app, services, settings, logins, passphrase, chain_intact):
    with transaction(services.factory) as session:
        actors = {r: Actor.of(get_user(session, f"{r}.grogol")) for r in ("operator", "sekdes")}
        actors["kasi"] = Actor.of(get_user(session, "kasi.grogol"))
        head = Actor.of(get_user(session, "head.grogol"))
        req = create_request(
            session,
            services.catalog,
            actors["operator"],
            "surat-keterangan-umum",
            {"applicant": logins.sample_niks[GROGOL][0]},
            {"keperluan": "Melamar pekerjaan"},
        )
        rid = req.id
        act(session, services.catalog, actors["operator"], rid, "submit", version=req.version)
        spec = services.catalog.pinned(session, req)
        while spec.step(req.state).role != "head":
            role = spec.step(req.state).role
            act(session, services.catalog, actors[role], rid, "approve", version=req.version)
        version = req.version
    services.issuer.sign(head, rid, version=version, passphrase=passphrase)

    client = sign_in(app, "operator.grogol")
    csrf = csrf_of(client.get(f"{P}/permohonan/{rid}").text)
    receiver = {
        "csrf": csrf,
        "receiver_name": "Siti Aminah",
        "receiver_relation": "Yang bersangkutan",
        "receiver_id_number": "3311015508900002",
    }
    r = client.post(f"{P}/permohonan/{rid}/diserahkan", data={"csrf": csrf})
    assert r.status_code == 422 and "Data penerima surat belum lengkap" in r.text
    r = client.post(f"{P}/permohonan/{rid}/diserahkan", data=receiver)
    assert r.status_code == 303, r.text
    r = client.post(f"{P}/permohonan/{rid}/diserahkan", data=receiver)
    assert r.status_code == 409  # recorded once
    ev = only_event(settings, "letter.handover")
    operator_id = user_id(settings, "operator.grogol")
    with transaction(services.factory) as session:
        letter = session.scalar(select(Letter).where(Letter.request_id == rid))
        assert letter.handed_over_by_id == ev.actor_id == operator_id
    assert ev.actor == "operator.grogol" and ev.request_id == rid
    assert ev.detail == {
        "letter_id": letter.id,
        "number": letter.number,
        "receiver": "Siti Aminah",
        "relation": "Yang bersangkutan",
        "id_number": "3311********0002",
    }
    assert "Diserahkan" in client.get(f"{P}/permohonan/{rid}").text  # on the timeline
    chain_intact()
