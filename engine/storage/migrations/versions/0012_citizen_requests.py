"""citizen requests: tracking codes, office PINs, hand-over receiver

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 00:00:00

- `citizen_tracking`: one row per request a resident started online (`requests.channel` "warga"):
  the SHA-256 of its tracking code (the code itself is shown once and never stored), the NIK of
  the resident who asked (the per-NIK limit of open requests counts these) and when.
- `citizen_pins`: the argon2 hash of a PIN the office hands a resident for their history page.
- `letters.handed_over_to_name` / `_relation` / `_id_number`: who received the letter at the
  counter (the resident or someone on their behalf) and the number of the ID they showed.
- `requests.created_by_id` and `attachments.uploaded_by_id` become nullable: a citizen request is
  created, and its files uploaded, by no staff account. The audit log records the resident
  ("warga") as actor; the channel column says where it came from. A system user was the
  alternative; it would be an account that could be disabled, appear in user lists and own
  requests in "my requests", which is wrong for a request nobody at the office started.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "citizen_tracking",
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("requests.id"), primary_key=True),
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("nik", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("code_sha256"),
    )
    op.create_index("ix_citizen_tracking_nik", "citizen_tracking", ["nik"])
    op.create_table(
        "citizen_pins",
        sa.Column("nik", sa.String(length=16), sa.ForeignKey("residents.nik"), primary_key=True),
        sa.Column("pin_hash", sa.String(length=200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
    )
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("handed_over_to_name", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("handed_over_relation", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("handed_over_id_number", sa.String(length=40), nullable=True))
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("created_by_id", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("attachments") as batch:
        batch.alter_column("uploaded_by_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.alter_column("uploaded_by_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("created_by_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("letters") as batch:
        batch.drop_column("handed_over_id_number")
        batch.drop_column("handed_over_relation")
        batch.drop_column("handed_over_to_name")
    op.drop_table("citizen_pins")
    op.drop_index("ix_citizen_tracking_nik", table_name="citizen_tracking")
    op.drop_table("citizen_tracking")
