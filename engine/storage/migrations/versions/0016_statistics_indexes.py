"""statistics indexes: covering indexes for the public statistics (/statistik)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 00:00:00

The yearly aggregate of engine.letters.statistics reads letters by issue time (kecamatan and
village from the village code, type, request, hand-over time) joined to requests (channel,
creation time). With these two indexes both sides are read from the indexes alone (PostgreSQL
index-only scans, SQLite covering indexes) instead of the wide tables.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_letters_statistics",
        "letters",
        ["issued_at", "village_code", "workflow_id", "request_id", "handed_over_at"],
    )
    op.create_index("ix_requests_statistics", "requests", ["id", "channel", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_requests_statistics", table_name="requests")
    op.drop_index("ix_letters_statistics", table_name="letters")
