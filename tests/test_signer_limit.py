"""The per-signer limit on wrong signing passphrases (engine.trust.signer_limit via Issuer.unlock):
a growing wait, then a lock that only the regency admin lifts; every wrong try, the lock and the
unlock are audit events; the signer is told what is left."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.errors import Forbidden
from engine.people.users import Actor
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, SignerLock, User
from engine.timeutil import now_utc
from engine.trust import signer_limit
from engine.trust.signer_limit import MAX_FAILURES, SignerLocked, SignTooSoon
from engine.trust.signing import WrongPassphrase
from suratdesa.web import create_app
from tests.letters import GROGOL, LETTERS, Staff
from tests.test_admin_audit import chain_intact, cli  # noqa: F401 - fixtures
from tests.test_hsm_issuance import hsm_services, hsm_settings, token  # noqa: F401 - fixtures
from tests.test_staff_app import P, csrf_of, sign_in


class Clock:
    """The issuer's clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = now_utc()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def clock(app) -> Clock:
    clock = Clock()
    app.state.services.issuer.clock = clock
    return clock


def events(app, action: str) -> list[AuditEvent]:
    with transaction(app.state.services.factory) as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def to_signing(staff: Staff, logins) -> dict:
    subjects, data = LETTERS["surat-keterangan-umum"]([logins.sample_niks[GROGOL][0]])
    r = staff.post(
        "operator.grogol",
        "/api/requests",
        {"workflow_id": "surat-keterangan-umum", "subjects": subjects, "data": data},
    )
    assert r.status_code == 201, r.text
    return staff.walk_to_signing("grogol", r.json())


def head_actor(app, username: str = "head.grogol") -> Actor:
    with transaction(app.state.services.factory) as session:
        return Actor.of(session.scalar(select(User).where(User.username == username)))


def test_20_wrong_passphrases_lock_the_signer_until_the_admin_lifts_it(
    app,
    clock,
    logins,
    passphrase,
    cli,  # noqa: F811
    chain_intact,  # noqa: F811
):
    staff = Staff(TestClient(app), logins)
    request = to_signing(staff, logins)
    answers = []
    for i in range(20):
        clock.advance(400)  # past any wait: only the count decides
        r = staff.sign("head.grogol", request, f"salah-sandi-{i}")
        answers.append((r.status_code, r.json()))
    statuses = [status for status, _body in answers]
    assert statuses == [403] * (MAX_FAILURES - 1) + [423] * (20 - MAX_FAILURES + 1)
    assert [b["tries_left"] for _s, b in answers[: MAX_FAILURES - 1]] == list(
        range(MAX_FAILURES - 1, 0, -1)
    )
    assert "Sisa percobaan: 9" in answers[0][1]["detail"]
    assert "admin kabupaten" in answers[MAX_FAILURES - 1][1]["detail"]
    assert answers[-1][1]["locked"] is True

    # Locked: even the right passphrase is refused, and nothing is signed.
    clock.advance(3600)
    r = staff.sign("head.grogol", request, passphrase)
    assert r.status_code == 423 and "admin kabupaten" in r.json()["detail"]
    assert staff.get("head.grogol", f"/api/requests/{request['id']}").json()["state"] == "signing"

    # Wrong tries checked: MAX_FAILURES (the rest were refused unread); one lock event.
    failed = events(app, "sign_failed")
    assert len(failed) == MAX_FAILURES
    assert {(e.actor, e.request_id) for e in failed} == {("head.grogol", request["id"])}
    assert failed[-1].detail == {"failures": MAX_FAILURES, "tries_left": 0}
    [lock] = events(app, "signer.lock")
    assert lock.actor == "head.grogol"

    # Only the regency admin lifts it: not the signer, not without --by, not another role.
    signer = head_actor(app)
    with transaction(app.state.services.factory) as session:
        head = session.scalar(select(User).where(User.username == "head.grogol"))
        with pytest.raises(Forbidden):
            signer_limit.unlock_signer(session, signer, head)
    rc, _out, err = cli("keys", "unlock-signer", "head.grogol", "--by", "sekdes.grogol")
    assert rc == 1 and "bukan akun admin" in err
    with pytest.raises(SystemExit):
        cli("keys", "unlock-signer", "head.grogol")
    assert staff.sign("head.grogol", request, passphrase).status_code == 423

    rc, out, err = cli(
        "keys", "unlock-signer", "head.grogol", "--by", "admin", "--reason", "Dicek langsung"
    )
    assert rc == 0, err
    assert "head.grogol" in out
    [unlock] = events(app, "signer.unlock")
    assert (unlock.actor, unlock.role, unlock.reason) == ("admin", "admin", "Dicek langsung")
    assert unlock.detail["username"] == "head.grogol"
    assert unlock.detail["failures"] == MAX_FAILURES

    r = staff.sign("head.grogol", request, passphrase)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "issued"
    chain_intact()


