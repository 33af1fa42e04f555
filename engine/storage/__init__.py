"""Storage: SQLAlchemy models, database engines and transactions, Alembic migrations and the
hash-chained audit log."""
