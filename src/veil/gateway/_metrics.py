"""Prometheus text exposition of the gateway's counters (no client library needed)."""

from __future__ import annotations

from collections import Counter

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
