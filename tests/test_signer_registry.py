"""At most one active head signer per village (engine, CLI, staff app), and the public list of
every signer certificate ever issued (/pki/signers), revoked and replaced ones included."""

from __future__ import annotations

import io
import json
import sys

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from engine.bootstrap import DEMO_PASSWORD, enroll_signer
from engine.errors import HeadSignerExists
from engine.people.users import Actor, create_user, disable_user, get_user
from engine.storage.db import session_factory, transaction
from engine.storage.migrate import alembic_config
from engine.storage.models import RevokedCertificate, SignerCertificate, User
from suratdesa.cli import main
from suratdesa.web import create_app
from tests.test_staff_app import P, csrf_of, sign_in

GROGOL = "33.11.01.2001"
KENEP = "33.11.04.1001"
KENEP_HEAD_NIP = "197001012000031001"  # the demo Lurah's NIP


def admin_actor(session) -> Actor:
    return Actor.of(get_user(session, "admin"))


def add_second_head_directly(session, username: str = "head2.grogol") -> User:
    """A second active head as older data (or a hand-made row) could hold it: the rules in
    create_user are bypassed, so enroll_signer's own check is what is tested."""
    user = User(username=username, full_name="Kades Kedua Contoh", role="head", village_code=GROGOL)
    session.add(user)
    session.flush()
    return user


