"""sessions and sign-in throttle: server-side staff sessions that sign-out, a password change
and disabling an account end at once

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00

`sessions` holds one row per staff sign-in; the cookie carries only the random session id,
stored here as its SHA-256. Sign-in throttling needs no table of its own: it counts failures in
`rate_limit_counters` (engine.ratelimit), one-minute slots summed over a sliding window; this
revision adds the index its window look-ups and per-bucket pruning use. `users.failed_logins` and
`users.locked_until` (the old lock-out) are no longer read or written.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_reason", sa.String(20), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"], unique=False)
    op.create_index(
        "ix_rate_limit_counters_bucket_window",
        "rate_limit_counters",
        ["bucket", "window"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_rate_limit_counters_bucket_window", table_name="rate_limit_counters")
    op.drop_index(op.f("ix_sessions_user_id"), table_name="sessions")
    op.drop_table("sessions")
