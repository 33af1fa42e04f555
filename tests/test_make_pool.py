"""Issue 12 item 4: a batch is rendered and signed on several processes (every core of a worker
machine), each opening the same key itself, while numbering and storing stay in the run's own
process: the numbers stay gapless, every letter is B-LTA and ASLI, and a child that dies
mid-batch costs no letter and no number."""

from __future__ import annotations

import os
import signal
from multiprocessing import forkserver
from pathlib import Path

from sqlalchemy import select

from engine.jobs import batch_runs
from engine.storage.db import transaction
from engine.storage.models import Letter, SignBatchItem
from engine.trust.registry import verify_letter
from engine.trust.verification import VALID
from tests.letters import GROGOL, assert_certified_and_timestamped
from tests.softhsm import PIN
from tests.test_hsm_issuance import HEAD, hsm_services, hsm_settings, token  # noqa: F401
from tests.test_issuance import actor, ready_to_sign, sequences


def _run(services, logins, secret: str, count: int, processes: int, before_store=None) -> int:
    pairs = ready_to_sign(services, logins, GROGOL, "grogol", count)
    head = actor(services, "head.grogol")
    owner = batch_runs.new_owner("test")
    batch_id = batch_runs.start(services.issuer, head, pairs, owner)
    signer = services.issuer.unlock(head, secret)
    services.issuer.stage_log = []
    services.issuer.before_store = before_store
    try:
        batch_runs.run(services.issuer, head, batch_id, signer, owner, processes=processes)
    finally:
        services.issuer.before_store = None
    return batch_id


def _letters(services, batch_id: int) -> list[Letter]:
    with transaction(services.factory) as session:
        items = session.scalars(
            select(SignBatchItem)
            .where(SignBatchItem.batch_id == batch_id)
            .order_by(SignBatchItem.position)
        ).all()
        assert [i.status for i in items] == ["done"] * len(items)
        letters = [session.get(Letter, i.letter_id) for i in items]
        session.expunge_all()
    return letters


def _check(services, letters: list[Letter], keys_dir: Path) -> None:
    assert sequences(services, GROGOL) == list(range(1, len(letters) + 1))
    assert len({x.request_id for x in letters}) == len(letters)
    for letter in letters[:: max(1, len(letters) // 4)]:
        assert_certified_and_timestamped(letter.pdf, keys_dir)
        assert verify_letter(letter.pdf, services.factory, keys_dir).status == VALID


def test_a_batch_is_made_on_two_processes_and_stays_gapless(services, logins, passphrase):
    batch_id = _run(services, logins, passphrase, 30, processes=2)
    makers = {stage.maker for stage in services.issuer.stage_log}
    assert len(makers) == 2 and os.getpid() not in makers  # both children made letters
    _check(services, _letters(services, batch_id), services.settings.keys_dir)


def _pool_children() -> list[int]:
    """The processes the forkserver forked (the pool's children)."""
    server = forkserver._forkserver._forkserver_pid
    path = Path(f"/proc/{server}/task/{server}/children")
    return [int(pid) for pid in path.read_text().split()]


def test_a_child_killed_mid_batch_costs_no_letter_and_no_number(services, logins, passphrase):
    """After the first group is made, one child is killed with SIGKILL: the pool breaks, the
    remaining groups are issued in the run's own process, every letter exactly once."""
    killed = []

    def kill_a_child() -> None:
        if not killed:
            victim = _pool_children()[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    batch_id = _run(services, logins, passphrase, 40, processes=2, before_store=kill_a_child)
    assert killed
    makers = [stage.maker for stage in services.issuer.stage_log]
    assert os.getpid() in makers  # the rest was made here
    _check(services, _letters(services, batch_id), services.settings.keys_dir)


def test_each_child_opens_its_own_token_session(hsm_services, hsm_settings, logins):  # noqa: F811
    """A head whose key is on the HSM: each child logs in to the token with the PIN itself
    (PKCS#11 sessions cannot cross processes) and signs with the token's key."""
    batch_id = _run(hsm_services, logins, PIN, 20, processes=2)
    makers = {stage.maker for stage in hsm_services.issuer.stage_log}
    assert len(makers) == 2 and os.getpid() not in makers
    letters = _letters(hsm_services, batch_id)
    _check(hsm_services, letters, hsm_settings.keys_dir)
    assert {x.signer_name for x in letters} == {letters[0].signer_name}
