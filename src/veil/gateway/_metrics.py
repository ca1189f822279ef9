"""Prometheus text exposition of the gateway's counters (no client library needed).

One process counts in a :class:`Metrics`. The worker processes of ``veil serve
--workers N`` each publish theirs into one directory (:class:`SharedMetrics`), so a
scrape answered by any worker reports the whole server.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from veil._files import write_atomically

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[tuple[str, str], ...]] = Counter()
        self.findings: Counter[tuple[tuple[str, str], ...]] = Counter()
        self.limited: Counter[tuple[tuple[str, str], ...]] = Counter()
        self._buckets: Counter[tuple[str, float]] = Counter()
        self._sums: dict[str, float] = {}
        self._counts: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"Metrics(requests={sum(self.requests.values())})"

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[(("endpoint", endpoint), ("status", str(status)))] += 1
        self._sums[endpoint] = self._sums.get(endpoint, 0.0) + seconds
        self._counts[endpoint] += 1
        for bound in _BUCKETS:
            if seconds <= bound:
                self._buckets[(endpoint, bound)] += 1

    def found(self, kinds: Counter[str]) -> None:
        for kind, count in kinds.items():
            self.findings[(("kind", kind),)] += count

    def snapshot(self) -> dict[str, Any]:
        """Every count as JSON values (label pairs as lists), for :meth:`add`."""

        def pairs(counter: Counter[tuple[tuple[str, str], ...]]) -> list[Any]:
            return [[[list(pair) for pair in labels], n] for labels, n in counter.items()]

        return {
            "requests": pairs(self.requests),
            "findings": pairs(self.findings),
            "limited": pairs(self.limited),
            "buckets": [[endpoint, bound, n] for (endpoint, bound), n in self._buckets.items()],
            "sums": self._sums,
            "counts": dict(self._counts),
        }

    def add(self, snapshot: dict[str, Any]) -> None:
        """Add the counts of another process's :meth:`snapshot` to these."""
        for name in ("requests", "findings", "limited"):
            counter: Counter[tuple[tuple[str, str], ...]] = getattr(self, name)
            for labels, n in snapshot[name]:
                counter[tuple((key, value) for key, value in labels)] += n
        for endpoint, bound, n in snapshot["buckets"]:
            self._buckets[(endpoint, bound)] += n
        for endpoint, seconds in snapshot["sums"].items():
            self._sums[endpoint] = self._sums.get(endpoint, 0.0) + seconds
        self._counts.update(snapshot["counts"])

    def render(self) -> str:
        lines = [
            "# HELP veil_requests_total Gateway requests by endpoint and status.",
            "# TYPE veil_requests_total counter",
        ]
        lines += [f"veil_requests_total{_labels(k)} {v}" for k, v in sorted(self.requests.items())]
        lines += [
            "# HELP veil_findings_total Secrets and personal data found in prompts, by kind.",
            "# TYPE veil_findings_total counter",
        ]
        lines += [f"veil_findings_total{_labels(k)} {v}" for k, v in sorted(self.findings.items())]
        lines += [
            "# HELP veil_rate_limited_total Requests refused by a virtual key's limits.",
            "# TYPE veil_rate_limited_total counter",
        ]
        lines += [
            f"veil_rate_limited_total{_labels(k)} {v}" for k, v in sorted(self.limited.items())
        ]
        lines += [
            "# HELP veil_request_duration_seconds Time from request to the end of the answer.",
            "# TYPE veil_request_duration_seconds histogram",
        ]
        for endpoint in sorted(self._counts):
            for bound in _BUCKETS:
                count = self._buckets[(endpoint, bound)]
                lines.append(
                    f'veil_request_duration_seconds_bucket{{endpoint="{endpoint}",le="{bound}"}} '
                    f"{count}"
                )
            total = self._counts[endpoint]
            lines.append(
                f'veil_request_duration_seconds_bucket{{endpoint="{endpoint}",le="+Inf"}} {total}'
            )
            lines.append(
                f'veil_request_duration_seconds_sum{{endpoint="{endpoint}"}} '
                f"{self._sums[endpoint]:.6f}"
            )
            lines.append(f'veil_request_duration_seconds_count{{endpoint="{endpoint}"}} {total}')
        return "\n".join(lines) + "\n"


class SharedMetrics:
    """The counts of every worker process of one server, through a directory: each
    worker writes its snapshot to a file of its own (atomically, by rename), at least
    every :attr:`PERIOD` seconds and whenever it answers a scrape, and a scrape adds up
    all the files. A worker that died keeps its file, so its counts stay in the totals
    (Prometheus counters never go down). Another worker's counts are at most
    :attr:`PERIOD` seconds old."""

    PERIOD = 1.0

    def __init__(self, directory: Path, name: str | None = None) -> None:
        self.directory = directory
        self._own = directory / f"{name or os.getpid()}.json"

    def __repr__(self) -> str:
        return f"SharedMetrics({str(self.directory)!r})"

    def publish(self, metrics: Metrics) -> None:
        # Not synced to disk: the counts only matter while this server runs.
        write_atomically(self._own, json.dumps(metrics.snapshot()).encode(), sync=False)

    def combined(self, metrics: Metrics) -> Metrics:
        """``metrics`` (this process's, published first) plus every other worker's."""
        self.publish(metrics)
        total = Metrics()
        for path in sorted(self.directory.glob("*.json")):
            try:
                total.add(json.loads(path.read_bytes()))
            except FileNotFoundError:  # the server is shutting down and removed it
                continue
        return total
