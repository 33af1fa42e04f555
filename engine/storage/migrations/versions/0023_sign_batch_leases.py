"""sign batch leases and the job queue: the process running a batch holds a lease on its row
and renews it (a heartbeat), so a batch whose process died (kill -9, a database restart that
ended its run) is known to be interrupted once the lease runs out, instead of "signing..."
forever; on PostgreSQL, the Procrastinate job queue's tables in their own schema

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 03:00:00

engine.jobs.batch_runs claims, renews and releases the lease. Nothing secret is stored: a batch
signed with a software key is resumed by its signer entering the passphrase again.

PostgreSQL only: Procrastinate's schema (engine/jobs/procrastinate_schema.sql, the schema.sql of
the Procrastinate version pinned in pyproject.toml, kept here so this migration always builds
the same thing) goes into the schema ``procrastinate``, which the queue's connections put first
on their search_path (engine.jobs.queue). Our tables stay alone in the default schema. A newer
Procrastinate is adopted with a new migration that runs its migration files the same way
(docs/jobs.md). SQLite has no queue: jobs run in the web process.
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


QUEUE_SCHEMA = "procrastinate"
QUEUE_SQL = Path(__file__).resolve().parents[3] / "jobs" / "procrastinate_schema.sql"


def upgrade() -> None:
    with op.batch_alter_table("sign_batches") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(80), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        raw = bind.connection.driver_connection  # no bind-parameter parsing of the SQL file
        old = raw.execute("SELECT current_setting('search_path')").fetchone()[0]
        raw.execute(f"CREATE SCHEMA IF NOT EXISTS {QUEUE_SCHEMA}")
        raw.execute(f"SELECT set_config('search_path', '{QUEUE_SCHEMA}', true)")
        raw.execute(QUEUE_SQL.read_text(encoding="utf-8"))
        raw.execute("SELECT set_config('search_path', %s, true)", (old,))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {QUEUE_SCHEMA} CASCADE")
    with op.batch_alter_table("sign_batches") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
