"""Engine factory: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL via psycopg 3."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from veil.config import normalize_database_url
from veil.errors import ConfigError, StorageError

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option naming the SQLite BEGIN mode of a connection's next transaction.
# "IMMEDIATE" takes the write lock up front, so read-then-write transactions (migrations,
# sequence allocation) never fail with "database is locked" half-way through.
SQLITE_BEGIN_OPTION = "veil_sqlite_begin"


def as_utc(value: datetime) -> datetime:
    """A timestamp read back from the database, time-zone aware: SQLite hands back naive
    values, and Veil stores every timestamp in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _prepare_sqlite_file(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file private to the user before SQLite creates it with the umask.
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
    except OSError as exc:
        raise StorageError(
            f"Cannot create the SQLite database at {path}: {exc.strerror}.",
            hint="Check VEIL_HOME / VEIL_DATABASE_URL point at a writable directory.",
        ) from None


def _enable_wal(cursor: Any) -> None:
    """Switch to WAL, waiting for other connections that switch at the same time.

    Switching needs an exclusive lock, and SQLite reports "database is locked" at once
    instead of calling the busy handler; processes that open a new database together
    (replicas starting, ``veil serve`` and a CLI command) would fail without this.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (so DDL is
        # transactional and BEGIN IMMEDIATE is possible).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _enable_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # FULL: a commit is on disk when it returns (audit appends promise durability).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_engine_for(url: str) -> Engine:
    """An engine for ``url`` with Veil's connection settings; does not connect yet."""
    try:
        normalized = make_url(normalize_database_url(url))
    except ValueError as exc:
        raise ConfigError(f"VEIL_DATABASE_URL {exc}.") from None
    backend = normalized.get_backend_name()
    if backend == "sqlite":
        _prepare_sqlite_file(normalized)
        engine = create_engine(normalized, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _install_sqlite_pragmas(engine)
        return engine
    return create_engine(
        normalized,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 5},
    )


def describe_failure(exc: BaseException) -> str:
    """First line of the driver's reason (a SQLAlchemy error or the driver's own), never
    the statement or its parameters."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    reason = str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
    return reason


def check_connection(engine: Engine) -> None:
    """Connect once and run ``SELECT 1``; raise :class:`StorageError` if that fails."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = describe_failure(exc)
        password = engine.url.password
        if password:
            reason = reason.replace(str(password), "***")
        raise StorageError(
            f"The database at {safe_url(engine.url)} is unreachable: {reason}.",
            hint="Check that the server is running and that VEIL_DATABASE_URL is right.",
        ) from None
