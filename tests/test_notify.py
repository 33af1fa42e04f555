"""Notices: written with the audit event in the transition's transaction, delivered after
commit by a real SMTP server and a real webhook receiver on 127.0.0.1 (tests/notify_peers.py),
retried when a peer is down, every attempt recorded; claimed once by parallel dispatchers; the
staff app's unread count and Pemberitahuan page."""

# ruff: noqa: F811 - the peers' fixtures are imported by name and used as arguments

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from engine.config import check_webhook_url
from engine.dates import today_wib
from engine.notify.dispatcher import Dispatcher
from engine.notify.outbox import set_contact
from engine.people import acting
from engine.people.users import Actor, get_user
from engine.requests import letter_requests
from engine.services import Services
from engine.storage.db import transaction
from engine.storage.models import LetterRequest, Notice, NoticeAttempt, User
from suratdesa.web import create_app
from tests.letters import GROGOL
from tests.notify_peers import (  # noqa: F401 - fixtures
    SmtpPeer,
    smtp_server,
    wait_for,
    webhook_receiver,
    with_notify,
)
from tests.test_staff_app import csrf_of, sign_in

P = "/staf"


def _actor(services: Services, username: str) -> Actor:
    with transaction(services.factory) as session:
        return Actor.of(get_user(session, username))


def _contacts(services: Services, **people: tuple[str | None, str | None]) -> None:
    with transaction(services.factory) as session:
        admin = Actor.of(get_user(session, "admin"))
        for username, (mail, phone) in people.items():
            user = get_user(session, username.replace("_", "."))
            set_contact(session, admin, user, email=mail, phone=phone)


def _submitted(services: Services, logins, index: int = 0) -> LetterRequest:
    """A general certificate in Desa Grogol, created and submitted by its operator: it is now
    in the sekdes's review queue."""
    operator = _actor(services, "operator.grogol")
    nik = logins.sample_niks[GROGOL][index]
    with transaction(services.factory) as session:
        request = letter_requests.create_request(
            session,
            services.catalog,
            operator,
            "surat-keterangan-umum",
            {"applicant": nik},
            {"keperluan": "Melamar pekerjaan"},
        )
    with transaction(services.factory) as session:
        return letter_requests.act(
            session, services.catalog, operator, request.id, "submit", version=request.version
        )


def _notices(services: Services, **where) -> list[tuple[str, str, str | None, str]]:
    """(username or address, transport, kind, status) of every notice, by id."""
    with transaction(services.factory) as session:
        rows = session.execute(
            select(Notice, User.username)
            .outerjoin(User, User.id == Notice.user_id)
            .filter_by(**where)
            .order_by(Notice.id)
        ).all()
        return [(name or n.address, n.transport, n.kind, n.status) for n, name in rows]


def _attempts(services: Services) -> list[tuple[int, str, str, str | None]]:
    with transaction(services.factory) as session:
        return [
            (a.notice_id, a.transport, a.outcome, a.error)
            for a in session.scalars(select(NoticeAttempt).order_by(NoticeAttempt.id))
        ]


@pytest.fixture
def peered(settings, smtp_server, webhook_receiver) -> Services:
    return Services.from_settings(with_notify(settings, smtp_server, webhook_receiver))


