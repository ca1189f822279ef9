"""Key stores on a throwaway SQLite database, for operators and maps that need keys."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from veil.keys import KeyStore, RootKey
from veil.store import create_engine_for, upgrade


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'keys.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def new_keystore(tmp_path: Path) -> Iterator[Callable[[], KeyStore]]:
    """Each call: a key store with its own root key and its own database."""
    engines: list[Engine] = []

    def make() -> KeyStore:
        engine = create_engine_for(f"sqlite:///{tmp_path / f'keys-{len(engines)}.db'}")
        upgrade(engine)
        engines.append(engine)
        return KeyStore(engine, RootKey(os.urandom(32)))

    yield make
    for engine in engines:
        engine.dispose()
