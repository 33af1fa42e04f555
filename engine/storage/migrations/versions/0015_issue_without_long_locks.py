"""issue without long locks: no schema change (keeps the revision chain whole)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 00:00:00

Issue 13 (issuing letters without holding the write lock across render and sign) needed no
change to the schema: the letter number is read before rendering and taken, in the short
storing transaction, from the existing number_sequences row (engine.letters.numbering). This
revision was reserved for it and is kept, empty, because 0016 follows it.
"""

from collections.abc import Sequence

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
