"""staff app: sign batches (progress shared by every process), archive and queue indexes

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("village_code", sa.String(length=13), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["village_code"], ["villages.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_batches_user_id", "sign_batches", ["user_id"])
    op.create_table(
        "sign_batch_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("letter_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["sign_batches.id"]),
        sa.ForeignKeyConstraint(["letter_id"], ["letters.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_batch_items_batch_id", "sign_batch_items", ["batch_id"])
    op.create_index("ix_letters_village_issued", "letters", ["village_code", "issued_at", "id"])
    op.create_index("ix_letters_issued", "letters", ["issued_at", "id"])
    op.create_index(
        "ix_letters_village_workflow_issued",
        "letters",
        ["village_code", "workflow_id", "issued_at"],
    )
    op.create_index("ix_letters_subject_nik", "letters", ["subject_nik"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_letters_subject_name_trgm",
        "letters",
        ["subject_name"],
        postgresql_using="gin",
        postgresql_ops={"subject_name": "gin_trgm_ops"},
    )
    op.create_index("ix_requests_created_by", "requests", ["created_by_id", "updated_at"])


def downgrade() -> None:
    for name, table in (
        ("ix_requests_created_by", "requests"),
        ("ix_letters_subject_name_trgm", "letters"),
        ("ix_letters_subject_nik", "letters"),
        ("ix_letters_village_workflow_issued", "letters"),
        ("ix_letters_issued", "letters"),
        ("ix_letters_village_issued", "letters"),
    ):
        op.drop_index(name, table_name=table)
    op.drop_index("ix_sign_batch_items_batch_id", table_name="sign_batch_items")
    op.drop_table("sign_batch_items")
    op.drop_index("ix_sign_batches_user_id", table_name="sign_batches")
    op.drop_table("sign_batches")
