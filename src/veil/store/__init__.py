"""Storage: one SQLAlchemy engine per database URL, schema managed by Alembic.

SQLite in ``VEIL_HOME`` is the embedded default; ``VEIL_DATABASE_URL=postgresql://…``
switches to PostgreSQL (psycopg 3). The schema is migrated on first use.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from veil.config import Settings, ensure_home
from veil.store._engine import (
    SQLITE_BEGIN_OPTION,
    as_utc,
    check_connection,
    create_engine_for,
    safe_url,
)
from veil.store._migrate import MigrationStatus, head_revision, migration_status, upgrade
from veil.store._tables import (
    analytics_events,
    audit_entries,
    audit_heads,
    audit_segments,
    audit_state,
    data_keys,
    metadata,
    vault_secrets,
    veil_meta,
    virtual_keys,
)


def engine_for(settings: Settings) -> Engine:
    """The engine for the configured database (VEIL_HOME created first for the default).

    Does not connect; :func:`open_engine` also checks and migrates.
    """
    if settings.database_url is None:
        ensure_home(settings)
    return create_engine_for(settings.effective_database_url)


def open_engine(settings: Settings, *, migrate: bool = True) -> Engine:
    """The engine for the configured database, reachable and (by default) migrated."""
    engine = engine_for(settings)
    if migrate:
        status = migration_status(engine)
        if not status.up_to_date:
            upgrade(engine)
    else:
        check_connection(engine)
    return engine


def read_meta(engine: Engine) -> dict[str, str]:
    """The ``veil_meta`` facts (instance id, schema creation time)."""
    with engine.connect() as connection:
        rows = connection.execute(select(veil_meta.c.key, veil_meta.c.value)).all()
    return {key: value for key, value in rows}


__all__ = [
    "SQLITE_BEGIN_OPTION",
    "MigrationStatus",
    "analytics_events",
    "as_utc",
    "audit_entries",
    "audit_heads",
    "audit_segments",
    "audit_state",
    "check_connection",
    "create_engine_for",
    "data_keys",
    "engine_for",
    "head_revision",
    "metadata",
    "migration_status",
    "open_engine",
    "read_meta",
    "safe_url",
    "upgrade",
    "vault_secrets",
    "virtual_keys",
]
