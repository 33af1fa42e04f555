"""letters.signer_serial: the certificate each letter was signed with, so that the QR page can
say when that certificate was revoked after the letter (the letter stays genuine)

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 07:00:00

Letters issued before this revision get the serial of the newest certificate issued to their
signer before the letter's time: a renewal replaces the signer's key at once, so that is the
certificate the letter carries. No PDF is parsed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("signer_serial", sa.String(40), nullable=True))
    op.execute(
        """
        UPDATE letters SET signer_serial = (
            SELECT c.serial FROM signer_certificates c
            WHERE c.user_id = letters.signer_id AND c.issued_at <= letters.issued_at
            ORDER BY c.issued_at DESC LIMIT 1
        )
        WHERE signer_serial IS NULL
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.drop_column("signer_serial")
