"""Shared fixtures: a private VEIL_HOME per test, real PostgreSQL and Redis when configured.

Service-backed tests read VEIL_TEST_POSTGRES_URL / VEIL_TEST_REDIS_URL. Without them the
tests skip with the reason; with VEIL_REQUIRE_SERVICES=1 (CI) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from veil.store import create_engine_for, upgrade

_VEIL_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
)


def _service_unavailable(reason: str) -> None:
    if os.environ.get("VEIL_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (VEIL_REQUIRE_SERVICES=1, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def veil_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in its own directory with its own VEIL_HOME and no inherited config."""
    for name in list(os.environ):
        if name.startswith("VEIL_") and not name.startswith(("VEIL_TEST_", "VEIL_REQUIRE")):
            monkeypatch.delenv(name)
    for name in _VEIL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    home = tmp_path / "veil-home"
    monkeypatch.setenv("VEIL_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = os.environ.get("VEIL_TEST_POSTGRES_URL")
    if not url:
        _service_unavailable("VEIL_TEST_POSTGRES_URL is not set; no PostgreSQL to test against")
    assert url is not None
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session (dropped at the end)."""
    admin_url = make_url(postgres_server_url).set(drivername="postgresql+psycopg")
    name = f"veil_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the reason matters more than the type here
        admin.dispose()
        _service_unavailable(f"cannot create a database on {admin_url.host}: {exc}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """An empty schema inside the session database, for tests that migrate from scratch."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database, once on SQLite and once on PostgreSQL (test modules that need
    another setup, such as the ledger's, define their own ``engine``)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'veil-test.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    engine = create_engine_for(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis database, flushed before and after the test."""
    url = os.environ.get("VEIL_TEST_REDIS_URL")
    if not url:
        _service_unavailable("VEIL_TEST_REDIS_URL is not set; no Redis to test against")
    assert url is not None
    import redis

    # Parallel test workers each get their own database number so flushes do not collide.
    parts = urlsplit(url)
    base = int(parts.path.lstrip("/") or 0)
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    url = urlunsplit(parts._replace(path=f"/{(base - worker) % 16}"))
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        _service_unavailable(f"cannot reach Redis: {exc}")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