def test_review_notice_reaches_this_villages_reviewer_by_mail_and_webhook(
    peered,
    logins,
    smtp_server,
    webhook_receiver,
):
    _contacts(
        peered,
        sekdes_grogol=("sekdes@grogol.test", "+6281200000001"),
        sekdes_kenep=("sekdes@kenep.test", "+6281200000002"),
        kasi_grogol=("kasi@grogol.test", None),
        operator_grogol=("operator@grogol.test", None),
    )
    request = _submitted(peered, logins)
    assert request.state == "review"
    # The sekdes of Grogol only: not Kenep's, not the kasi (not this step's role), not the
    # operator who moved it.
    assert _notices(peered) == [
        ("sekdes.grogol", "inapp", "queue", "sent"),
        ("sekdes.grogol", "email", "queue", "pending"),
        ("sekdes.grogol", "webhook", "queue", "pending"),
    ]
    assert smtp_server.messages == [] and webhook_receiver.requests == []

    report = Dispatcher(peered.factory, peered.settings).run_once()
    assert (report.claimed, report.sent, report.failed) == (2, 2, 0)
    [mail] = smtp_server.messages
    assert mail["To"] == "sekdes@grogol.test" and mail.rcpt_tos == ["sekdes@grogol.test"]
    assert f"#{request.id}" in mail["Subject"] and "Surat Keterangan Umum" in mail["Subject"]
    body = mail.get_content()
    assert f"http://testserver/staf/permohonan/{request.id}" in body
    assert "Desa Grogol" in body and logins.sample_niks[GROGOL][0] not in body
    [hook] = webhook_receiver.requests
    payload = hook.json()
    assert payload["to"] == "+6281200000001" and payload["kind"] == "queue"
    assert payload["request_id"] == request.id and payload["audience"] == "staff"
    assert webhook_receiver.verify(hook)
    # The signature covers the exact bytes: a changed body or another secret fails.
    assert not webhook_receiver.verify(replace(hook, body=hook.body.replace(b"queue", b"qu3ue")))
    webhook_receiver.secret = "another-secret-of-some-length"
    assert not webhook_receiver.verify(hook)
    assert [(t, o) for _, t, o, _ in _attempts(peered)] == [("email", "sent"), ("webhook", "sent")]
    assert {s for *_, s in _notices(peered)} == {"sent"}
    # Nothing is sent twice.
    assert Dispatcher(peered.factory, peered.settings).run_once().claimed == 0
    assert len(smtp_server.messages) == 1 and len(webhook_receiver.requests) == 1


def test_rollback_leaves_no_notice_and_sends_nothing(peered, logins, smtp_server):
    _contacts(peered, sekdes_grogol=("sekdes@grogol.test", None))
    operator = _actor(peered, "operator.grogol")
    with pytest.raises(RuntimeError), transaction(peered.factory) as session:
        request = letter_requests.create_request(
            session,
            peered.catalog,
            operator,
            "surat-keterangan-umum",
            {"applicant": logins.sample_niks[GROGOL][0]},
            {"keperluan": "Melamar pekerjaan"},
        )
        letter_requests.act(
            session, peered.catalog, operator, request.id, "submit", version=request.version
        )
        assert len(_notices_in(session)) == 2  # written in the transaction...
        raise RuntimeError("the caller fails after the transition")
    assert _notices(peered) == []  # ...and gone with it
    assert Dispatcher(peered.factory, peered.settings).run_once().claimed == 0
    assert smtp_server.messages == []


def _notices_in(session) -> list[Notice]:
    return list(session.scalars(select(Notice)))


def test_smtp_down_transition_succeeds_notice_retried_until_delivered(settings, logins):
    down = SmtpPeer()  # its port is free: connections are refused
    services = Services.from_settings(with_notify(settings, down, notify_retry_seconds=30))
    _contacts(services, sekdes_grogol=("sekdes@grogol.test", None))
    request = _submitted(services, logins)
    assert request.state == "review"  # the transition did not wait for or fail on SMTP
    dispatcher = Dispatcher(services.factory, services.settings)
    first = dispatcher.run_once()
    assert (first.claimed, first.retrying, first.sent) == (1, 1, 0)
    [(notice_id, transport, outcome, error)] = _attempts(services)
    assert (transport, outcome) == ("email", "error") and "Connection refused" in error
    with transaction(services.factory) as session:
        notice = session.get(Notice, notice_id)
        assert (notice.status, notice.attempts) == ("pending", 1)
        due = notice.next_attempt_at
        tried = session.scalar(select(NoticeAttempt.attempted_at))
        assert (due - tried).total_seconds() == 30
    # Not due yet: left alone.
    assert dispatcher.run_once(now=due - timedelta(seconds=1)).claimed == 0
    down.start()
    try:
        assert dispatcher.run_once(now=due).sent == 1
        [mail] = down.messages
        assert mail["To"] == "sekdes@grogol.test"
    finally:
        down.stop()
    assert [(t, o) for _, t, o, _ in _attempts(services)] == [("email", "error"), ("email", "sent")]
    assert _notices(services, transport="email") == [("sekdes.grogol", "email", "queue", "sent")]


