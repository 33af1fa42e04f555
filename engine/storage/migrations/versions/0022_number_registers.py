"""number registers: a letter's seq comes from a register, its classification code (numbering
mode "per_classification", as before) or "*" (mode "per_village": one agenda of outgoing
letters per village and year)

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 03:10:00

number_sequences (village x classification x year) becomes number_registers (village x
register x year), its rows copied with register = classification. letters gains ``register``
(backfilled with its classification), a unique index (village, register, year, seq) so a
register never hands out one seq twice, and an index (village, year, seq) for the highest seq
of a village's year (where a new "*" register starts). The column is added as NULL-able and
filled by one UPDATE, so SQLite needs no table rebuild of letters.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "number_registers",
        sa.Column("village_code", sa.String(length=13), nullable=False),
        sa.Column("register", sa.String(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["village_code"], ["villages.code"]),
        sa.PrimaryKeyConstraint("village_code", "register", "year"),
    )
    op.execute(
        "INSERT INTO number_registers (village_code, register, year, last_seq) "
        "SELECT village_code, classification, year, last_seq FROM number_sequences"
    )
    op.drop_table("number_sequences")
    op.add_column("letters", sa.Column("register", sa.String(length=20), nullable=True))
    op.execute("UPDATE letters SET register = classification")
    op.create_index(
        "uq_letter_register_seq",
        "letters",
        ["village_code", "register", "year", "seq"],
        unique=True,
    )
    op.create_index("ix_letters_village_year_seq", "letters", ["village_code", "year", "seq"])


def downgrade() -> None:
    op.drop_index("ix_letters_village_year_seq", table_name="letters")
    op.drop_index("uq_letter_register_seq", table_name="letters")
    with op.batch_alter_table("letters") as batch:
        batch.drop_column("register")
    op.create_table(
        "number_sequences",
        sa.Column("village_code", sa.String(length=13), nullable=False),
        sa.Column("classification", sa.String(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["village_code"], ["villages.code"]),
        sa.PrimaryKeyConstraint("village_code", "classification", "year"),
    )
    # A per-classification sequence resumes after the highest seq of its code's letters; the
    # "*" registers of per-village numbering have no place in the old table.
    op.execute(
        "INSERT INTO number_sequences (village_code, classification, year, last_seq) "
        "SELECT village_code, classification, year, MAX(seq) FROM letters "
        "GROUP BY village_code, classification, year"
    )
    op.drop_table("number_registers")
