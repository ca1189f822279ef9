"""Alembic environment: runs on the connection handed over by ``veil.store.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from veil.store._tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("Veil migrations run through `veil db upgrade`, not the alembic CLI.")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
