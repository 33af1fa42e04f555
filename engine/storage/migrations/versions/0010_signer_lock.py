"""signer lock: a per-signer limit on wrong signing passphrases

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 11:00:00

`signer_locks` holds one row per signer who has tried to sign (engine.trust.signer_limit): wrong
tries since the last correct passphrase, when the next try may come (a growing wait), and the lock
set after too many wrong tries, which only the regency admin lifts. In the database so that every
app process applies the same count.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signer_locks",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("signer_locks")
