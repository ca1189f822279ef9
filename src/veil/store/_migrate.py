"""Alembic migrations, applied on first use and by ``veil db upgrade``."""

from __future__ import annotations

from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from veil.errors import StorageError
from veil.store._engine import SQLITE_BEGIN_OPTION, check_connection, describe_failure, safe_url

# Any constant works; it only has to be the same in every Veil process.
_PG_MIGRATION_LOCK = 0x5645494C


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "veil.store:migrations")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StorageError("Veil's migration scripts are missing.", hint="Reinstall veil.")
    return head


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
            current = MigrationContext.configure(connection).get_current_revision()
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
