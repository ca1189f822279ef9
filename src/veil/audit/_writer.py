"""The sequencer's database writes: one group of entries per transaction, over DB-API.

The ledger's reads go through SQLAlchemy; its writes do not. An append group is four
statements, and SQLAlchemy Core spent more time compiling, caching and wrapping them than
the database spent committing (profile in docs/benchmarks.md). The statements here are
plain SQL over the engine's own pooled DB-API connection, so the connection settings
(SQLite WAL, ``synchronous=FULL``, busy timeout) are the same as everywhere else.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from veil.errors import StorageError
from veil.store import audit_entries
from veil.store._engine import describe_failure

# An idle sequencer gives its connection back to the pool after this many seconds, so a
# quiet ledger does not hold one of the pool's connections for ever.
IDLE_RELEASE_S = 1.0

_LOCK_STATE = "SELECT size, frontier FROM audit_state WHERE id = 1"
_LOCK_STATE_FOR_UPDATE = _LOCK_STATE + " FOR UPDATE"
_INSERT_ENTRIES = (
    "INSERT INTO audit_entries "
    "(seq, time, actor, action, outcome, subject, resource, entry, leaf_hash, root) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_STATE = "UPDATE audit_state SET size = ?, frontier = ? WHERE id = 1"
_INSERT_HEAD = (
    "INSERT INTO audit_heads (size, root, time, key_id, signature) VALUES (?, ?, ?, ?, ?)"
)

_ROWS_PER_INSERT = 64  # 640 parameters, under SQLite's old limit of 999


@functools.lru_cache(maxsize=_ROWS_PER_INSERT)
def _multi_insert(count: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * count)
    return _INSERT_ENTRIES.split(" VALUES ")[0] + " VALUES " + values


Rows = Sequence[tuple[Any, ...]]
Build = Callable[[int, bytes], tuple[Rows, int, bytes, tuple[Any, ...]]]


class GroupWriter:
    """Writes groups of ledger rows; used by one thread (the sequencer) at a time."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._engine = engine
        self._sqlite = dialect.name == "sqlite"
        mark = "?" if dialect.paramstyle == "qmark" else "%s"  # sqlite3 / psycopg
        processor = audit_entries.c.time.type.dialect_impl(dialect).bind_processor(dialect)
        # SQLite stores timestamps as text in SQLAlchemy's format; reading them back
        # through SQLAlchemy must parse what is written here.
        self._time: Callable[[datetime], Any] = processor or (lambda value: value)
        self._errors: tuple[type[BaseException], ...] = (dialect.loaded_dbapi.Error,)

        def marks(sql: str) -> str:
            return sql if mark == "?" else sql.replace("?", mark)

        self._lock_state = marks(_LOCK_STATE if self._sqlite else _LOCK_STATE_FOR_UPDATE)
        self._insert_entries = marks(_INSERT_ENTRIES)
        self._update_state = marks(_UPDATE_STATE)
        self._insert_head = marks(_INSERT_HEAD)
        self._connection: Any = None
        self._last_used = 0.0
        self._pipelines = not self._sqlite and _psycopg_pipelines()

    def write(self, build: Build) -> None:
        """Run one transaction: lock the state row, let ``build(size, frontier)`` turn it
        into (entry rows, new size, new frontier, head row), write those, commit.

        Timestamps in the rows must come from :meth:`stored_time`."""
        connection = self._connect()
        try:
            cursor = connection.cursor()
            try:
                if self._sqlite:
                    # The write lock up front: appenders in other processes queue here.
                    cursor.execute("BEGIN IMMEDIATE")
                cursor.execute(self._lock_state)
                size, frontier = cursor.fetchone()
                rows, new_size, new_frontier, head = build(int(size), bytes(frontier))
                if self._sqlite:
                    # Rows in multi-row INSERTs: each statement step gives the GIL up and
                    # takes it back, and with callers running that is a wait per row.
                    for offset in range(0, len(rows), _ROWS_PER_INSERT):
                        chunk = rows[offset : offset + _ROWS_PER_INSERT]
                        cursor.execute(_multi_insert(len(chunk)), [v for row in chunk for v in row])
                    cursor.execute(self._update_state, (new_size, new_frontier))
                    cursor.execute(self._insert_head, head)
                    cursor.execute("COMMIT")
                else:
                    # One pipeline: the three writes go out together instead of waiting
                    # for a round trip each (where libpq supports pipelines, 14+).
                    pipeline = (
                        connection.driver_connection.pipeline()
                        if self._pipelines
                        else contextlib.nullcontext()
                    )
                    with pipeline:
                        cursor.executemany(self._insert_entries, rows)
                        cursor.execute(self._update_state, (new_size, new_frontier))
                        cursor.execute(self._insert_head, head)
                    connection.commit()
            finally:
                cursor.close()
        except BaseException as exc:
            self._abandon()
            if isinstance(exc, self._errors):
                raise StorageError(
                    "Appending to the audit ledger failed and was rolled back: "
                    f"{describe_failure(exc)}.",
                    hint="Check the database is reachable and migrated (`veil db upgrade`).",
                ) from None
            raise
        self._last_used = time.monotonic()

    def stored_time(self, value: datetime) -> Any:
        """``value`` as this database stores a timestamp column (for the rows of ``write``)."""
        return self._time(value)

    def release_if_idle(self) -> None:
        if self._connection is not None and time.monotonic() - self._last_used >= IDLE_RELEASE_S:
            self.close()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()  # back to the pool

    def _connect(self) -> Any:
        if self._connection is None:
            try:
                self._connection = self._engine.raw_connection()
            except Exception as exc:
                raise StorageError(
                    f"The audit ledger cannot reach its database: {describe_failure(exc)}.",
                    hint="Check that the database is running and VEIL_DATABASE_URL is right.",
                ) from None
        return self._connection

    def _abandon(self) -> None:
        """After a failure: roll back and drop the connection (a fresh one next time)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):  # it is being discarded anyway
            connection.rollback()
        with contextlib.suppress(Exception):
            connection.invalidate()


def _psycopg_pipelines() -> bool:
    """Whether psycopg and the libpq it runs on support pipeline mode."""
    try:
        import psycopg
    except ImportError:  # another PostgreSQL driver: plain round trips
        return False
    return bool(psycopg.Pipeline.is_supported())
