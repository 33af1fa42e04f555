"""letter number search: a trigram index on letters.number

Revision ID: 0017
Revises: 0016

The archive finds a letter by any part of its number ("045", "/II/2026"): an ILIKE '%...%'
that no B-tree can serve. Without this index the regency admin's search for a rare part reads
every letter (seconds at a million letters); with it PostgreSQL reads the matching rows only.
pg_trgm is already installed by 0003 (ix_letters_subject_name_trgm). On SQLite the same
declaration is a plain index (the archive of one SQLite installation stays small).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_letters_number_trgm",
        "letters",
        ["number"],
        postgresql_using="gin",
        postgresql_ops={"number": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_letters_number_trgm", table_name="letters")
