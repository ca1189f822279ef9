"""Analytics: an event store of what Veil's surfaces did (a gateway call: model, status,
latency, tokens, how many findings of each kind) with the caller as a keyed hash and
never any content; summaries for operators.

:func:`open_events` opens the store on the configured database.
"""

from __future__ import annotations

from veil.analytics._events import ACTOR_PURPOSE, Event, EventStore
from veil.analytics._summary import summarize
from veil.config import Settings


def open_events(settings: Settings) -> EventStore:
    """The event store on the configured database, hashing actors with a data key."""
    from veil.keys import root_key_from_settings
    from veil.store import open_engine

    return EventStore(open_engine(settings), root_key_from_settings(settings))


__all__ = ["ACTOR_PURPOSE", "Event", "EventStore", "open_events", "summarize"]
