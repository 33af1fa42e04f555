"""verify portal: rate-limit counters shared by all app processes

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("bucket", sa.String(20), primary_key=True),
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("window", sa.BigInteger(), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_letters_replaces_letter_id", "letters", ["replaces_letter_id"])


def downgrade() -> None:
    op.drop_index("ix_letters_replaces_letter_id", table_name="letters")
    op.drop_table("rate_limit_counters")
