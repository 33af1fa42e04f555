"""Issuing letters: numbering under concurrency, double signing, and crashes mid-way."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from engine.errors import Conflict
from engine.people.users import Actor
from engine.requests.letter_requests import create_request, load_for_actor, move
from engine.storage.db import transaction
from engine.storage.models import Letter, LetterRequest, NumberSequence, User
from tests.letters import GROGOL, KENEP


def actor(services, username: str) -> Actor:
    with transaction(services.factory) as session:
        return Actor.of(session.scalar(select(User).where(User.username == username)))


def ready_to_sign(services, logins, village: str, slug: str, count: int) -> list[tuple[int, int]]:
    """Requests in the signing step, made through the engine (no HTTP) to keep setup quick."""
    operator = actor(services, f"operator.{slug}")
    sekdes = actor(services, f"sekdes.{slug}")
    out = []
    with transaction(services.factory) as session:
        for i in range(count):
            nik = logins.sample_niks[village][i % 4]
            req = create_request(
                session,
                services.catalog,
                operator,
                "surat-keterangan-umum",
                {"applicant": nik},
                {"keperluan": f"Keperluan nomor {i}"},
            )
            move(session, operator, req, "submit", "review", version=1, reason=None)
            move(session, sekdes, req, "approve", "signing", version=2, reason=None)
            out.append((req.id, req.version))
    return out


def sequences(services, village: str) -> list[int]:
    with transaction(services.factory) as session:
        return sorted(
            session.scalars(select(Letter.seq).where(Letter.village_code == village)).all()
        )


@pytest.mark.slow
def test_200_letters_signed_concurrently_get_unique_gapless_numbers(services, logins, passphrase):
    per_village = 100
    work = {
        GROGOL: ready_to_sign(services, logins, GROGOL, "grogol", per_village),
        KENEP: ready_to_sign(services, logins, KENEP, "kenep", per_village),
    }
    heads = {GROGOL: actor(services, "head.grogol"), KENEP: actor(services, "head.kenep")}
    signers = {v: services.issuer.unlock(heads[v], passphrase) for v in work}
    jobs = [(v, rid, ver) for v, items in work.items() for rid, ver in items]
    errors: list[Exception] = []

    def issue(job):
        village, request_id, version = job
        try:
            services.issuer.issue(
                heads[village], request_id, version=version, signer=signers[village]
            )
        except Exception as exc:  # collected: any failure fails the test below
            errors.append(exc)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(issue, jobs))
    assert errors == []
    for village in work:
        assert sequences(services, village) == list(range(1, per_village + 1))
    with transaction(services.factory) as session:
        numbers = session.scalars(select(Letter.number)).all()
        assert len(numbers) == len(set(numbers)) == 2 * per_village
        assert (
            session.scalar(
                select(NumberSequence.last_seq).where(NumberSequence.village_code == GROGOL)
            )
            == per_village
        )


def test_signing_the_same_request_twice_at_once_issues_one_letter(services, logins, passphrase):
    [(request_id, version)] = ready_to_sign(services, logins, GROGOL, "grogol", 1)
    head = actor(services, "head.grogol")
    barrier = threading.Barrier(2)
    results: list[object] = []

    def click():
        barrier.wait()
        try:
            results.append(
                services.issuer.sign(head, request_id, version=version, passphrase=passphrase)
            )
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Letter"]
    assert sequences(services, GROGOL) == [1]


@pytest.mark.parametrize("stage", ["render", "sign", "store"])
def test_a_crash_mid_issue_leaves_no_letter_and_no_burned_number(
    services, logins, passphrase, monkeypatch, stage
):
    [(request_id, version)] = ready_to_sign(services, logins, GROGOL, "grogol", 1)
    head = actor(services, "head.grogol")

    def boom(*args, **kwargs):
        raise RuntimeError(f"simulated failure in {stage}")

    if stage == "render":
        monkeypatch.setattr("engine.letters.make_pool.render_letter", boom)
    elif stage == "sign":
        monkeypatch.setattr("engine.letters.make_pool.sign_letter", boom)
    else:
        services.issuer.before_store = boom
    with pytest.raises(RuntimeError, match="simulated"):
        services.issuer.sign(head, request_id, version=version, passphrase=passphrase)
    with transaction(services.factory) as session:
        assert session.scalar(select(func.count(Letter.id))) == 0
        assert session.scalar(select(func.count()).select_from(NumberSequence)) == 0
        request = session.get(LetterRequest, request_id)
        assert (request.state, request.version) == ("signing", version)
    # Once the fault is gone the same request signs, and gets number 1.
    monkeypatch.undo()
    services.issuer.before_store = None
    letter = services.issuer.sign(head, request_id, version=version, passphrase=passphrase)
    assert letter.seq == 1


def test_sequence_restarts_on_the_first_of_january(services, logins, passphrase):
    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    jobs = ready_to_sign(services, logins, GROGOL, "grogol", 3)
    # 31 Dec 2026 23:30 WIB is 16:30 UTC; 1 Jan 2027 00:30 WIB is 17:30 UTC.
    moments = [
        datetime(2026, 12, 31, 16, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 16, 30, tzinfo=UTC),
        datetime(2026, 12, 31, 17, 30, tzinfo=UTC),
    ]
    numbers = []
    for (request_id, version), moment in zip(jobs, moments, strict=True):
        services.issuer.clock = lambda moment=moment: moment
        numbers.append(
            services.issuer.issue(head, request_id, version=version, signer=signer).number
        )
    assert numbers[0].split("/")[1:] == ["001", GROGOL, "XII", "2026"]
    assert numbers[1].split("/")[1:] == ["002", GROGOL, "XII", "2026"]
    assert numbers[2].split("/")[1:] == ["001", GROGOL, "I", "2027"]


def test_stale_version_is_refused(services, logins, passphrase):
    [(request_id, version)] = ready_to_sign(services, logins, GROGOL, "grogol", 1)
    head = actor(services, "head.grogol")
    with pytest.raises(Conflict):
        services.issuer.sign(head, request_id, version=version - 1, passphrase=passphrase)
    with transaction(services.factory) as session:
        assert load_for_actor(session, head, request_id).state == "signing"
