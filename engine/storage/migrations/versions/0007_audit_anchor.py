"""audit anchor: no TRUNCATE of the audit log, and the chain head only advances along the chain

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00

Migration 0001 made `audit_events` refuse UPDATE and DELETE. Two holes remained: TRUNCATE (a
statement, not a row change, so row triggers never fire) and `audit_head`, which anyone with
write access could reset to the genesis hash after emptying the log. From here:

- TRUNCATE of `audit_events` or `audit_head` is refused (PostgreSQL; SQLite has no TRUNCATE,
  and its DELETE-without-WHERE is already refused by the row trigger);
- `audit_head` refuses INSERT and DELETE, and an UPDATE unless it advances exactly one event:
  the new (last_id, last_hash) is the id and hash of an existing audit event whose prev_hash is
  the old head hash, and last_id = old last_id + 1. `engine.storage.audit.append` writes the event
  first, then the head.

The table owner can still switch triggers off; the checkpoints outside the database
(`engine.storage.audit_checkpoints.make_checkpoint`) are what expose that.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEAD_ONLY_ADVANCES = "audit_head may only advance to the next audit event"
_HEAD_FIXED = "audit_head has exactly one row, written only by appending an audit event"

# The new head must be the next event of the chain, hanging off the old head.
_ADVANCE_OK = """
    NEW.id = OLD.id
    AND NEW.last_id = OLD.last_id + 1
    AND EXISTS (
        SELECT 1 FROM audit_events e
        WHERE e.id = NEW.last_id AND e.hash = NEW.last_hash AND e.prev_hash = OLD.last_hash
    )
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # audit_events_append_only() (0001) only raises, so it also serves a statement trigger.
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            f"""
            CREATE FUNCTION audit_head_guard() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'UPDATE' THEN
                    IF {_ADVANCE_OK} THEN
                        RETURN NEW;
                    END IF;
                    RAISE EXCEPTION '{_HEAD_ONLY_ADVANCES}';
                END IF;
                RAISE EXCEPTION '{_HEAD_FIXED}';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_head_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_head "
            "FOR EACH ROW EXECUTE FUNCTION audit_head_guard()"
        )
        op.execute(
            "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_head_guard()"
        )
    else:
        for verb in ("INSERT", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_head_no_{verb.lower()} BEFORE {verb} ON audit_head "
                f"BEGIN SELECT RAISE(ABORT, '{_HEAD_FIXED}'); END"
            )
        op.execute(
            "CREATE TRIGGER audit_head_advance BEFORE UPDATE ON audit_head "
            f"WHEN NOT ({_ADVANCE_OK}) "
            f"BEGIN SELECT RAISE(ABORT, '{_HEAD_ONLY_ADVANCES}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_head_guard ON audit_head")
        op.execute("DROP FUNCTION IF EXISTS audit_head_guard()")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
    else:
        for name in ("audit_head_advance", "audit_head_no_delete", "audit_head_no_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
