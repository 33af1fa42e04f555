"""Batch signing stores each group of letters in one short write (group commit). A group that
loses a race for numbers to a letter issued in between stores only the letters whose printed
numbers still follow the sequence without a gap; the others are made again with the next
numbers: every request gets one letter, numbers stay gapless, each PDF prints the number it was
stored with, and the audit chain verifies."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.errors import Conflict
from engine.jobs import batch_runs
from engine.letters.group_issuance import issue_group
from engine.storage.audit import verify_chain
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, Letter, SignBatchItem
from tests.letters import GROGOL, pdf_text
from tests.test_issuance import actor, ready_to_sign, sequences


def _letters_by_request(services) -> dict[int, list[Letter]]:
    with transaction(services.factory) as session:
        out: dict[int, list[Letter]] = {}
        for letter in session.scalars(select(Letter).order_by(Letter.seq)):
            out.setdefault(letter.request_id, []).append(letter)
        return out


def _check_stored(services, tmp_path, count: int) -> None:
    """Numbers 1..count, one letter per request, each printing its number, chain intact."""
    assert sequences(services, GROGOL) == list(range(1, count + 1))
    letters = _letters_by_request(services)
    assert all(len(found) == 1 for found in letters.values())
    for [letter] in letters.values():
        assert letter.number.split("/")[1] == f"{letter.seq:03}"
        text = " ".join(pdf_text(letter.pdf, tmp_path).split())
        assert f"Nomor: {letter.number}" in text
    with transaction(services.factory) as session:
        assert verify_chain(session).ok
        signed = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "sign"))
        assert sorted(d["number"] for d in signed) == sorted(
            [found[0].number for found in letters.values()]
        )


def test_a_batch_group_that_loses_a_number_to_a_letter_issued_meanwhile(
    services, logins, passphrase, tmp_path
):
    *group, (single_id, single_version) = ready_to_sign(services, logins, GROGOL, "grogol", 5)
    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    owner = batch_runs.new_owner()
    batch_id = batch_runs.start(services.issuer, head, group, owner)

    def issue_one_meanwhile() -> None:
        # Called once the group's four letters are rendered and signed (numbers 1-4 printed),
        # before their write: another letter of the village takes number 1 meanwhile.
        services.issuer.before_store = None
        services.issuer.issue(head, single_id, version=single_version, signer=signer)

    services.issuer.before_store = issue_one_meanwhile
    batch_runs.run(services.issuer, head, batch_id, signer, owner)

    letters = _letters_by_request(services)
    assert letters[single_id][0].seq == 1
    # Letters printing 2, 3 and 4 were stored as made; the one printing 1 was made again as 5.
    assert [letters[rid][0].seq for rid, _ in group] == [5, 2, 3, 4]
    _check_stored(services, tmp_path, 5)
    with transaction(services.factory) as session:
        statuses = session.scalars(
            select(SignBatchItem.status).where(SignBatchItem.batch_id == batch_id)
        ).all()
        assert statuses == ["done"] * 4


def test_a_request_moved_meanwhile_fails_alone_and_the_letters_after_it_are_remade(
    services, logins, passphrase, tmp_path
):
    items = ready_to_sign(services, logins, GROGOL, "grogol", 4)
    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    moved_id, moved_version = items[1]

    def sign_the_second_elsewhere() -> None:
        # The second request of the group is signed on its own meanwhile (number 1): the
        # group's copy of it is refused, and storing the group's others as printed (1, 3, 4)
        # would leave a gap or a duplicate, so they are made again.
        services.issuer.before_store = None
        services.issuer.issue(head, moved_id, version=moved_version, signer=signer)

    services.issuer.before_store = sign_the_second_elsewhere
    outcomes = issue_group(services.issuer, head, items, signer)

    assert isinstance(outcomes[1], Conflict)
    assert [o.seq for i, o in enumerate(outcomes) if i != 1] == [2, 3, 4]
    _check_stored(services, tmp_path, 4)
    with transaction(services.factory) as session:
        assert session.scalar(select(func.count(Letter.id))) == 4


def test_a_batch_larger_than_a_group_is_stored_in_order_without_gaps(
    services, logins, passphrase, tmp_path
):
    items = ready_to_sign(services, logins, GROGOL, "grogol", 11)
    head = actor(services, "head.grogol")
    signer = services.issuer.unlock(head, passphrase)
    outcomes = issue_group(services.issuer, head, items, signer, size=4)
    assert [o.seq for o in outcomes] == list(range(1, 12))
    _check_stored(services, tmp_path, 11)
