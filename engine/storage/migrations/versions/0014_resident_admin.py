"""resident administration: citizenship, SHDK, dusun and a recorded move

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 23:40:00

Operators add and correct residents and record moves and deaths (engine.people.resident_admin).
`residents.citizenship` (WNI/WNA, default WNI), `family_relation` (status hubungan dalam keluarga)
and `dusun` complete what a Kartu Keluarga says; `moved_on` and `moved_to` record a move out of
the village (the record stays: letters issued to the resident still point at it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("residents") as batch:
        batch.add_column(
            sa.Column("citizenship", sa.String(length=3), server_default="WNI", nullable=False)
        )
        batch.add_column(sa.Column("family_relation", sa.String(length=30), nullable=True))
        batch.add_column(sa.Column("dusun", sa.String(length=60), nullable=True))
        batch.add_column(sa.Column("moved_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("moved_to", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("residents") as batch:
        batch.drop_column("moved_to")
        batch.drop_column("moved_on")
        batch.drop_column("dusun")
        batch.drop_column("family_relation")
        batch.drop_column("citizenship")
