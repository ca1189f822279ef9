"""The analytics event store: one row per event (a gateway call, ...) with the actor
replaced by a keyed hash, a few dimensions (model, endpoint, status) and numeric values
(latency, tokens, how many findings of each kind). Never content.

Events are buffered in memory and written in one transaction per batch by a background
thread, so recording one costs a list append on the request path. The audit ledger is
the durable record of every call; an event still in the buffer when the process is
killed (at most ``interval`` seconds of them) is lost, a clean shutdown writes them all.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from veil._hmac import KeyedHmac
from veil.errors import InputError, StorageError
from veil.keys import KeyStore, RootKey
from veil.store import analytics_events, as_utc, safe_url

log = logging.getLogger("veil.analytics")

ACTOR_PURPOSE = "analytics-actor"
_READ_BATCH = 1000  # events read per round trip when iterating over many
_NAME_LIMITS = {"source": 50, "action": 100, "outcome": 50}


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded event as read back from the store."""

    id: int
    time: datetime
    source: str
    action: str
    outcome: str
    actor: str
    dims: Mapping[str, str]
    values: Mapping[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "action": self.action,
            "outcome": self.outcome,
            "actor": self.actor,
            "dims": dict(self.dims),
            "values": dict(self.values),
        }


def _check_name(field: str, value: str) -> str:
    limit = _NAME_LIMITS[field]
    if not value or len(value) > limit:
        raise InputError(f"An analytics event's {field} must be 1 to {limit} characters.")
    return value


def _check_dims(dims: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in (dims or {}).items():
        if not isinstance(value, str) or len(value) > 200:
            raise InputError(f"Analytics dimension {name!r} must be text of at most 200 chars.")
        checked[str(name)] = value
    return checked


def _check_values(values: Mapping[str, float] | None) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, value in (values or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"Analytics value {name!r} must be a number.")
        if not math.isfinite(value):
            raise InputError(f"Analytics value {name!r} must be finite.")
        checked[str(name)] = value
    return checked


class EventStore:
    """Buffered writer and reader of analytics events on the configured database.

    ``keys`` (a :class:`KeyStore`, or a root key for one on this engine) supplies the
    HMAC key of :meth:`actor_id`: analysts can count distinct callers and bound each
    one's contribution without learning who they are. ``interval`` is how long an event
    may wait in memory; ``batch`` events wake the writer early; at most ``max_pending``
    wait while the database is unreachable (the oldest are dropped beyond, and counted
    in :attr:`dropped`).
    """

    def __init__(
        self,
        engine: Engine,
        keys: KeyStore | RootKey,
        *,
        interval: float = 1.0,
        batch: int = 1000,
        max_pending: int = 100_000,
    ) -> None:
        if isinstance(keys, RootKey):
            keys = KeyStore(engine, keys)
        self._engine = engine
        self._actor_hmac = KeyedHmac(keys.material(ACTOR_PURPOSE))
        self._interval = interval
        self._batch = batch
        self._max_pending = max_pending
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards _pending and _writer
        self._flush_lock = threading.Lock()  # one flush at a time, in order
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._closed = False
        self.dropped = 0

    def __repr__(self) -> str:
        return f"EventStore(database={safe_url(str(self._engine.url))!r})"

    def actor_id(self, actor: str) -> str:
        """The keyed hash that stands for ``actor`` in every event."""
        digest = self._actor_hmac.hexdigest(actor.encode())
        return "a_" + digest[:32]

    # -- writing -------------------------------------------------------------------

    def record(
        self,
        source: str,
        action: str,
        outcome: str,
        *,
        actor: str,
        dims: Mapping[str, str] | None = None,
        values: Mapping[str, float] | None = None,
        time: datetime | None = None,
    ) -> None:
        """Queue one event; it is written within ``interval`` seconds."""
        row = {
            "time": time or datetime.now(UTC),
            "source": _check_name("source", source),
            "action": _check_name("action", action),
            "outcome": _check_name("outcome", outcome),
            "actor": self.actor_id(actor),
            "dims": json.dumps(_check_dims(dims), sort_keys=True, ensure_ascii=False),
            "event_values": json.dumps(_check_values(values), sort_keys=True),
        }
        with self._lock:
            if self._closed:
                raise StorageError("The analytics event store is closed.")
            self._pending.append(row)
            if len(self._pending) > self._max_pending:
                del self._pending[0]
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("analytics events dropped while the database is unreachable")
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._run, name="veil-analytics-writer", daemon=True
                )
                self._writer.start()
            if len(self._pending) >= self._batch:
                self._wake.set()

    def flush(self) -> int:
        """Write every queued event now, in one transaction; returns how many."""
        with self._flush_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return 0
            try:
                with self._engine.begin() as connection:
                    connection.execute(insert(analytics_events), rows)
            except SQLAlchemyError as exc:
                with self._lock:  # keep them for the next try, oldest first
                    self._pending[:0] = rows
                    excess = len(self._pending) - self._max_pending
                    if excess > 0:
                        del self._pending[:excess]
                        self.dropped += excess
                raise StorageError(
                    f"Analytics events could not be written ({type(exc).__name__}).",
                    hint="Check that the database is reachable; queued events are retried.",
                ) from None
            return len(rows)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
            except StorageError as exc:
                log.error("%s", exc.message)
            with self._lock:
                if self._closed and not self._pending:
                    return
                if self._closed:  # the database is down at shutdown: give up after one try
                    log.error("%d analytics events not written at shutdown", len(self._pending))
                    return

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        with self._lock:
            self._closed = True
            writer = self._writer
        if writer is not None:
            self._wake.set()
            writer.join()
        else:
            self.flush()

    def prune(self, before: datetime) -> int:
        """Delete the events recorded before ``before`` (one transaction); how many."""
        self.flush()
        try:
            with self._engine.begin() as connection:
                result = connection.execute(
                    delete(analytics_events).where(analytics_events.c.time < before)
                )
        except SQLAlchemyError as exc:
            raise StorageError(
                f"Analytics events could not be deleted ({type(exc).__name__}).",
                hint="Check that the database is reachable; nothing was deleted.",
            ) from None
        return int(result.rowcount or 0)

    # -- reading -------------------------------------------------------------------

    def events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Written events matching every filter given, oldest first."""
        return list(
            self.iter_events(
                since=since, until=until, source=source, action=action, outcome=outcome, limit=limit
            )
        )

    def iter_events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Event]:
        """Like :meth:`events`, read from the database in batches (an export of millions
        of events holds one batch in memory); the connection stays open until the
        iteration ends."""
        table = analytics_events
        query = select(table).order_by(table.c.id)
        if since is not None:
            query = query.where(table.c.time >= since)
        if until is not None:
            query = query.where(table.c.time < until)
        for column, value in (
            (table.c.source, source),
            (table.c.action, action),
            (table.c.outcome, outcome),
        ):
            if value is not None:
                query = query.where(column == value)
        if limit is not None:
            query = query.limit(limit)
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query, execution_options={"yield_per": _READ_BATCH})
                for row in rows:
                    yield Event(
                        id=int(row.id),
                        time=as_utc(row.time),
                        source=row.source,
                        action=row.action,
                        outcome=row.outcome,
                        actor=row.actor,
                        dims=json.loads(row.dims),
                        values=json.loads(row.event_values),
                    )
        except SQLAlchemyError as exc:
            raise StorageError(
                f"Analytics events could not be read ({type(exc).__name__}).",
                hint="Check that the database is reachable and migrated (veil db upgrade).",
            ) from None
