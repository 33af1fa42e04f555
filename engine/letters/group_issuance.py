"""Group commit for batch signing: the letters of a batch are drafted, numbered, rendered and
signed outside any transaction, a few at a time, and each group is stored in ONE short write
(one turn on the audit chain's head row and one commit flush for the group, instead of one
each per letter).

The guarantees are those of :meth:`Issuer.issue`: numbers are taken in order and checked, so
the group's write stores only the letters whose printed numbers directly follow the sequence's
last number as it is at that moment, under its row lock (a gapless run); a letter whose number
another signer took meanwhile (or that follows a letter that could not be stored) is a loser
and is issued again on its own with the next number. Nothing is written before the group's
write, so a crash before its commit leaves no letter and no used number. A signing certificate
revoked while the group was being signed stores none of it (engine.letters.signer_check).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from sqlalchemy import select

from engine.errors import Conflict, SuratDesaError
from engine.letters import numbering
from engine.letters.issuance import SIGN, Issuer, Stages, _Draft, _Made, apply_effects
from engine.letters.make_pool import Blank, MakePool
from engine.letters.revocation import mark_replaced
from engine.letters.signer_check import SignerRevoked, check_not_revoked
from engine.people.users import Actor
from engine.requests.letter_requests import move_many
from engine.requests.statemachine import ISSUED
from engine.storage.db import read_only, transaction
from engine.storage.models import Letter, LetterRequest
from engine.trust.signing import LoadedSigner, TsaUnavailable

log = logging.getLogger("suratdesa.issuance")

GROUP_SIZE = 8  # letters per short write

Outcome = Letter | Exception
# Called after each group with (position in ``items``, outcome) pairs, in order.
OnDone = Callable[[list[tuple[int, Outcome]]], None]


@dataclass
class _Group:
    items: list[tuple[int, int, int]]  # (position, request id, version)
    results: dict[int, Outcome] = field(default_factory=dict)
    drafts: dict[int, _Draft] = field(default_factory=dict)
    made: dict[int, _Made] = field(default_factory=dict)
    numbered: dict[int, int] = field(default_factory=dict)  # position -> the number it prints
    read: float = 0.0  # seconds per letter to draft
    begun: bool = False  # drafting it was tried
    ready: bool = False  # drafted and numbered (and, with a pool, handed to it)
    blanks: dict[int, tuple[_Made, Blank]] = field(default_factory=dict)
    futures: list[Future] = field(default_factory=list)


def issue_group(
    issuer: Issuer,
    actor: Actor,
    items: Sequence[tuple[int, int]],
    signer: LoadedSigner,
    *,
    on_done: OnDone | None = None,
    size: int = GROUP_SIZE,
    pool: MakePool | None = None,
) -> list[Outcome]:
    """Issue (request id, version) pairs in groups of ``size``; one outcome per pair, a Letter
    or the exception that stopped it (an engine error, or anything else for a broken letter).

    With ``pool``, each group's letters are rendered and signed on the pool's processes, and
    the run works meanwhile: it drafts and numbers the next group and hands it to the pool
    before it stores this one. The next group's numbers then run on from this group's (they
    are not stored yet); if this group's write does not store exactly what it numbered (a
    loser, a failed letter), the next group's letters lose the race in its own write and are
    issued one by one, and the rest of the batch goes group after group again."""
    outcomes: dict[int, Outcome] = {}
    positions = [(p, rid, ver) for p, (rid, ver) in enumerate(items)]
    groups = [_Group(positions[i : i + size]) for i in range(0, len(positions), size)]
    ahead: dict[numbering.Register, int] | None = {} if pool is not None else None
    in_hand: _Group | None = None
    for group in [*groups, None]:
        if group is not None and (ahead is not None or in_hand is None):
            _begin(issuer, actor, group, signer, pool, ahead)
        if in_hand is not None:
            pool, clean = _finish(issuer, actor, in_hand, signer, pool)
            outcomes.update(in_hand.results)
            if on_done is not None:
                on_done(sorted(in_hand.results.items()))
            if not clean or pool is None:
                ahead = None  # from now on each group is numbered after the last is stored
        if group is not None and not group.begun and ahead is None:
            _begin(issuer, actor, group, signer, pool, None)
        in_hand = group
    return [outcomes[p] for p, _, _ in positions]


def _begin(
    issuer: Issuer,
    actor: Actor,
    group: _Group,
    signer: LoadedSigner,
    pool: MakePool | None,
    ahead: dict[numbering.Register, int] | None,
) -> None:
    """Draft and number the group (per register: the number each would get now, or after
    the numbers of the group still in hand, ``ahead``); with a pool, hand it over. A failure
    here leaves the group not ready: it is issued one letter at a time."""
    group.begun = True
    try:
        t0 = time.perf_counter()
        with read_only(issuer.factory) as session:
            for position, request_id, version in group.items:
                try:
                    group.drafts[position] = issuer._draft(
                        actor, request_id, version, session=session
                    )
                except SuratDesaError as exc:
                    group.results[position] = exc
        group.read = (time.perf_counter() - t0) / len(group.items)
        next_seq = ahead if ahead is not None else {}
        for position, draft in group.drafts.items():
            seq = max(draft.seq, next_seq.get(draft.register, 0))
            next_seq[draft.register] = seq + 1
            group.numbered[position] = seq
        if pool is not None:
            group.blanks = {
                p: issuer._blank(group.drafts[p], seq, signer) for p, seq in group.numbered.items()
            }
            blanks = [blank for _, blank in group.blanks.values()]
            group.futures = pool.submit(blanks, issuer._archive(signer))
        group.ready = True
    except Exception:  # noqa: BLE001 - the group is issued one letter at a time instead
        log.exception("could not start a group; issuing its letters one by one")


def _finish(
    issuer: Issuer, actor: Actor, group: _Group, signer: LoadedSigner, pool: MakePool | None
) -> tuple[MakePool | None, bool]:
    """Make (or collect) and store the group, then issue its losers one by one. Returns the
    pool (None once a child died) and whether the write stored exactly what was numbered."""
    redo = group.items
    if group.ready:
        try:
            _make_all(issuer, group, signer, pool)
            redo = _store_group(issuer, actor, group)
        except BrokenProcessPool:  # a child died: this group one by one, the rest made here
            log.warning("a signing process died; the batch goes on in this process")
            pool, group.results = None, {}
        except Exception:  # the group as a whole failed: each letter is issued on its own
            log.exception("group write failed; issuing its letters one by one")
            group.results = {}
    clean = (
        group.ready
        and not redo
        and all(isinstance(group.results.get(p), Letter) for p in group.numbered)
    )
    for position, request_id, version in redo:  # losers of a race, one by one
        down = _tsa_down(group)
        if down is not None:  # not asked again for each letter: they wait, numbers free
            group.results[position] = down
            continue
        try:
            group.results[position] = issuer.issue(
                actor, request_id, version=version, signer=signer
            )
        except Exception as exc:  # noqa: BLE001 - reported per letter
            group.results[position] = exc
    return pool, clean


def _store_group(issuer: Issuer, actor: Actor, group: _Group) -> list[tuple[int, int, int]]:
    """Store the made letters in one write; returns the items to issue again on their own."""
    if issuer.before_store is not None:
        issuer.before_store()
    if not group.made:
        return []
    t1 = time.perf_counter()
    stored, losers = _store(issuer, actor, group)
    letters = [p for p, outcome in stored.items() if isinstance(outcome, Letter)]
    write = (time.perf_counter() - t1) / max(len(letters), 1)
    group.results.update(stored)
    if issuer.stage_log is not None:
        for position in letters:
            made = group.made[position]
            issuer.stage_log.append(Stages(group.read, made.render, made.sign, write, made.maker))
    return [item for item in group.items if item[0] in losers]


def _make_all(issuer: Issuer, group: _Group, signer: LoadedSigner, pool: MakePool | None) -> None:
    """Make the group's numbered letters here, or collect them from the pool. A letter that
    fails keeps its number free: the letters after it in its register lose the race in
    ``_store`` and are redone one by one."""
    if pool is None or not group.futures:
        for position, seq in group.numbered.items():
            down = _tsa_down(group)
            if down is not None:
                group.results[position] = down
                continue
            try:
                group.made[position] = issuer._make(group.drafts[position], seq, signer)
            except SuratDesaError as exc:
                group.results[position] = exc
        return
    produced = pool.collect(group.futures)
    for (position, (made, _)), result in zip(group.blanks.items(), produced, strict=True):
        if isinstance(result, SuratDesaError):
            group.results[position] = result
        elif isinstance(result, BaseException):
            raise result  # a broken letter: the group is issued again one by one
        else:
            group.made[position] = issuer._finish(made, result)


def _tsa_down(group: _Group) -> TsaUnavailable | None:
    """The TSA's silence for a letter of this group, if any: the letters after it are not
    made (each would wait for the TSA again); they fail with it and keep their numbers free."""
    return next((r for r in group.results.values() if isinstance(r, TsaUnavailable)), None)


def _store(issuer: Issuer, actor: Actor, group: _Group) -> tuple[dict[int, Outcome], set[int]]:
    """The group's short write: requests locked and checked, a gapless run of numbers taken
    per sequence, the letter rows in one insert, each letter's effects, then the audited
    moves of all of them (the audit appends last). Returns the outcomes (letters stored,
    requests moved by someone else) and the losers' positions."""
    outcomes: dict[int, Outcome] = {}
    with transaction(issuer.factory) as session:
        ids = [group.drafts[p].request.id for p in group.made]
        requests = {
            r.id: r
            for r in session.scalars(
                select(LetterRequest)
                .where(LetterRequest.id.in_(ids))
                .order_by(LetterRequest.id)
                .with_for_update()
            )
        }
        versions = {p: v for p, _, v in group.items}
        ready = []
        for position in group.made:
            request = requests[group.drafts[position].request.id]
            if request.version != versions[position]:
                outcomes[position] = Conflict(
                    "Permohonan ini sudah diproses orang lain sejak Anda membukanya. Muat ulang."
                )
            else:
                ready.append(position)
        if ready:
            try:  # one signer, one certificate for the whole group
                check_not_revoked(session, actor.user_id, group.made[ready[0]].serial)
            except SignerRevoked as exc:
                outcomes.update({p: exc for p in ready})
                ready = []
        winners = _take_numbers(session, group, ready)
        losers = set(ready) - set(winners)
        letters = {
            p: Issuer.letter_row(
                group.drafts[p], group.made[p], requests[group.drafts[p].request.id]
            )
            for p in winners
        }
        session.add_all(letters.values())
        session.flush()  # one INSERT for the group's letters
        moves = []
        for position in winners:
            draft, letter = group.drafts[position], letters[position]
            request = requests[draft.request.id]
            if request.replaces_letter_id is not None:
                mark_replaced(session, letter, request.replaces_letter_id, actor)
            apply_effects(session, draft.spec, request)
            detail = {"number": letter.number, "letter_id": letter.id, "sha256": letter.pdf_sha256}
            moves.append((request, versions[position], detail))
        # Last, as for one letter: the audited moves (one update, one batch of audit events).
        move_many(session, actor, moves, SIGN, ISSUED)
    outcomes.update(letters)
    return outcomes, losers


def _take_numbers(session, group: _Group, ready: list[int]) -> list[int]:
    """Per sequence, the letters whose printed numbers run on from its last number without a
    gap; their numbers are taken (the sequence row stays locked until commit)."""
    by_key: dict[numbering.Register, list[int]] = {}
    for position in ready:
        by_key.setdefault(group.drafts[position].register, []).append(position)
    winners: list[int] = []
    for key, positions in sorted(by_key.items()):  # one lock order for every writer
        seqs = [group.made[p].seq for p in positions]
        contiguous = seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        last, took_all = numbering.take_run(session, key, seqs[0], len(seqs) if contiguous else 0)
        if took_all and contiguous:
            winners += positions
            continue
        run = []
        for position, seq in zip(positions, seqs, strict=True):
            if seq == last + len(run) + 1:
                run.append(position)
        # Printed numbers are increasing, so ``run`` is a prefix of what follows ``last``.
        if run:
            numbering.advance_to(session, key, last + len(run))
        winners += run
    return sorted(winners)
