"""request channel: where a request came from (the counter or a resident's phone)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 23:30:00

`requests.channel` is "loket" for requests staff start at the counter and "warga" for requests a
resident starts from the self-service pages; statistics count them apart and the operator's queue
marks citizen requests. `requests.citizen_contact` is the e-mail address or phone number a resident
gave for notices about their request (nullable: counter requests have none).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=10), server_default="loket", nullable=False)
        )
        batch.add_column(sa.Column("citizen_contact", sa.String(length=254), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35): a batch copy would drop a referenced table.
    op.drop_column("requests", "citizen_contact")
    op.drop_column("requests", "channel")
