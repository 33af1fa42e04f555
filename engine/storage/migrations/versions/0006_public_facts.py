"""Public facts: what a letter's public page and QR seal show, stored at issue

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: letters issued before this revision keep showing the subject's name.
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_facts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_column("public_facts")
