"""Letter numbers: one register per village x year, never a number burned, never one twice.

A register is either a classification code (numbering mode "per_classification", the default:
each code has its own sequence, e.g. 400.12.3.1/001, 400.12.3.1/002 beside 400.12.2.1/001) or
"*" (mode "per_village": the village's one agenda of outgoing letters, every letter of the year
takes the next seq whatever its code; the printed number still carries the letter's own code).
The regency admin picks the mode and may override each letter type's code
(engine.letters.number_settings); the register of a letter is decided when it is drafted.

Where a register starts: its next seq is one more than the larger of its own last number and
the highest seq already used by the letters it covers this year (every letter of the village
for "*", the letters of its code for a code). So switching the mode mid-year, either way, never
hands out a (village, code, year, seq) or a (village, register, year, seq) twice: the register
jumps past the numbers the other mode used, which shows as a jump in the printed seqs, never a
duplicate. The database enforces both with unique indexes (uq_letter_seq,
uq_letter_register_seq); the one race left, two registers allocating at the moment the mode
switches, ends in the unique index refusing one letter, which the issuer makes again with the
next number (engine.letters.issuance).

Issuing (engine.letters.issuance) reads the number the letter will get with :func:`peek`,
renders and signs outside any lock, and then, in the short transaction that stores the letter,
takes it with :func:`allocate`: the upsert increments and returns in one statement and holds the
row lock until commit (so concurrent signers of one register queue only for that short write),
and the issuer commits only if the number it returns is the one the letter printed; otherwise it
rolls back and renders again with the new number. A rollback gives the number back: no
duplicates and no gaps."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.storage.models import Letter, NumberSequence

VILLAGE_REGISTER = "*"  # the register of mode "per_village"
PER_CLASSIFICATION, PER_VILLAGE = "per_classification", "per_village"
MODES = (PER_CLASSIFICATION, PER_VILLAGE)


@dataclass(frozen=True, order=True)
class Register:
    """One sequence: a village's register (a classification code or "*") in one year."""

    village_code: str
    register: str
    year: int


def register_for(village_code: str, classification: str, year: int, mode: str) -> Register:
    key = VILLAGE_REGISTER if mode == PER_VILLAGE else classification
    return Register(village_code, key, year)


def used_floor(session: Session, reg: Register) -> int:
    """The highest seq already used this year by the letters the register covers (0 if none)."""
    query = select(func.max(Letter.seq)).where(
        Letter.village_code == reg.village_code, Letter.year == reg.year
    )
    if reg.register != VILLAGE_REGISTER:
        query = query.where(Letter.classification == reg.register)
    return session.scalar(query) or 0


def _where(reg: Register):
    return (
        NumberSequence.village_code == reg.village_code,
        NumberSequence.register == reg.register,
        NumberSequence.year == reg.year,
    )


def peek(session: Session, reg: Register) -> int:
    """The number the next letter of the register would get (nothing is reserved)."""
    last = session.scalar(select(NumberSequence.last_seq).where(*_where(reg))) or 0
    return max(last, used_floor(session, reg)) + 1


def _upsert(session: Session, reg: Register, inserted: int, updated):
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = NumberSequence.__table__
    stmt = (
        insert(table)
        .values(
            village_code=reg.village_code, register=reg.register, year=reg.year, last_seq=inserted
        )
        .on_conflict_do_update(
            index_elements=["village_code", "register", "year"], set_={"last_seq": updated}
        )
        .returning(table.c.last_seq)
    )
    return session.execute(stmt).scalar_one()


def allocate(session: Session, reg: Register) -> int:
    """Take the register's next number (its row stays locked until commit)."""
    floor = used_floor(session, reg)
    last = NumberSequence.__table__.c.last_seq
    return _upsert(session, reg, floor + 1, case((last >= floor, last + 1), else_=floor + 1))


def take_run(session: Session, reg: Register, first: int, count: int) -> tuple[int, bool]:
    """Take numbers ``first`` .. ``first + count - 1`` if the register's next number is still
    ``first``, and return (``first + count - 1``, True). Otherwise change nothing else and
    return (the register's last number, False): the caller may take only the numbers that
    follow it (:func:`advance_to`). Either way the register's row stays locked until commit."""
    floor = used_floor(session, reg)
    last_col = NumberSequence.__table__.c.last_seq
    # Lock the row (made if missing) and read its last number, raised to the floor.
    last = _upsert(session, reg, floor, case((last_col >= floor, last_col), else_=floor))
    if last != first - 1:
        return last, False
    advance_to(session, reg, first - 1 + count)
    return first - 1 + count, True


def advance_to(session: Session, reg: Register, last: int) -> None:
    """Set the register's last number (its row already locked by :func:`take_run`)."""
    session.execute(
        update(NumberSequence)
        .where(*_where(reg))
        .values(last_seq=last)
        .execution_options(synchronize_session=False)
    )
