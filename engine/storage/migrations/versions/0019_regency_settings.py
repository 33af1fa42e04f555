"""regency settings: what the regency admin sets once for every village (letterhead, emblem,
numbering, classification codes), one row per key

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 02:45:00

engine.regency_settings reads and writes them; every write is audited. ``value`` holds JSON
(text, a mode, a table of codes); ``blob`` holds a file the admin uploaded (the emblem image).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "regency_settings",
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name="fk_regency_settings_updated_by"
        ),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("regency_settings")
