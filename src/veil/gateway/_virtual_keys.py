"""Virtual keys: what applications present to the gateway instead of a provider key.

A key is ``sk-veil-<id>-<secret>``. Only a keyed hash (HMAC-SHA-256 under the key store's
``virtual-key-hash`` data key) is stored, looked up by id and compared in constant time.
Each key carries its allowed models (globs), its limits and the name of its policy.
"""

from __future__ import annotations

import fnmatch
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from veil._hmac import KeyedHmac
from veil.errors import InputError
from veil.keys import KeyStore
from veil.store import as_utc, virtual_keys
from veil.transform import PolicyStore

KEY_PREFIX = "sk-veil-"
_KEY = re.compile(r"^sk-veil-([0-9a-f]{12})-([A-Za-z0-9_-]{32,64})$")
_LIMIT = re.compile(
    r"^\s*(\d+)\s*/\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\s*$",
    re.IGNORECASE,
)
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
_CACHE_SECONDS = 2.0  # how long a revocation may take to reach another replica
# At most this many ids not in the cache are looked up per second and process: a flood of
# made-up keys must not become a flood of queries on the event loop. (During one, a key
# this process has not seen yet may be refused for a moment; keys in use stay cached.)
_UNKNOWN_LOOKUPS_PER_SECOND = 50
_CACHE_ENTRIES = 4096  # keys in use, the oldest forgotten first


@dataclass(frozen=True, slots=True)
class Limit:
    """``amount`` per ``period`` seconds, as written (``60/min``)."""

    amount: int
    period: int
    text: str

    @classmethod
    def parse(cls, text: str, what: str) -> Limit:
        match = _LIMIT.match(text)
        if match is None or int(match.group(1)) <= 0:
            raise InputError(
                f"Invalid {what} limit {text!r}.",
                hint="Write a positive number per second, minute, hour or day: 60/min, 100000/day.",
            )
        return cls(int(match.group(1)), _PERIODS[match.group(2)[0].lower()], text.strip())


