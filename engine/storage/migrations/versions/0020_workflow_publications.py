"""workflow publications: letter type versions the regency admin put in force from the browser
(a publish, or a rollback to an earlier version); the latest row of a type is in force

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 02:50:00

engine.requests.letter_type_editor writes them with their audit event; engine.requests.catalog
reads the latest id to notice a publication made by another app process. The YAML and templates
of each version are the rows of ``workflow_snapshots`` the publication points to.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow_publications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(80), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.Column("published_by", sa.String(120), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["workflow_snapshots.sha256"], name="fk_workflow_publications_snapshot"
        ),
        sa.ForeignKeyConstraint(
            ["published_by_id"], ["users.id"], name="fk_workflow_publications_user"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id", "seq", name="uq_workflow_publication_seq"),
    )


def downgrade() -> None:
    op.drop_table("workflow_publications")
