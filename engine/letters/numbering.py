"""Letter numbers: allocated inside the issuing transaction, one sequence per
village x classification x year (so it restarts on 1 January).

The upsert increments and returns in one statement and holds the row lock until commit, so
concurrent signers queue, and a rollback gives the number back: no duplicates and no gaps."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.storage.models import NumberSequence


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
