"""The analytics event store on SQLite and the real PostgreSQL: events are written in
batches, read back exactly, name callers only by a keyed hash, and survive a database
that is briefly unavailable."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from veil.analytics import EventStore, summarize
from veil.errors import InputError, StorageError
from veil.keys import RootKey
from veil.store import create_engine_for, upgrade

KEY = os.urandom(32)


def _record_call(store: EventStore, actor: str = "vk_alice", **values: float) -> None:
    store.record(
        "gateway",
        "gateway.chat.completions",
        "ok",
        actor=actor,
        dims={"model": "gpt-4o", "status": "200"},
        values={"latency_ms": 12.5, "prompt_tokens": 30, "found.EMAIL": 2, **values},
    )


def test_recorded_events_read_back_exactly_with_the_actor_hashed(engine: Engine) -> None:
    store = EventStore(engine, RootKey(KEY))
    _record_call(store)
    assert store.flush() == 1
    [event] = store.events()
    assert (event.source, event.action, event.outcome) == (
        "gateway",
        "gateway.chat.completions",
        "ok",
    )
    assert dict(event.dims) == {"model": "gpt-4o", "status": "200"}
    assert dict(event.values) == {"latency_ms": 12.5, "prompt_tokens": 30, "found.EMAIL": 2}
    assert event.actor == store.actor_id("vk_alice") != "vk_alice"
    assert "alice" not in event.actor
    assert event.time.tzinfo is not None
    store.close()


def test_the_actor_hash_is_stable_per_installation_and_differs_between_them(
    engine: Engine, tmp_path: Path
) -> None:
    first = EventStore(engine, RootKey(KEY)).actor_id("vk_alice")
    assert EventStore(engine, RootKey(KEY)).actor_id("vk_alice") == first
    other = create_engine_for(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    try:
        assert EventStore(other, RootKey(os.urandom(32))).actor_id("vk_alice") != first
    finally:
        other.dispose()


def test_close_writes_what_is_still_queued(engine: Engine) -> None:
    store = EventStore(engine, RootKey(KEY), interval=3600)
    for _ in range(5):
        _record_call(store)
    store.close()
    assert len(EventStore(engine, RootKey(KEY)).events()) == 5


def test_a_full_batch_is_written_without_waiting_for_the_interval(engine: Engine) -> None:
    store = EventStore(engine, RootKey(KEY), interval=3600, batch=3)
    for _ in range(3):
        _record_call(store)
    reader = EventStore(engine, RootKey(KEY))
    for _ in range(200):  # the writer thread wakes on the third event
        if len(reader.events()) == 3:
            break
        time.sleep(0.05)
    assert len(reader.events()) == 3
    store.close()


def test_events_filter_by_time_action_and_outcome(engine: Engine) -> None:
    store = EventStore(engine, RootKey(KEY))
    now = datetime.now(UTC)
    store.record("gateway", "gateway.embeddings", "ok", actor="a", time=now - timedelta(hours=2))
    store.record("gateway", "gateway.chat.completions", "blocked", actor="a", time=now)
    store.flush()
    assert [e.action for e in store.events(since=now - timedelta(hours=1))] == [
        "gateway.chat.completions"
    ]
    assert [e.outcome for e in store.events(action="gateway.embeddings")] == ["ok"]
    assert len(store.events(outcome="blocked")) == 1
    assert len(store.events(limit=1)) == 1


def test_events_queued_while_the_table_is_unavailable_are_written_later(engine: Engine) -> None:
    store = EventStore(engine, RootKey(KEY))
    _record_call(store)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE analytics_events RENAME TO analytics_events_away"))
    with pytest.raises(StorageError, match="could not be written"):
        store.flush()
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE analytics_events_away RENAME TO analytics_events"))
    _record_call(store, actor="vk_bob")
    assert store.flush() == 2
    assert [e.actor for e in store.events()] == [
        store.actor_id("vk_alice"),
        store.actor_id("vk_bob"),
    ]


@pytest.mark.parametrize(
    ("values", "dims", "message"),
    [
        ({"latency_ms": "fast"}, None, "must be a number"),
        ({"latency_ms": float("nan")}, None, "must be finite"),
        (None, {"model": 4}, "must be text"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(
    engine: Engine, values: dict[str, object] | None, dims: dict[str, object] | None, message: str
) -> None:
    store = EventStore(engine, RootKey(KEY))
    with pytest.raises(InputError, match=message):
        store.record("gateway", "x", "ok", actor="a", values=values, dims=dims)  # type: ignore[arg-type]


def test_an_overlong_action_is_refused(engine: Engine) -> None:
    store = EventStore(engine, RootKey(KEY))
    with pytest.raises(InputError, match="action must be 1 to 100"):
        store.record("gateway", "x" * 101, "ok", actor="a")


def test_summary_counts_groups_callers_latency_and_findings(engine: Engine) -> None:
    store = EventStore(engine, RootKey(KEY))
    for latency in (10, 20, 30):
        _record_call(store, latency_ms=latency)
    _record_call(store, actor="vk_bob", latency_ms=40)
    store.flush()
    [row] = summarize(store.events())
    assert row["action"] == "gateway.chat.completions"
    assert row["model"] == "gpt-4o"
    assert row["events"] == 4
    assert row["actors"] == 2
    assert row["outcomes"] == {"ok": 4}
    assert row["latency_p50_ms"] == 25
    assert row["totals"] == {"found.EMAIL": 8, "prompt_tokens": 120}


def test_prune_deletes_only_events_before_the_cutoff(engine: Engine) -> None:
    store = EventStore(engine, RootKey(KEY))
    now = datetime.now(UTC)
    for hours in (48, 30, 1):
        store.record(
            "gateway",
            "gateway.chat.completions",
            "ok",
            actor="a",
            time=now - timedelta(hours=hours),
        )
    assert store.prune(now - timedelta(hours=24)) == 2
    assert [e.time > now - timedelta(hours=2) for e in store.events()] == [True]
    assert store.prune(now - timedelta(hours=24)) == 0


def test_iter_events_streams_what_events_returns(engine: Engine) -> None:
    store = EventStore(engine, RootKey(KEY))
    for n in range(2100):  # more than one read batch
        _record_call(store, prompt_tokens=n)
    store.flush()
    streamed = store.iter_events()
    assert not isinstance(streamed, list)
    events = list(streamed)
    assert [e.values["prompt_tokens"] for e in events] == list(range(2100))
    assert events == store.events()
    store.close()
