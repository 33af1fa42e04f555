"""village contacts: the letterhead's phone, email and website of each village

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 03:00:00

Printed in the kop surat under the address (workflows/templates/_letter.html.j2); the regency
admin edits them on the village page (engine.people.admin.update_village). Empty: not printed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("villages") as batch:
        batch.add_column(sa.Column("phone", sa.String(40), nullable=False, server_default=""))
        batch.add_column(sa.Column("email", sa.String(120), nullable=False, server_default=""))
        batch.add_column(sa.Column("website", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("villages") as batch:
        batch.drop_column("website")
        batch.drop_column("email")
        batch.drop_column("phone")
