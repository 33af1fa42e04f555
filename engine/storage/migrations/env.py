"""Alembic environment: the URL comes from the caller's config (see engine.storage.migrate)."""

from alembic import context

from engine.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    from engine.storage.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration copies a table, drops the old one and renames the copy; with
            # foreign keys on, SQLite refuses to drop a table other rows point at. The pragma only
            # takes effect outside a transaction, so it goes to the driver connection before
            # BEGIN; foreign_key_check below proves the migrated data still holds together.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=sqlite
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = connection.connection.driver_connection.execute(
                "PRAGMA foreign_key_check"
            ).fetchall()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
            if broken:
                raise RuntimeError(f"migration left rows pointing at missing rows: {broken[:5]}")
    engine.dispose()


run_migrations_online()
