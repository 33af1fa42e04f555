"""Batch signing with one passphrase entry: the batch and its rows. The passphrase is checked
before anything is queued (a wrong one signs nothing); engine.jobs.batch_runs then issues the
letters a group at a time under the batch's lease, each group stored in one short write, and
writes the results to the batch's rows (``item_values``), so any app process can show the
progress (``view``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from engine.errors import Forbidden, NotFound, SuratDesaError
from engine.letters.group_issuance import Outcome
from engine.letters.issuance import Issuer
from engine.people.users import Actor
from engine.storage.db import transaction
from engine.storage.models import Letter, SignBatch, SignBatchItem
from engine.timeutil import now_utc


@dataclass(frozen=True)
class ItemView:
    request_id: int
    status: str
    number: str | None
    message: str | None


@dataclass(frozen=True)
class BatchView:
    id: int
    items: list[ItemView]

    @property
    def finished(self) -> bool:
        return all(i.status != "pending" for i in self.items)

    @property
    def done(self) -> int:
        return sum(1 for i in self.items if i.status != "pending")


def start(issuer: Issuer, actor: Actor, requests: Sequence[tuple[int, int]]) -> int:
    """Record a batch of (request id, version) pairs; returns its id. Unlock the key first."""
    if actor.village_code is None:
        raise Forbidden("Admin kabupaten tidak menandatangani surat desa.")
    with transaction(issuer.factory) as session:
        batch = SignBatch(
            user_id=actor.user_id, village_code=actor.village_code, created_at=now_utc()
        )
        session.add(batch)
        session.flush()
        seen: set[int] = set()
        for position, (request_id, version) in enumerate(requests):
            if request_id in seen:  # a double-submitted form lists a letter once
                continue
            seen.add(request_id)
            session.add(
                SignBatchItem(
                    batch_id=batch.id,
                    position=position,
                    request_id=request_id,
                    version=version,
                    status="pending",
                )
            )
        return batch.id


def item_values(outcome: Outcome) -> dict[str, object]:
    if isinstance(outcome, Letter):
        return {"status": "done", "letter_id": outcome.id}
    if isinstance(outcome, SuratDesaError):
        return {"status": "failed", "message": str(outcome)}
    # One broken letter must not stop the batch.
    return {"status": "failed", "message": f"Gagal menandatangani: {type(outcome).__name__}"}


def view(issuer: Issuer, actor: Actor, batch_id: int) -> BatchView:
    with transaction(issuer.factory) as session:
        batch = session.get(SignBatch, batch_id)
        if batch is None or batch.user_id != actor.user_id:
            raise NotFound(f"Penandatanganan #{batch_id} tidak ditemukan.")
        rows = session.execute(
            select(SignBatchItem, Letter.number)
            .outerjoin(Letter, Letter.id == SignBatchItem.letter_id)
            .where(SignBatchItem.batch_id == batch_id)
            .order_by(SignBatchItem.position)
        )
        return BatchView(
            batch_id,
            [ItemView(i.request_id, i.status, number, i.message) for i, number in rows],
        )
