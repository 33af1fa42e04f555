"""notices: the notification outbox and its delivery attempts; staff e-mail and phone

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 23:40:00

`notices` is the outbox engine.notify writes in the transaction of the audit event a notice
follows (new work in a queue, a request returned, rejected, or a letter ready): one row per
recipient and transport ("inapp" for the staff app, "email", "webhook"). Dispatchers claim the
pending rows and record every delivery attempt in `notice_attempts`. `users.email` and
`users.phone` say where a staff member's notices go besides the staff app.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(length=20), nullable=True))
    op.create_table(
        "notices",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        # The audit event that caused the notice, by id only: a foreign key would tie the
        # append-only log to a table that changes, and block the log's own guards and checks.
        sa.Column("event_id", BIG_ID, nullable=False),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("requests.id"), nullable=True),
        sa.Column("village_code", sa.String(length=13), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("audience", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("address", sa.String(length=254), nullable=True),
        sa.Column("transport", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_notices_event_id", "notices", ["event_id"])
    op.create_index("ix_notices_request_id", "notices", ["request_id"])
    op.create_index("ix_notices_due", "notices", ["status", "next_attempt_at"])
    op.create_index("ix_notices_user_unread", "notices", ["user_id", "transport", "read_at"])
    op.create_table(
        "notice_attempts",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("notice_id", BIG_ID, sa.ForeignKey("notices.id"), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("transport", sa.String(length=10), nullable=False),
        sa.Column("worker", sa.String(length=80), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_notice_attempts_notice_id", "notice_attempts", ["notice_id"])


def downgrade() -> None:
    op.drop_table("notice_attempts")
    op.drop_table("notices")
    # Plain DROP COLUMN (SQLite >= 3.35 has it): a batch copy of `users` would drop a table that
    # other tables reference, which SQLite refuses with foreign keys on.
    op.drop_column("users", "phone")
    op.drop_column("users", "email")
