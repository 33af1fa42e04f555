"""Issuing holds the database's write lock only for the short write: a letter rendered and
signed while another signer of the same village stores theirs takes the next number instead,
printed on a letter made again, with no gap, no duplicate and nothing left of the first try."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from engine.storage.db import transaction
from engine.storage.models import AuditEvent, Letter
from tests.letters import GROGOL, pdf_text
from tests.test_issuance import actor, ready_to_sign, sequences


def test_a_letter_whose_number_was_taken_meanwhile_is_made_again_with_the_next(
    services, logins, passphrase, tmp_path
):
    (first_id, first_version), (second_id, second_version) = ready_to_sign(
        services, logins, GROGOL, "grogol", 2
    )
    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    paused, resume = threading.Event(), threading.Event()
    calls: list[str] = []

    def hold_the_first_try() -> None:
        # Called between signing and storing. The first try waits there, after its render and
        # signature, while another letter of the village is issued from start to end.
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            paused.set()
            assert resume.wait(60)

    services.issuer.before_store = hold_the_first_try
    results: dict[str, Letter] = {}

    def issue_first() -> None:
        results["first"] = services.issuer.issue(
            head, first_id, version=first_version, signer=signer
        )

    worker = threading.Thread(target=issue_first, name="first")
    worker.start()
    assert paused.wait(60)
    # The first letter is rendered and signed (number 1 printed) but not stored; nothing is
    # locked, so the second letter is issued meanwhile, and gets number 1.
    results["second"] = services.issuer.issue(
        head, second_id, version=second_version, signer=signer
    )
    resume.set()
    worker.join(60)
    assert not worker.is_alive()
    assert calls == ["first", "MainThread", "first"]  # the first letter was made again
    assert (results["second"].seq, results["first"].seq) == (1, 2)
    assert sequences(services, GROGOL) == [1, 2]
    with transaction(services.factory) as session:
        first = session.get(Letter, results["first"].id)
        assert first.number.split("/")[1] == "002"
        text = " ".join(pdf_text(first.pdf, tmp_path).split())
        assert f"Nomor: {first.number}" in text  # the letter prints the number it was stored with
        assert session.scalar(select(func.count(Letter.id))) == 2
        signed = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "sign")).all()
        assert sorted(d["number"] for d in signed) == sorted(
            [results["first"].number, results["second"].number]
        )