def test_retries_back_off_and_give_up_after_the_configured_attempts(settings, logins):
    down = SmtpPeer()
    services = Services.from_settings(
        with_notify(settings, down, notify_retry_seconds=10, notify_max_attempts=3)
    )
    _contacts(services, sekdes_grogol=("sekdes@grogol.test", None))
    _submitted(services, logins)
    dispatcher = Dispatcher(services.factory, services.settings)
    waits = []
    for _ in range(3):
        with transaction(services.factory) as session:
            due = session.scalar(select(Notice.next_attempt_at).where(Notice.transport == "email"))
        before = dispatcher.run_once(now=due - timedelta(seconds=1))
        assert before.claimed == 0  # a second before it is due: not taken
        dispatcher.clock = lambda due=due: due
        dispatcher.run_once(now=due)
        with transaction(services.factory) as session:
            notice = session.scalar(select(Notice).where(Notice.transport == "email"))
            if notice.next_attempt_at is not None:
                waits.append((notice.next_attempt_at - due).total_seconds())
    assert waits == [10, 20]  # doubling
    assert _notices(services, transport="email") == [("sekdes.grogol", "email", "queue", "failed")]
    assert [o for _, _, o, _ in _attempts(services)] == ["error", "error", "error"]


def test_webhook_error_answer_is_recorded_and_retried(
    settings,
    logins,
    webhook_receiver,
):
    services = Services.from_settings(with_notify(settings, webhook=webhook_receiver))
    _contacts(services, sekdes_grogol=(None, "081234567890"))
    _submitted(services, logins)
    dispatcher = Dispatcher(services.factory, services.settings)
    webhook_receiver.status = 503
    assert dispatcher.run_once().retrying == 1
    [(_, _, outcome, error)] = _attempts(services)
    assert outcome == "error" and "HTTP 503" in error
    webhook_receiver.status = 200
    with transaction(services.factory) as session:
        due = session.scalar(select(Notice.next_attempt_at).where(Notice.transport == "webhook"))
    assert dispatcher.run_once(now=due).sent == 1
    [hook] = webhook_receiver.requests
    assert hook.json()["to"] == "081234567890" and webhook_receiver.verify(hook)


def test_a_transport_that_is_not_configured_fails_the_notice_at_once(settings, logins):
    services = Services.from_settings(settings)  # no SMTP, no webhook
    _contacts(services, sekdes_grogol=("sekdes@grogol.test", None))
    _submitted(services, logins)
    report = Dispatcher(services.factory, services.settings).run_once()
    assert (report.claimed, report.failed) == (1, 1)
    [(_, _, outcome, error)] = _attempts(services)
    assert outcome == "error" and "not configured" in error


def test_citizen_hears_of_return_and_ready_letter(
    peered,
    logins,
    passphrase,
    smtp_server,
    webhook_receiver,
):
    request = _submitted(peered, logins)
    with transaction(peered.factory) as session:  # as a resident's online request would be
        session.execute(
            update(LetterRequest)
            .where(LetterRequest.id == request.id)
            .values(channel="warga", citizen_contact="warga@contoh.test")
        )
    sekdes = _actor(peered, "sekdes.grogol")
    with transaction(peered.factory) as session:
        returned = letter_requests.act(
            session, peered.catalog, sekdes, request.id, "return",
            version=request.version, reason="Keperluan kurang jelas",
        )  # fmt: skip
    assert _notices(peered, kind="returned") == [
        ("operator.grogol", "inapp", "returned", "sent"),
        ("warga@contoh.test", "email", "returned", "pending"),
    ]
    Dispatcher(peered.factory, peered.settings).run_once()
    [mail] = smtp_server.messages
    assert mail["To"] == "warga@contoh.test" and "Keperluan kurang jelas" in mail.get_content()
    assert "/staf/" not in mail.get_content()  # a resident gets no staff link

    operator = _actor(peered, "operator.grogol")
    with transaction(peered.factory) as session:
        session.execute(
            update(LetterRequest)
            .where(LetterRequest.id == request.id)
            .values(citizen_contact="+6285700000009")
        )
    with transaction(peered.factory) as session:
        moved = letter_requests.act(
            session, peered.catalog, operator, request.id, "submit", version=returned.version
        )
    with transaction(peered.factory) as session:
        moved = letter_requests.act(
            session, peered.catalog, sekdes, request.id, "approve", version=moved.version
        )
    head = _actor(peered, "head.grogol")
    peered.issuer.sign(head, request.id, version=moved.version, passphrase=passphrase)
    Dispatcher(peered.factory, peered.settings).run_once()
    ready = [h.json() for h in webhook_receiver.requests if h.json()["kind"] == "ready"]
    assert [(r["to"], r["audience"]) for r in ready] == [("+6285700000009", "warga")]
    assert "siap diambil" in ready[0]["text"] and ready[0]["link"] is None
    assert ("operator.grogol", "inapp", "ready", "sent") in _notices(peered)


