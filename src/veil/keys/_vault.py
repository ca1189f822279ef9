"""The vault: provider API keys and other secrets, sealed under the vault's data key.

One record per name; ``set`` replaces it in one transaction. ``rotate`` keeps the previous
value until ``commit_rotation`` (or puts it back with ``rollback_rotation``), so a failed
rollout of a new provider key can be undone. An environment variable ``NAME_API_KEY``
overrides the stored value (for example ``OPENAI_API_KEY`` for ``openai``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from veil.errors import InputError
from veil.keys._store import KeyStore
from veil.store import as_utc, vault_secrets

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")
_PURPOSE = "vault"


def _aad(name: str) -> bytes:
    return b"vault\0" + name.encode()


def env_variable(name: str) -> str:
    """The environment variable that overrides ``name``: ``openai`` → ``OPENAI_API_KEY``."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_API_KEY"


@dataclass(frozen=True, slots=True)
class VaultEntry:
    name: str
    created_at: datetime
    rotated_at: datetime
    rotation_pending: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "rotated_at": self.rotated_at.isoformat(),
            "rotation_pending": self.rotation_pending,
        }


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(
            f"Invalid secret name {name!r}.",
            hint="Use lower case letters, digits, '.', '_' or '-', starting with a letter.",
        )
    return name


class Vault:
    def __init__(self, engine: Engine, keys: KeyStore, environ: Mapping[str, str] | None = None):
        self._engine = engine
        self._keys = keys
        self._environ = os.environ if environ is None else environ

    def __repr__(self) -> str:
        return "Vault()"

    def set(self, name: str, value: str) -> None:
        _check_name(name)
        if not value:
            raise InputError("Refusing to store an empty secret.")
        sealed = self._keys.seal(_PURPOSE, value.encode(), aad=_aad(name))
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            exists = connection.execute(
                select(vault_secrets.c.name).where(vault_secrets.c.name == name)
            ).first()
            if exists is None:
                connection.execute(
                    insert(vault_secrets).values(
                        name=name, sealed=sealed, created_at=now, rotated_at=now
                    )
                )
            else:
                connection.execute(
                    update(vault_secrets)
                    .where(vault_secrets.c.name == name)
                    .values(sealed=sealed, previous=None, rotated_at=now)
                )

    def get(self, name: str) -> str:
        """The secret: the ``NAME_API_KEY`` environment variable if set, else the vault."""
        _check_name(name)
        override = self._environ.get(env_variable(name))
        if override:
            return override
        with self._engine.connect() as connection:
            row = connection.execute(
                select(vault_secrets.c.sealed).where(vault_secrets.c.name == name)
            ).first()
        if row is None:
            raise InputError(
                f"No secret named {name!r} in the vault.",
                hint=f"Store one with `veil vault set {name}` or set {env_variable(name)}.",
            )
        return self._keys.open(_PURPOSE, bytes(row.sealed), aad=_aad(name)).decode()

    def source(self, name: str) -> str:
        if self._environ.get(env_variable(name)):
            return "environment"
        return "vault" if name in {entry.name for entry in self.list()} else "missing"

    def list(self) -> list[VaultEntry]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(vault_secrets).order_by(vault_secrets.c.name)).all()
        return [
            VaultEntry(
                row.name, as_utc(row.created_at), as_utc(row.rotated_at), row.previous is not None
            )
            for row in rows
        ]

    def remove(self, name: str) -> bool:
        _check_name(name)
        with self._engine.begin() as connection:
            result = connection.execute(delete(vault_secrets).where(vault_secrets.c.name == name))
        return bool(result.rowcount)

    def rotate(self, name: str, new_value: str) -> None:
        """Store ``new_value`` and keep the current value until the rotation is committed."""
        _check_name(name)
        if not new_value:
            raise InputError("Refusing to store an empty secret.")
        sealed = self._keys.seal(_PURPOSE, new_value.encode(), aad=_aad(name))
        with self._engine.begin() as connection:
            row = connection.execute(
                select(vault_secrets).where(vault_secrets.c.name == name)
            ).first()
            if row is None:
                raise InputError(f"No secret named {name!r} to rotate; use `veil vault set`.")
            if row.previous is not None:
                raise InputError(
                    f"A rotation of {name!r} is already pending.",
                    hint=f"Finish it: `veil vault rotate {name} --commit` or `--rollback`.",
                )
            connection.execute(
                update(vault_secrets)
                .where(vault_secrets.c.name == name)
                .values(sealed=sealed, previous=row.sealed, rotated_at=datetime.now(UTC))
            )

    def _finish_rotation(self, name: str, *, keep_new: bool) -> None:
        _check_name(name)
        with self._engine.begin() as connection:
            row = connection.execute(
                select(vault_secrets).where(vault_secrets.c.name == name)
            ).first()
            if row is None or row.previous is None:
                raise InputError(f"No rotation of {name!r} is pending.")
            values = {"previous": None} if keep_new else {"sealed": row.previous, "previous": None}
            connection.execute(
                update(vault_secrets).where(vault_secrets.c.name == name).values(**values)
            )

    def reencrypt(self) -> tuple[str, str, int]:
        """Re-seal every stored value (and pending previous value) under a fresh vault data
        key, destroying the old one, in one transaction."""

        def reseal(connection: Connection, convert: Callable[[bytes, bytes], bytes]) -> int:
            rows = connection.execute(select(vault_secrets)).all()
            for row in rows:
                values = {"sealed": convert(bytes(row.sealed), _aad(row.name))}
                if row.previous is not None:
                    values["previous"] = convert(bytes(row.previous), _aad(row.name))
                connection.execute(
                    update(vault_secrets).where(vault_secrets.c.name == row.name).values(**values)
                )
            return len(rows)

        return self._keys.reencrypt(_PURPOSE, reseal)

    def commit_rotation(self, name: str) -> None:
        self._finish_rotation(name, keep_new=True)

    def rollback_rotation(self, name: str) -> None:
        self._finish_rotation(name, keep_new=False)