@pytest.fixture
def cli_env(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("SURATDESA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SURATDESA_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("SURATDESA_AUDIT_DIR", str(tmp_path / "audit"))
    monkeypatch.setenv("USER", "petugas-server")
    monkeypatch.setenv("LOGNAME", "petugas-server")

    def run(*args: str, stdin: str = "") -> int:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        return main(list(args))

    return run


# --------------------------------------------------------------------------- one head


def test_engine_refuses_a_second_head_account(services):
    refused = pytest.raises(HeadSignerExists, match="Desa Grogol sudah punya Kepala Desa aktif")
    with transaction(services.factory) as session, refused:
        create_user(
            session,
            by=admin_actor(session),
            username="head2.grogol",
            full_name="Kades Kedua",
            role="head",
            village_code=GROGOL,
            password="rahasia-123",
        )


def test_engine_refuses_a_key_for_a_second_head(services):
    with transaction(services.factory) as session:
        second = add_second_head_directly(session)
        before = session.scalar(select(SignerCertificate.serial).limit(1))
        with pytest.raises(HeadSignerExists, match="kunci kepala kedua tidak diterbitkan"):
            enroll_signer(
                session,
                services.settings.keys_dir,
                second,
                "pilihan-admin-1",
                by=admin_actor(session),
            )
        assert second.signer_p12 is None and second.signer_serial is None
        assert before is not None


def test_cli_refuses_a_second_head(cli_env, settings, capsys):
    rc = cli_env(
        "users", "create", "head2.grogol", "--name", "Kades Kedua", "--role", "head",
        "--village", GROGOL,
    )  # fmt: skip
    assert rc == 1
    assert "Desa Grogol sudah punya Kepala Desa aktif" in capsys.readouterr().err
    with transaction(session_factory(settings.database_url)) as session:
        assert session.scalar(select(User).where(User.username == "head2.grogol")) is None
        add_second_head_directly(session)
    rc = cli_env(
        "keys", "issue-signer", "head2.grogol", "--passphrase-stdin", stdin="pilihan-admin-1\n"
    )
    assert rc == 1
    assert "kunci kepala kedua tidak diterbitkan" in capsys.readouterr().err
    with transaction(session_factory(settings.database_url)) as session:
        assert get_user(session, "head2.grogol").signer_p12 is None


def test_staff_app_refuses_a_second_head(services):
    app = create_app(services.settings)
    admin = sign_in(app, "admin")
    csrf = csrf_of(admin.get(f"{P}/admin/pengguna").text)
    r = admin.post(
        f"{P}/admin/pengguna",
        data={
            "csrf": csrf,
            "username": "head2.grogol",
            "full_name": "Kades Kedua",
            "role": "head",
            "village_code": GROGOL,
            "password": "rahasia-123",
        },
    )
    assert r.status_code == 409
    assert "Desa Grogol sudah punya Kepala Desa aktif" in r.text
    with transaction(services.factory) as session:
        assert session.scalar(select(User).where(User.username == "head2.grogol")) is None
        second_id = add_second_head_directly(session).id
    r = admin.post(
        f"{P}/admin/pengguna/{second_id}/sertifikat",
        data={"csrf": csrf, "passphrase": "pilihan-admin-1"},
    )
    assert r.status_code == 409
    assert "kunci kepala kedua tidak diterbitkan" in r.text
    with transaction(services.factory) as session:
        assert session.get(User, second_id).signer_p12 is None


def test_a_head_is_replaced_by_disabling_the_old_one_first(services):
    app = create_app(services.settings)
    admin = sign_in(app, "admin")
    csrf = csrf_of(admin.get(f"{P}/admin/pengguna").text)
    with transaction(services.factory) as session:
        old = get_user(session, "head.grogol")
        old_id, old_serial = old.id, old.signer_serial
    r = admin.post(
        f"{P}/admin/pengguna/{old_id}/nonaktif",
        data={"csrf": csrf, "reason": "Masa jabatan berakhir"},
    )
    assert r.status_code == 303, r.text
    r = admin.post(
        f"{P}/admin/pengguna",
        data={
            "csrf": csrf,
            "username": "head2.grogol",
            "full_name": "Kades Baru Contoh",
            "role": "head",
            "village_code": GROGOL,
            "password": "rahasia-123",
        },
    )
    assert r.status_code == 303, r.text
    with transaction(services.factory) as session:
        new_id = get_user(session, "head2.grogol").id
        revoked = session.get(RevokedCertificate, old_serial)
        assert revoked is not None and "Masa jabatan berakhir" in revoked.reason
        assert session.get(User, old_id).signer_p12 is None
    r = admin.post(
        f"{P}/admin/pengguna/{new_id}/sertifikat",
        data={"csrf": csrf, "passphrase": "rahasia-kades-baru"},
    )
    assert r.status_code == 303, r.text
    # the old head can no longer sign in
    client = TestClient(app, follow_redirects=False)
    page = client.get(f"{P}/masuk")
    r = client.post(
        f"{P}/masuk",
        data={"username": "head.grogol", "password": DEMO_PASSWORD, "csrf": csrf_of(page.text)},
    )
    assert r.status_code != 303


def test_acting_signer_and_sekdes_keys_are_not_second_heads(services):
    with transaction(services.factory) as session:
        kasi = get_user(session, "kasi.grogol")
        enroll_signer(
            session, services.settings.keys_dir, kasi, "plt-grogol-2026", by=admin_actor(session)
        )
        assert kasi.signer_serial


# --------------------------------------------------------------------------- public registry


def _portal(services) -> TestClient:
    return TestClient(create_app(services.settings))


def test_public_list_shows_every_certificate_with_its_status(services):
    with transaction(services.factory) as session:
        by = admin_actor(session)
        sekdes = get_user(session, "sekdes.grogol")
        head = get_user(session, "head.kenep")
        sekdes_serial = sekdes.signer_serial
        old_head_serial = head.signer_serial
        disable_user(session, by, sekdes, "Kunci diduga bocor")
        enroll_signer(session, services.settings.keys_dir, head, "kunci-baru-kenep", by=by)
        new_head_serial = head.signer_serial
        issued = set(session.scalars(select(SignerCertificate.serial)))
    assert {sekdes_serial, old_head_serial, new_head_serial} <= issued
    assert len(issued) >= 5  # 2 heads + 2 sekdes from the demo, and the new Kenep key

    portal = _portal(services)
    data = portal.get("/pki/signers.json").json()
    by_serial = {row["serial"]: row for row in data["signers"]}
    assert set(by_serial) == issued and data["count"] == len(issued)
    assert by_serial[sekdes_serial]["status"] == "dicabut"
    assert by_serial[sekdes_serial]["revoked_at"]
    assert by_serial[old_head_serial]["status"] == "diganti"
    assert by_serial[new_head_serial]["status"] == "aktif"
    assert by_serial[new_head_serial]["village_code"] == KENEP
    assert by_serial[new_head_serial]["role"] == "head"
    assert by_serial[new_head_serial]["title"] == "Lurah"
    assert by_serial[new_head_serial]["key_storage"] == "pkcs12"

    page = portal.get("/pki/signers")
    assert page.status_code == 200
    for serial in issued:
        assert serial in page.text
    assert "dicabut" in page.text and "Kelurahan Kenep" in page.text
    csv_text = portal.get("/pki/signers.csv").text
    assert all(serial in csv_text for serial in issued)
    # no private data: no NIP, no login names, no revocation reason
    for body in (page.text, json.dumps(data), csv_text):
        assert KENEP_HEAD_NIP not in body
        assert "sekdes.grogol" not in body and "head.kenep" not in body
        assert "diduga bocor" not in body
    assert "/pki/signers" in portal.get("/pki/").text


def test_signer_registry_is_append_only(services):
    with transaction(services.factory) as session:
        serial = get_user(session, "head.grogol").signer_serial
    for statement in (
        "UPDATE signer_certificates SET full_name = 'Orang Lain' WHERE serial = :s",
        "DELETE FROM signer_certificates WHERE serial = :s",
    ):
        refused = pytest.raises(DBAPIError, match="append-only")
        with refused, transaction(services.factory) as session:
            session.execute(text(statement), {"s": serial})
    with transaction(services.factory) as session:
        assert session.get(SignerCertificate, serial).full_name


def test_migration_backfills_the_certificates_users_hold(settings):
    url = settings.database_url
    with transaction(session_factory(url)) as session:
        expected = {
            u.signer_serial: (u.id, u.role, u.village_code)
            for u in session.scalars(select(User).where(User.signer_cert_pem.is_not(None)))
        }
    assert len(expected) == 4
    session_factory(url).kw["bind"].dispose()
    command.downgrade(alembic_config(url), "0007")
    command.upgrade(alembic_config(url), "head")
    with transaction(session_factory(url)) as session:
        rows = session.scalars(select(SignerCertificate)).all()
        assert {r.serial: (r.user_id, r.role, r.village_code) for r in rows} == expected
        assert {r.key_storage for r in rows} == {"pkcs12"}
        assert all(r.title and r.not_after > r.not_before for r in rows)