def test_the_web_process_delivers_right_after_commit(peered, logins, smtp_server):
    # Polling once a minute: a delivery within the wait below comes from the commit's wake-up.
    app = create_app(replace(peered.settings, notify_poll_seconds=60))
    services = app.state.services
    _contacts(services, sekdes_grogol=("sekdes@grogol.test", None))
    with TestClient(app):  # runs the lifespan: the dispatcher thread starts and stops with it
        wait_for(lambda: _dispatcher_idle(services), what="the first pass")
        request = _submitted(services, logins)
        wait_for(lambda: smtp_server.messages, what="the e-mail")
    assert f"#{request.id}" in smtp_server.messages[0]["Subject"]


def _dispatcher_idle(services: Services) -> bool:
    from engine.notify.dispatcher import _running

    return all(d.passes >= 1 for d in _running) and len(_running) >= 1


def _make_many(services: Services, logins, count: int) -> None:
    for i in range(count):
        _submitted(services, logins, index=i % len(logins.sample_niks[GROGOL]))


def test_two_dispatchers_in_parallel_deliver_each_notice_once(
    peered,
    logins,
    smtp_server,
    webhook_receiver,
):
    _contacts(peered, sekdes_grogol=("sekdes@grogol.test", "+6281200000001"))
    _make_many(peered, logins, 12)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        dispatcher = Dispatcher(peered.factory, peered.settings, worker=name)
        try:
            start.wait()
            while dispatcher.run_once(limit=3).claimed:
                pass
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    sent_ids = [m["X-SuratDesa-Notice"] for m in smtp_server.messages]
    hook_ids = [h.json()["id"] for h in webhook_receiver.requests]
    assert len(sent_ids) == 12 and len(set(sent_ids)) == 12
    assert len(hook_ids) == 12 and len(set(hook_ids)) == 12
    attempts = _attempts(peered)
    assert len(attempts) == 24 and {o for _, _, o, _ in attempts} == {"sent"}
    assert len({n for n, *_ in attempts}) == 24
    with transaction(peered.factory) as session:
        workers = set(session.scalars(select(NoticeAttempt.worker)))
    assert workers <= {"w0", "w1"}


def test_staff_see_unread_count_and_mark_notices_read(services, logins):
    request = _submitted(services, logins)
    second = _submitted(services, logins, index=1)
    app = create_app(services.settings)
    sekdes = sign_in(app, "sekdes.grogol")
    home = sekdes.get(f"{P}/beranda").text
    assert 'id="nav-notices"' in home and '<b class="count" aria-label="' in home
    assert _badge(home) == 2
    page = sekdes.get(f"{P}/pemberitahuan").text
    assert f"#{request.id}" in page and f"#{second.id}" in page
    with transaction(services.factory) as session:
        mine = session.scalars(
            select(Notice.id).where(Notice.request_id == request.id).order_by(Notice.id)
        ).all()
    token = csrf_of(page)
    # Without the form's token: refused, nothing marked.
    assert sekdes.post(f"{P}/pemberitahuan/{mine[0]}/baca").status_code == 403
    opened = sekdes.post(f"{P}/pemberitahuan/{mine[0]}/baca", data={"csrf": token})
    assert opened.status_code == 303
    assert opened.headers["location"] == f"{P}/permohonan/{request.id}"
    assert _badge(sekdes.get(f"{P}/beranda").text) == 1
    # Someone else's notice reads as not found.
    other = sign_in(app, "sekdes.kenep")
    kenep_token = csrf_of(other.get(f"{P}/pemberitahuan").text)
    with transaction(services.factory) as session:
        theirs = session.scalar(select(Notice.id).where(Notice.request_id == second.id))
    r = other.post(f"{P}/pemberitahuan/{theirs}/baca", data={"csrf": kenep_token})
    assert r.status_code == 404
    assert sekdes.post(f"{P}/pemberitahuan/baca-semua", data={"csrf": token}).status_code == 303
    assert _badge(sekdes.get(f"{P}/beranda").text) == 0
    # The operator who moved the requests got no notice of their own moves.
    operator = sign_in(app, "operator.grogol")
    assert _badge(operator.get(f"{P}/beranda").text) == 0