def test_growing_wait_refuses_early_tries_without_reading_them(app, clock, logins, passphrase):
    staff = Staff(TestClient(app), logins)
    request = to_signing(staff, logins)
    # The first wrong tries cost nothing (typos), then each one makes the next wait longer.
    waits = []
    for i in range(5):
        r = staff.sign("head.grogol", request, f"salah-{i}")
        assert r.status_code == 403, r.text
        waits.append(r.json()["retry_after"])
        if waits[-1]:
            early = staff.sign("head.grogol", request, passphrase)  # too early, even if right
            assert early.status_code == 429, early.text
            assert early.headers["Retry-After"] == str(waits[-1])
            assert f"{waits[-1]} detik" in early.json()["detail"]
        clock.advance(waits[-1])
    assert waits[:2] == [0, 0]
    assert waits[2] > 0 and waits[2] < waits[3] < waits[4]
    # Refused tries were not checked: five wrong tries, five events.
    assert len(events(app, "sign_failed")) == 5
    # Once the wait is over the right passphrase signs, and the count starts again.
    r = staff.sign("head.grogol", request, passphrase)
    assert r.status_code == 200, r.text
    user_id = head_actor(app).user_id
    with transaction(app.state.services.factory) as session:
        row = session.get(SignerLock, user_id)
        assert row.failures == 0 and row.locked_at is None and row.next_try_at is None


def test_parallel_wrong_tries_get_no_more_guesses_than_the_limit(app, clock):
    issuer = app.state.services.issuer
    head = head_actor(app)
    barrier = threading.Barrier(16)
    results: list[Exception] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            issuer.unlock(head, f"tebak-{i}").close()
        except Exception as exc:  # collected and checked below
            results.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    assert all(isinstance(e, WrongPassphrase | SignerLocked | SignTooSoon) for e in results)
    checked = len(events(app, "sign_failed"))
    assert 1 <= checked <= MAX_FAILURES
    # However they arrive, tries stop being read at the limit and the key locks.
    for i in range(30):
        clock.advance(400)
        try:
            issuer.unlock(head, f"lagi-{i}")
        except SignerLocked:
            pass
        except WrongPassphrase:
            continue
        break
    assert len(events(app, "sign_failed")) == MAX_FAILURES
    assert len(events(app, "signer.lock")) == 1


def test_staff_app_tells_the_signer_and_the_admin_unlocks(app, clock, logins, passphrase):
    issuer = app.state.services.issuer
    to_signing(Staff(TestClient(app), logins), logins)
    head = sign_in(app, "head.grogol")
    assert 'name="passphrase"' in head.get(f"{P}/tandatangan").text
    for i in range(MAX_FAILURES):
        clock.advance(400)
        with pytest.raises((WrongPassphrase, SignerLocked)):
            issuer.unlock(head_actor(app), f"salah-{i}")
    page = head.get(f"{P}/tandatangan")
    assert 'id="signer-locked"' in page.text
    assert "dikunci" in page.text and "admin kabupaten" in page.text
    assert 'name="passphrase"' not in page.text

    # A reviewer cannot lift it; the admin sees it and lifts it.
    kasi = sign_in(app, "kasi.grogol")
    csrf = csrf_of(kasi.get(f"{P}/beranda").text)
    user_id = head_actor(app).user_id
    r = kasi.post(f"{P}/admin/pengguna/{user_id}/buka-kunci", data={"csrf": csrf})
    assert r.status_code == 403
    admin = sign_in(app, "admin")
    users = admin.get(f"{P}/admin/pengguna").text
    assert f'id="locked-{user_id}"' in users
    assert re.search(rf'/admin/pengguna/{user_id}/buka-kunci"', users)
    r = admin.post(
        f"{P}/admin/pengguna/{user_id}/buka-kunci",
        data={"csrf": csrf_of(users), "reason": "Ditelepon"},
    )
    assert r.status_code == 303, r.text
    assert f'id="locked-{user_id}"' not in admin.get(f"{P}/admin/pengguna").text
    [unlock] = events(app, "signer.unlock")
    assert unlock.actor == "admin" and unlock.reason == "Ditelepon"
    page = head.get(f"{P}/tandatangan")
    assert 'id="signer-locked"' not in page.text and 'name="passphrase"' in page.text
    issuer.unlock(head_actor(app), passphrase).close()


def test_staff_sign_form_says_tries_left(app, clock, logins, passphrase):
    staff = Staff(TestClient(app), logins)
    request = to_signing(staff, logins)
    head = sign_in(app, "head.grogol")
    page = head.get(f"{P}/tandatangan")
    r = head.post(
        f"{P}/tandatangan",
        data={
            "csrf": csrf_of(page.text),
            "req": f"{request['id']}:{request['version']}",
            "passphrase": "salah-sandi",
        },
    )
    assert r.status_code == 403
    assert "Sisa percobaan: 9" in r.text
    page = head.get(f"{P}/tandatangan")
    assert 'id="signer-tries"' in page.text


def test_hsm_pin_is_limited_the_same_way(hsm_services):  # noqa: F811
    """A head whose key is on the PKCS#11 token: wrong PINs count and lock exactly as wrong
    passphrases do (same Issuer.unlock)."""
    from tests.softhsm import PIN

    issuer = hsm_services.issuer
    clock = Clock()
    issuer.clock = clock
    with transaction(hsm_services.factory) as session:
        head = Actor.of(session.scalar(select(User).where(User.username == "head.grogol")))
        admin = Actor.of(session.scalar(select(User).where(User.username == "admin")))
    for i in range(MAX_FAILURES):
        clock.advance(400)
        with pytest.raises((WrongPassphrase, SignerLocked)):
            issuer.unlock(head, f"{i:06d}")
    clock.advance(400)
    with pytest.raises(SignerLocked):
        issuer.unlock(head, PIN)
    with transaction(hsm_services.factory) as session:
        user = session.scalar(select(User).where(User.username == "head.grogol"))
        assert signer_limit.unlock_signer(session, admin, user, "token diperiksa") == MAX_FAILURES
    issuer.unlock(head, PIN).close()
