"""statistics rollup: counts and service-time histograms for /statistik, and their watermark

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 00:30:00

engine.letters.statistics_rollup keeps the letters issued (per WIB year and village, by month,
by type and by channel) and histograms of the service times (per WIB year and kecamatan) for
everything before a watermark, so /statistik reads a few thousand rollup rows plus the few
letters after the watermark instead of aggregating the letters table. The tables start empty
with no watermark (the page then aggregates on demand, as before); `suratdesa stats refresh`
fills them, and each /statistik computation advances them by a bounded step. The index on
letters.handed_over_at finds the hand-overs after the watermark.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stat_letters",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("village_code", sa.String(13), nullable=False),
        sa.Column("dimension", sa.String(10), nullable=False),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("letters", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("year", "village_code", "dimension", "key"),
    )
    op.create_table(
        "stat_durations",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("district_code", sa.String(8), nullable=False),
        sa.Column("measure", sa.String(10), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("letters", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("year", "district_code", "measure", "bucket"),
    )
    stat_refresh = op.create_table(
        "stat_refresh",
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("settled_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(stat_refresh, [{"name": "letters", "settled_before": None}])
    op.create_index("ix_letters_handed_over_at", "letters", ["handed_over_at"])


def downgrade() -> None:
    op.drop_index("ix_letters_handed_over_at", table_name="letters")
    op.drop_table("stat_refresh")
    op.drop_table("stat_durations")
    op.drop_table("stat_letters")