def _badge(html: str) -> int:
    import re

    match = re.search(r'id="nav-notices">[^<]*(?:<b class="count"[^>]*>(\d+)</b>)?', html)
    assert match, "no Pemberitahuan link"
    return int(match.group(1) or 0)


def test_webhook_url_must_be_https_or_loopback():
    check_webhook_url("https://gateway.example.id/hook")
    check_webhook_url("http://127.0.0.1:9000/hook")
    check_webhook_url("http://[::1]:9000/hook")
    for bad in ("http://gateway.example.id/hook", "http://localhost.evil/hook", "ftp://x/y", ""):
        with pytest.raises(ValueError):
            check_webhook_url(bad)


def test_a_notice_that_cannot_be_written_never_fails_the_transition(services, logins, caplog):
    from engine.notify import outbox
    from engine.storage.models import WorkflowSnapshot

    operator = _actor(services, "operator.grogol")
    with transaction(services.factory) as session:
        request = letter_requests.create_request(
            session,
            services.catalog,
            operator,
            "surat-keterangan-umum",
            {"applicant": logins.sample_niks[GROGOL][0]},
            {"keperluan": "Melamar pekerjaan"},
        )
    # The pinned workflow text the notices are made from is gone: writing them fails.
    with transaction(services.factory) as session:
        session.delete(session.get(WorkflowSnapshot, request.workflow_sha256))
    outbox._flows.clear()
    with transaction(services.factory) as session:
        moved = letter_requests.act(
            session, services.catalog, operator, request.id, "submit", version=request.version
        )
    assert moved.state == "review"
    assert _notices(services) == []
    assert "notices for audit event" in caplog.text


def test_a_lapsed_claim_is_taken_over_and_sent_once(peered, logins, smtp_server):
    _contacts(peered, sekdes_grogol=("sekdes@grogol.test", None))
    _submitted(peered, logins)
    crashed = Dispatcher(peered.factory, peered.settings, worker="crashed")
    [claimed] = crashed._claim(crashed.clock(), 10)  # claimed, then the process died
    rescuer = Dispatcher(peered.factory, peered.settings, worker="rescuer")
    assert rescuer.run_once().claimed == 0  # the claim still holds
    with transaction(peered.factory) as session:
        lapse = session.get(Notice, claimed.id).claimed_until
    assert rescuer.run_once(now=lapse + timedelta(seconds=1)).sent == 1
    assert len(smtp_server.messages) == 1
    # Had the first one only been slow, its late outcome is recorded but changes nothing.
    assert crashed._deliver(claimed) == "lost"
    assert len(smtp_server.messages) == 2  # at least once: the gateway/reader dedupes by id
    assert {m["X-SuratDesa-Notice"] for m in smtp_server.messages} == {str(claimed.id)}
    assert _notices(peered, transport="email") == [("sekdes.grogol", "email", "queue", "sent")]


def test_the_signing_step_reaches_the_head_and_whoever_acts_as_head_today(services, logins):
    """The head's step is in the head's queue and in the queue of an acting head (Plh. today),
    so both hear of it; the sekdes who moved it there does not (they acted)."""
    with transaction(services.factory) as session:
        acting.record(
            session,
            Actor.of(get_user(session, "admin")),
            village_code=GROGOL,
            user_id=get_user(session, "kasi.grogol").id,
            prefix="Plh.",
            starts_on=today_wib(),
            ends_on=today_wib() + timedelta(days=3),
        )
    request = _submitted(services, logins)
    sekdes = _actor(services, "sekdes.grogol")
    with transaction(services.factory) as session:
        letter_requests.act(
            session, services.catalog, sekdes, request.id, "approve", version=request.version
        )
    with transaction(services.factory) as session:
        rows = session.execute(
            select(User.username)
            .join(Notice, Notice.user_id == User.id)
            .where(Notice.request_id == request.id, Notice.kind == "queue")
            .where(Notice.transport == "inapp")
            .order_by(Notice.id)
        ).scalars()
        assert list(rows) == ["sekdes.grogol", "head.grogol", "kasi.grogol"]