@dataclass(frozen=True, slots=True)
class VirtualKey:
    key_id: str
    name: str
    models: tuple[str, ...]
    rate: Limit | None
    tokens: Limit | None
    policy: str
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, model: str) -> bool:
        return not self.models or any(fnmatch.fnmatchcase(model, glob) for glob in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "models": list(self.models),
            "rate": self.rate.text if self.rate else None,
            "tokens": self.tokens.text if self.tokens else None,
            "policy": self.policy,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


class VirtualKeys:
    """The virtual keys on one database. Thread-safe."""

    def __init__(self, engine: Engine, keys: KeyStore) -> None:
        self._engine = engine
        self._hasher = KeyedHmac(keys.material("virtual-key-hash"))
        self._cache: dict[str, tuple[float, VirtualKey, bytes]] = {}
        self._lock = threading.Lock()
        self._unknown_window = (0.0, 0)  # (second it began, unknown ids looked up in it)

    def __repr__(self) -> str:
        return "VirtualKeys()"

    def _hash(self, token: str) -> bytes:
        return self._hasher.digest(token.encode())

    def create(
        self,
        name: str,
        *,
        models: list[str] | None = None,
        rate: str | None = None,
        tokens: str | None = None,
        policy: str = "default",
        home: Path | None = None,
    ) -> tuple[VirtualKey, str]:
        """A new key; returns it and its secret, which is shown once and never stored."""
        if not _NAME.match(name):
            raise InputError(
                f"Invalid key name {name!r}.",
                hint="Use letters, digits, spaces, '.', '_' or '-' (at most 100).",
            )
        rate_limit = Limit.parse(rate, "rate") if rate else None
        token_limit = Limit.parse(tokens, "token") if tokens else None
        if home is not None:
            PolicyStore(home).get(policy)  # fail now, not on the first request
        globs = [m.strip() for m in models or [] if m.strip()]
        key_id = secrets.token_hex(6)
        token = f"{KEY_PREFIX}{key_id}-{secrets.token_urlsafe(32)}"
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            connection.execute(
                insert(virtual_keys).values(
                    key_id=key_id,
                    name=name,
                    key_hash=self._hash(token),
                    models=json.dumps(globs),
                    rate=rate_limit.text if rate_limit else None,
                    tokens=token_limit.text if token_limit else None,
                    policy=policy,
                    created_at=now,
                )
            )
        key = VirtualKey(key_id, name, tuple(globs), rate_limit, token_limit, policy, now, None)
        return key, token

    @staticmethod
    def _from_row(row: Any) -> VirtualKey:
        return VirtualKey(
            key_id=row.key_id,
            name=row.name,
            models=tuple(json.loads(row.models)),
            rate=Limit.parse(row.rate, "rate") if row.rate else None,
            tokens=Limit.parse(row.tokens, "token") if row.tokens else None,
            policy=row.policy,
            created_at=as_utc(row.created_at),
            revoked_at=None if row.revoked_at is None else as_utc(row.revoked_at),
        )

    def list(self, *, include_revoked: bool = False) -> list[VirtualKey]:
        query = select(virtual_keys).order_by(virtual_keys.c.created_at)
        if not include_revoked:
            query = query.where(virtual_keys.c.revoked_at.is_(None))
        with self._engine.connect() as connection:
            return [self._from_row(row) for row in connection.execute(query)]

    def revoke(self, key_id_or_name: str) -> VirtualKey:
        """Revoke by id (``3f9a…``) or by name when exactly one active key has it."""
        wanted = key_id_or_name.removeprefix("vk_")
        with self._engine.begin() as connection:
            rows = connection.execute(
                select(virtual_keys).where(
                    virtual_keys.c.revoked_at.is_(None),
                    (virtual_keys.c.key_id == wanted) | (virtual_keys.c.name == key_id_or_name),
                )
            ).all()
            if not rows:
                raise InputError(
                    f"No active virtual key {key_id_or_name!r}.",
                    hint="`veil keys list` shows the active keys and their ids.",
                )
            if len(rows) > 1:
                raise InputError(
                    f"Several active keys are named {key_id_or_name!r}.",
                    hint="Revoke by key id (see `veil keys list`).",
                )
            connection.execute(
                update(virtual_keys)
                .where(virtual_keys.c.key_id == rows[0].key_id)
                .values(revoked_at=datetime.now(UTC))
            )
        with self._lock:
            self._cache.pop(rows[0].key_id, None)
        return self._from_row(rows[0])

    def authenticate(self, presented: str) -> VirtualKey | None:
        """The active key ``presented`` is, or ``None``. Rows are cached for two seconds,
        so a revocation reaches every replica within that time."""
        match = _KEY.match(presented)
        if match is None:
            return None
        key_id = match.group(1)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_id)
            if cached is None and not self._may_look_up_unknown(now):
                return None  # over this second's budget of unknown ids: no query
        if cached is None or now - cached[0] > _CACHE_SECONDS:
            with self._engine.connect() as connection:
                row = connection.execute(
                    select(virtual_keys).where(virtual_keys.c.key_id == key_id)
                ).first()
            if row is None:
                return None
            cached = (now, self._from_row(row), bytes(row.key_hash))
            with self._lock:
                self._cache.pop(key_id, None)
                while len(self._cache) >= _CACHE_ENTRIES:
                    self._cache.pop(next(iter(self._cache)))  # the oldest entry
                self._cache[key_id] = cached
        _, key, stored = cached
        if not hmac.compare_digest(stored, self._hash(presented)):
            return None
        return None if key.revoked_at is not None else key

    def _may_look_up_unknown(self, now: float) -> bool:
        """Count one lookup of an id not in the cache against this second's budget
        (called with the lock held)."""
        began, count = self._unknown_window
        if now - began >= 1.0:
            began, count = now, 0
        if count >= _UNKNOWN_LOOKUPS_PER_SECOND:
            return False
        self._unknown_window = (began, count + 1)
        return True
