"""Storage: engine settings and Alembic migrations on SQLite and the real PostgreSQL."""

from __future__ import annotations

import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from veil.config import load_settings
from veil.errors import StorageError
from veil.store import (
    create_engine_for,
    head_revision,
    migration_status,
    open_engine,
    read_meta,
    upgrade,
)


def test_sqlite_default_is_created_private_and_migrated_on_first_use(veil_home: Path) -> None:
    engine = open_engine(load_settings())
    try:
        assert migration_status(engine).up_to_date
        assert "veil_meta" in inspect(engine).get_table_names()
        assert len(read_meta(engine)["instance_id"]) == 32
    finally:
        engine.dispose()
    database = veil_home / "veil.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(veil_home.stat().st_mode) == 0o700


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_keeps_the_instance_id(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        first = upgrade(engine)
        instance = read_meta(engine)["instance_id"]
        second = upgrade(engine)
        assert first.current == second.current == head_revision()
        assert read_meta(engine)["instance_id"] == instance
    finally:
        engine.dispose()


def test_concurrent_upgrades_on_sqlite_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"

    def migrate() -> str | None:
        engine = create_engine_for(url)
        try:
            return upgrade(engine).current
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: migrate(), range(4)))
    assert results == [head_revision()] * 4
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM veil_meta")).scalar()
        assert count == 2
    finally:
        engine.dispose()


def test_connections_opened_together_on_a_new_sqlite_file_all_switch_to_wal(
    tmp_path: Path,
) -> None:
    """SQLite answers a contested switch to WAL with "database is locked" at once; the
    engine waits instead, so processes starting together on a new database all work."""
    for attempt in range(30):
        url = f"sqlite:///{tmp_path / f'together-{attempt}.db'}"
        barrier = threading.Barrier(8)

        def open_one(_: int, url: str = url, barrier: threading.Barrier = barrier) -> str:
            engine = create_engine_for(url)
            try:
                barrier.wait()
                with engine.connect() as connection:
                    return str(connection.execute(text("PRAGMA journal_mode")).scalar())
            finally:
                engine.dispose()

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(open_one, range(8))) == ["wal"] * 8


def test_unreachable_postgresql_is_a_storage_error_without_the_password() -> None:
    engine = create_engine_for("postgresql://veil:hunter2@127.0.0.1:1/veil")
    with pytest.raises(StorageError) as raised:
        migration_status(engine)
    message = str(raised.value)
    assert "unreachable" in message
    assert "hunter2" not in message
    assert "VEIL_DATABASE_URL" in message


@pytest.mark.postgres
def test_migrations_apply_to_postgresql(fresh_postgres_url: str) -> None:
    engine = create_engine_for(fresh_postgres_url)
    try:
        assert migration_status(engine).current is None
        status = upgrade(engine)
        assert status.up_to_date
        assert "veil_meta" in inspect(engine).get_table_names()
        assert set(read_meta(engine)) == {"instance_id", "schema_created_at"}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgresql_migrate_once(fresh_postgres_url: str) -> None:
    def migrate() -> str | None:
        engine = create_engine_for(fresh_postgres_url)
        try:
            return upgrade(engine).current
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: migrate(), range(4)))
    assert results == [head_revision()] * 4


def test_the_recorded_head_is_alembics_head() -> None:
    # Checking a database against HEAD_REVISION avoids loading Alembic; a new migration
    # must update it (veil/store/_migrate.py).
    from veil.store._migrate import scripts_head_revision

    assert head_revision() == scripts_head_revision()


def test_a_database_migrated_by_alembic_reads_as_current_without_it(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path}/v.db")
    try:
        assert not migration_status(engine).up_to_date  # empty: no alembic_version yet
        upgrade(engine)
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert stored == head_revision()
        assert migration_status(engine).up_to_date
    finally:
        engine.dispose()


def _schema_drift(url: str) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from veil.store import metadata

    engine = create_engine_for(url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), metadata))
    finally:
        engine.dispose()


def test_the_migrations_create_exactly_the_declared_tables_on_sqlite(tmp_path: Path) -> None:
    assert _schema_drift(f"sqlite:///{tmp_path}/v.db") == []


def test_the_migrations_create_exactly_the_declared_tables_on_postgres(
    fresh_postgres_url: str,
) -> None:
    assert _schema_drift(fresh_postgres_url) == []
