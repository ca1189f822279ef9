"""Plain (not differentially private) summaries of analytics events, for the operators
of this Veil; releases to a wider audience need the DP mechanisms, not these."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

from veil.analytics._events import Event


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def summarize(
    events: Iterable[Event], by: tuple[str, ...] = ("action", "model")
) -> list[dict[str, Any]]:
    """One row per group (event fields or dimensions named in ``by``): how many events,
    outcomes, distinct actors, latency p50/p95 (ms), token sums and findings per kind."""
    groups: dict[tuple[str, ...], list[Event]] = {}
    for event in events:
        fields = {"source": event.source, "action": event.action, "outcome": event.outcome}
        key = tuple(fields.get(name) or event.dims.get(name, "") for name in by)
        groups.setdefault(key, []).append(event)
    rows = []
    for key, members in sorted(groups.items()):
        latencies = sorted(e.values["latency_ms"] for e in members if "latency_ms" in e.values)
        totals: dict[str, float] = {}
        for event in members:
            for name, value in event.values.items():
                if name.endswith("_tokens") or name.startswith(("found.", "masked.")):
                    totals[name] = totals.get(name, 0) + value
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "events": len(members),
                "outcomes": dict(sorted(Counter(e.outcome for e in members).items())),
                "actors": len({e.actor for e in members}),
                "latency_p50_ms": _quantile(latencies, 0.50),
                "latency_p95_ms": _quantile(latencies, 0.95),
                "totals": {name: totals[name] for name in sorted(totals)},
            }
        )
    return rows
