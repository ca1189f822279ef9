"""Alembic migrations, applied on first use and by ``veil db upgrade``.

Alembic itself is imported only to migrate: checking that a database is current reads
``alembic_version`` directly and compares it with :data:`HEAD_REVISION`, so every command
that opens the store does not pay for loading Alembic and parsing its scripts (about
12 MB and 80 ms at start-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from veil.errors import StorageError
from veil.store._engine import SQLITE_BEGIN_OPTION, check_connection, describe_failure, safe_url

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration in migrations/versions (a test holds it equal to Alembic's head).
HEAD_REVISION = "0006_analytics_events"

# Any constant works; it only has to be the same in every Veil process.
_PG_MIGRATION_LOCK = 0x5645494C


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "veil.store:migrations")
    return config


def head_revision() -> str:
    return HEAD_REVISION


def scripts_head_revision() -> str:
    """The head according to Alembic's own reading of the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StorageError("Veil's migration scripts are missing.", hint="Reinstall veil.")
    return head


def _current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return next(iter(versions), None)


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def migration_status(engine: Engine) -> MigrationStatus:
    check_connection(engine)
    try:
        with engine.connect() as connection:
            current = _current_revision(connection)
    except SQLAlchemyError as exc:
        raise StorageError(
            f"Cannot read the schema version of {safe_url(engine.url)}: {describe_failure(exc)}.",
            hint="Run `veil db upgrade`.",
        ) from None
    return MigrationStatus(current=current, head=head_revision())


def upgrade(engine: Engine) -> MigrationStatus:
    """Bring the schema to the newest revision in one transaction.

    Concurrent callers are serialized (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE``
    on SQLite), so replicas starting together migrate once and the rest find it done.
    """
    from alembic import command

    check_connection(engine)
    config = _alembic_config()
    try:
        with engine.connect() as connection:
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StorageError(
            f"Migrating {safe_url(engine.url)} failed and was rolled back: "
            f"{describe_failure(exc)}.",
            hint="Check the database user may create tables, then run `veil db upgrade`.",
        ) from None
    return migration_status(engine)
