"""Batch signing that survives the death of the process running it.

The process that runs a batch holds a *lease* on its ``sign_batches`` row (owner, until when)
and renews it every third of its length (a heartbeat). A process killed with -9, or a run
stopped by a database restart, stops renewing; once the lease has run out the batch is
*interrupted*, known from the row, not guessed from a timer in some process. Its page then
shows what is true: the letters stored (from the item rows), and the rest as interrupted.

Nothing secret is kept anywhere: a software key is unlocked with its holder's passphrase for
one run and dropped with it. An interrupted batch is resumed by its signer entering the
passphrase again (``resume``); the run then issues exactly the items still pending. A letter
is never issued twice: issuance stores a letter only if its request still has the version the
head ticked (and ``letters.request_id`` is unique), and the items whose letter was stored just
before the process died, with their row not yet written, are recognised (``_reconcile``) and
shown done with their number.

A run writes its results only while it still holds the lease; a run that lost it (it stalled
longer than the lease and someone resumed meanwhile) stops at its next write. A database
error while issuing (the server restarting) leaves the item pending and ends the run: the
batch is then interrupted and can be resumed, instead of the letters being marked failed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import Conflict, NotFound
from engine.letters.group_issuance import GROUP_SIZE, Outcome, issue_group
from engine.letters.issuance import Issuer
from engine.letters.make_pool import MakePool
from engine.people.users import Actor
from engine.requests import batches
from engine.storage.db import read_only, transaction
from engine.storage.models import Letter, LetterRequest, SignBatch, SignBatchItem, User
from engine.timeutil import now_utc
from engine.trust.signing import LoadedSigner, TsaUnavailable

log = logging.getLogger("suratdesa.jobs")

LEASE_SECONDS = 30.0  # a run renews its lease every third of this

# Errors that mean "the database went away", not "this letter is wrong": the item stays pending.
TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError)
# What a letter waits out instead of failing: those, and a timestamp service that does not
# answer (no letter is issued with a time of our own making; engine.trust.signing).
WAITS = (*TRANSIENT, TsaUnavailable)


class LeaseLost(Exception):
    """The run no longer holds its batch's lease: it stops without writing."""


class Interrupted(Exception):
    """The database failed under the run: the pending items stay pending."""


def new_owner(kind: str = "web") -> str:
    """A lease owner name: which machine and process runs the batch (shown in logs only)."""
    return f"{kind}:{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- the lease


def _claim(
    factory: sessionmaker[Session],
    batch_id: int,
    owner: str,
    seconds: float,
    *,
    take: bool,
    over: str | None = None,
) -> bool:
    """Take (``take``: only if nobody holds a live lease, or ``over`` holds it) or renew (only
    if ``owner`` holds it) the batch's lease. False if the batch is finished or someone else
    holds it."""
    with transaction(factory) as session:
        batch = session.scalars(
            select(SignBatch).where(SignBatch.id == batch_id).with_for_update()
        ).one_or_none()
        if batch is None or batch.finished_at is not None:
            return False
        now = now_utc()
        if batch.lease_owner != owner:
            live = batch.lease_until is not None and batch.lease_until > now
            live = live and (over is None or batch.lease_owner != over)
            if not take or live:
                return False
        batch.lease_owner = owner
        batch.lease_until = now + timedelta(seconds=seconds)
        batch.heartbeat_at = now
        return True


def claim(
    factory: sessionmaker[Session],
    batch_id: int,
    owner: str,
    seconds: float,
    *,
    over: str | None = None,
) -> bool:
    return _claim(factory, batch_id, owner, seconds, take=True, over=over)


def hsm_signer(factory: sessionmaker[Session], actor: Actor) -> bool:
    """Is the actor's signing key on the HSM token (a queue worker can run their batch)?"""
    with transaction(factory) as session:
        label = session.scalar(select(User.signer_hsm_label).where(User.id == actor.user_id))
        return label is not None


def renew(factory: sessionmaker[Session], batch_id: int, owner: str, seconds: float) -> bool:
    return _claim(factory, batch_id, owner, seconds, take=False)


def release(factory: sessionmaker[Session], batch_id: int, owner: str) -> None:
    """Give the lease up now (best effort: if the database is down the lease runs out)."""
    try:
        with transaction(factory) as session:
            session.execute(
                update(SignBatch)
                .where(SignBatch.id == batch_id, SignBatch.lease_owner == owner)
                .values(lease_owner=None, lease_until=now_utc())
            )
    except Exception:  # noqa: BLE001 - the lease runs out by itself
        log.warning("could not release the lease of batch %s", batch_id, exc_info=True)


