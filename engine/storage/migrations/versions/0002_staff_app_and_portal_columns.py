"""staff app and portal columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 04:40:02.746826
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_certificates",
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("serial"),
    )
    op.create_table(
        "acting_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_code", sa.String(length=13), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=5), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["village_code"],
            ["villages.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("acting_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_acting_assignments_village_code"), ["village_code"], unique=False
        )

    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_request_id"), ["request_id"], unique=False)

    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("replaces_letter_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handed_over_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_letters_handed_over_by", "users", ["handed_over_by_id"], ["id"]
        )
        batch_op.create_foreign_key("fk_letters_revoked_by", "users", ["revoked_by_id"], ["id"])
        batch_op.create_foreign_key(
            "fk_letters_replaces", "letters", ["replaces_letter_id"], ["id"]
        )

    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaces_letter_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_requests_replaces_letter", "letters", ["replaces_letter_id"], ["id"]
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signer_serial", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_changed_at")
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")
        batch_op.drop_column("signer_serial")

    with op.batch_alter_table("requests", schema=None) as batch_op:
        # WARNING: constraint name is None; this directive will fail as
        # rendered.  Add a name, or use a naming convention; see
        # https://alembic.sqlalchemy.org/en/latest/naming.html
        batch_op.drop_constraint("fk_requests_replaces_letter", type_="foreignkey")
        batch_op.drop_column("replaces_letter_id")

    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_constraint("fk_letters_handed_over_by", type_="foreignkey")
        batch_op.drop_constraint("fk_letters_revoked_by", type_="foreignkey")
        batch_op.drop_constraint("fk_letters_replaces", type_="foreignkey")
        batch_op.drop_column("handed_over_by_id")
        batch_op.drop_column("handed_over_at")
        batch_op.drop_column("replaces_letter_id")
        batch_op.drop_column("revoked_by_id")

    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_request_id"))

    op.drop_table("attachments")
    with op.batch_alter_table("acting_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acting_assignments_village_code"))

    op.drop_table("acting_assignments")
    op.drop_table("revoked_certificates")
