"""Letter numbers: one sequence per village x classification x year (so it restarts on
1 January), never burned and never duplicated.

Issuing (engine.letters.issuance) reads the number the letter will get with :func:`peek`,
renders and signs outside any lock, and then, in the short transaction that stores the letter,
takes it with :func:`allocate`: the upsert increments and returns in one statement and holds the
row lock until commit (so concurrent signers of one village queue only for that short write),
and the issuer commits only if the number it returns is the one the letter printed; otherwise it
rolls back and renders again with the new number. A rollback gives the number back: no
duplicates and no gaps."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.storage.models import NumberSequence


def peek(session: Session, village_code: str, classification: str, year: int) -> int:
    """The number the next letter of the sequence would get (nothing is reserved)."""
    last = session.scalar(
        select(NumberSequence.last_seq).where(
            NumberSequence.village_code == village_code,
            NumberSequence.classification == classification,
            NumberSequence.year == year,
        )
    )
    return (last or 0) + 1


def allocate(session: Session, village_code: str, classification: str, year: int) -> int:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = NumberSequence.__table__
    stmt = (
        insert(table)
        .values(village_code=village_code, classification=classification, year=year, last_seq=1)
        .on_conflict_do_update(
            index_elements=["village_code", "classification", "year"],
            set_={"last_seq": table.c.last_seq + 1},
        )
        .returning(table.c.last_seq)
    )
    return session.execute(stmt).scalar_one()


def take_run(
    session: Session, village_code: str, classification: str, year: int, first: int, count: int
) -> int:
    """Take numbers ``first`` .. ``first + count - 1`` if the sequence's last number is still
    ``first - 1``, in one statement, and return (``first + count - 1``, True). Otherwise
    change nothing and return (the last number as it is, False): the caller may take only the
    numbers that follow it (:func:`advance_to`). Either way the sequence row stays locked until
    commit (an ON CONFLICT DO UPDATE locks the row even when its WHERE is false)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = NumberSequence.__table__
    last = first - 1 + count
    stmt = (
        insert(table)
        .values(
            village_code=village_code,
            classification=classification,
            year=year,
            last_seq=last if first == 1 else 0,
        )
        .on_conflict_do_update(
            index_elements=["village_code", "classification", "year"],
            set_={"last_seq": last},
            where=table.c.last_seq == first - 1,
        )
        .returning(table.c.last_seq)
    )
    taken = session.execute(stmt).scalar_one_or_none()
    if taken == last:
        return last, True
    if taken is not None:  # a new sequence whose first number is not ``first``
        return taken, False
    return session.scalar(
        select(NumberSequence.last_seq).where(
            NumberSequence.village_code == village_code,
            NumberSequence.classification == classification,
            NumberSequence.year == year,
        )
    ), False


def advance_to(
    session: Session, village_code: str, classification: str, year: int, last: int
) -> None:
    """Set the sequence's last number (its row already locked by :func:`take_run`)."""
    session.execute(
        update(NumberSequence)
        .where(
            NumberSequence.village_code == village_code,
            NumberSequence.classification == classification,
            NumberSequence.year == year,
        )
        .values(last_seq=last)
        .execution_options(synchronize_session=False)
    )