class Heartbeat:
    """Renews a lease every third of its length on a thread until stopped; ``lost`` is set
    when a renewal finds the lease taken by another run (renewals that fail because the
    database is down are retried until the lease would have run out anyway)."""

    def __init__(self, factory: sessionmaker[Session], batch_id: int, owner: str, seconds: float):
        self.factory, self.batch_id, self.owner, self.seconds = factory, batch_id, owner, seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{batch_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not renew(self.factory, self.batch_id, self.owner, self.seconds):
                    self.lost.set()
                    return
            except Exception:  # noqa: BLE001 - the database may come back before the lease ends
                log.warning("lease renewal failed for batch %s", self.batch_id, exc_info=True)


# --------------------------------------------------------------------------- starting and running


def start(
    issuer: Issuer,
    actor: Actor,
    requests: Sequence[tuple[int, int]],
    owner: str,
    *,
    lease_seconds: float = LEASE_SECONDS,
) -> int:
    """Record the batch (engine.requests.batches.start) and take its lease for ``owner``, the
    process that will run it; if that process dies before the run starts, the lease runs out
    and the batch shows as interrupted."""
    batch_id = batches.start(issuer, actor, requests)
    claim(issuer.factory, batch_id, owner, lease_seconds)
    return batch_id


def run(
    issuer: Issuer,
    actor: Actor,
    batch_id: int,
    signer: LoadedSigner,
    owner: str,
    *,
    lease_seconds: float = LEASE_SECONDS,
    processes: int | None = None,
) -> None:
    """Issue the batch's pending letters under ``owner``'s lease (taken by ``start`` or
    ``resume``), renewing it meanwhile; closes ``signer``. Ends early, leaving the rest pending
    (interrupted, resumable), if the lease is lost or the database fails. ``processes``
    (default: the settings' ``sign_processes``) render and sign the letters, each with its own
    opened key (engine.letters.make_pool); numbering and storing stay in this process."""
    processes = processes or issuer.settings.sign_processes
    with signer:
        try:
            with Heartbeat(issuer.factory, batch_id, owner, lease_seconds) as beat:
                _run_pending(issuer, actor, batch_id, signer, owner, beat, processes)
        except (LeaseLost, Interrupted, *TRANSIENT) as exc:
            log.warning("batch %s stopped, resumable: %s", batch_id, exc)
        finally:
            release(issuer.factory, batch_id, owner)


def _run_pending(
    issuer: Issuer,
    actor: Actor,
    batch_id: int,
    signer: LoadedSigner,
    owner: str,
    beat: Heartbeat,
    processes: int,
) -> None:
    with transaction(issuer.factory) as session:
        _hold(session, batch_id, owner)
        _reconcile(session, batch_id)
        items = [
            (i.id, i.request_id, i.version)
            for i in session.scalars(
                select(SignBatchItem)
                .where(SignBatchItem.batch_id == batch_id, SignBatchItem.status == "pending")
                .order_by(SignBatchItem.position)
            )
        ]

    def write(done: list[tuple[int, Outcome]]) -> None:
        if beat.lost.is_set():
            raise LeaseLost(f"batch {batch_id}")
        with transaction(issuer.factory) as session:
            _hold(session, batch_id, owner)
            transient = False
            for position, outcome in done:
                if isinstance(outcome, WAITS):
                    transient = True  # stays pending: the letter is issued when resumed
                    continue
                values = batches.item_values(outcome)
                if isinstance(outcome, Conflict):
                    values = _issued_meanwhile(session, items[position][0]) or values
                session.execute(
                    update(SignBatchItem)
                    .where(SignBatchItem.id == items[position][0])
                    .where(SignBatchItem.status == "pending")
                    .values(**values)
                )
        if transient:
            raise Interrupted(f"batch {batch_id}: database or TSA unavailable while issuing")

    pairs = [(rid, version) for _, rid, version in items]
    if processes > 1 and signer.source is not None and len(items) > GROUP_SIZE:
        # One group per write as before, sized so that every process has letters to make.
        keys, tsa = issuer.settings.keys_dir, issuer.settings.tsa_url
        with MakePool(keys, tsa, signer.source, processes) as pool:
            size = GROUP_SIZE * processes
            issue_group(issuer, actor, pairs, signer, on_done=write, size=size, pool=pool)
    else:
        issue_group(issuer, actor, pairs, signer, on_done=write)
    with transaction(issuer.factory) as session:
        _hold(session, batch_id, owner)
        session.execute(
            update(SignBatch).where(SignBatch.id == batch_id).values(finished_at=now_utc())
        )


def _hold(session: Session, batch_id: int, owner: str) -> None:
    """Lock the batch row and check that ``owner`` still holds its lease."""
    held = session.scalar(
        select(SignBatch.lease_owner).where(SignBatch.id == batch_id).with_for_update()
    )
    if held != owner:
        raise LeaseLost(f"batch {batch_id}")


def _issued_meanwhile(session: Session, item_id: int) -> dict[str, object] | None:
    """An item's request that was signed from exactly the version the head ticked, by the
    batch's signer after the batch began (by this batch, before its process died with the
    item's row not yet written): done, with its letter. A letter signed before the batch (the
    same ticks sent twice) stays a failure of this batch."""
    item = session.get(SignBatchItem, item_id)
    batch = session.get(SignBatch, item.batch_id) if item is not None else None
    if item is None or batch is None:
        return None
    found = session.execute(
        select(Letter.id)
        .join(LetterRequest, LetterRequest.id == Letter.request_id)
        .where(
            Letter.request_id == item.request_id,
            Letter.signer_id == batch.user_id,
            Letter.issued_at >= batch.created_at,
            LetterRequest.version == item.version + 1,
        )
    ).first()
    return {"status": "done", "letter_id": found[0], "message": None} if found else None


def _reconcile(session: Session, batch_id: int) -> None:
    for item in session.scalars(
        select(SignBatchItem).where(
            SignBatchItem.batch_id == batch_id, SignBatchItem.status == "pending"
        )
    ).all():
        values = _issued_meanwhile(session, item.id)
        if values is not None:
            item.status, item.letter_id = "done", values["letter_id"]  # type: ignore[assignment]


# --------------------------------------------------------------------------- view and resume


@dataclass(frozen=True)
class BatchState:
    """A batch as its page shows it: the items (engine.requests.batches.BatchView) and whether
    the run was interrupted (its lease ran out with items still pending)."""

    batch: batches.BatchView
    interrupted: bool
    hsm: bool  # the signer's key is on the HSM token (resumed with the token PIN)

    @property
    def pending(self) -> int:
        return sum(1 for i in self.batch.items if i.status == "pending")


def _interrupted(batch: SignBatch, now: datetime, lease_seconds: float) -> bool:
    if batch.finished_at is not None:
        return False
    if batch.lease_until is None:  # never leased (a batch from before leases, or its claim lost)
        return batch.created_at + timedelta(seconds=lease_seconds) < now
    return batch.lease_until <= now


def state(
    issuer: Issuer, actor: Actor, batch_id: int, *, lease_seconds: float = LEASE_SECONDS
) -> BatchState:
    with read_only(issuer.factory) as session:  # polled every second: no write lock
        batch = session.get(SignBatch, batch_id)
        if batch is None or batch.user_id != actor.user_id:
            raise NotFound(f"Penandatanganan #{batch_id} tidak ditemukan.")
        hsm = session.scalar(select(User.signer_hsm_label).where(User.id == batch.user_id))
        interrupted = _interrupted(batch, now_utc(), lease_seconds)
    if interrupted:
        with transaction(issuer.factory) as session:
            _reconcile(session, batch_id)  # a run that died after storing, before its row write
    view = batches.view(issuer, actor, batch_id)
    return BatchState(view, interrupted and not view.finished, hsm is not None)


def resume(
    issuer: Issuer,
    actor: Actor,
    batch_id: int,
    passphrase: str,
    owner: str,
    *,
    lease_seconds: float = LEASE_SECONDS,
) -> LoadedSigner:
    """Resume an interrupted batch: its signer's passphrase (or token PIN) unlocks the key
    (a wrong one is counted and signs nothing), then the lease is taken for ``owner``. Returns
    the signer for ``run``. Refused (Conflict) if the batch is still running or finished."""
    current = state(issuer, actor, batch_id, lease_seconds=lease_seconds)
    if not current.interrupted:
        raise Conflict(
            "Penandatanganan ini sudah selesai."
            if current.batch.finished
            else "Penandatanganan ini masih berjalan."
        )
    signer = issuer.unlock(actor, passphrase)
    try:
        if not claim(issuer.factory, batch_id, owner, lease_seconds):
            raise Conflict("Penandatanganan ini sudah dilanjutkan di tempat lain.")
    except BaseException:
        signer.close()
        raise
    return signer
