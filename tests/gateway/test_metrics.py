"""The gateway's Prometheus counters, one process's and a whole server's."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from veil.gateway._metrics import Metrics, SharedMetrics


def _worker(requests: int, seconds: float, kinds: dict[str, int]) -> Metrics:
    metrics = Metrics()
    for _ in range(requests):
        metrics.observe("chat.completions", 200, seconds)
    metrics.found(Counter(kinds))
    metrics.limited[(("key", "vk_1"),)] += 1
    return metrics


def _series(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return dict(line.rsplit(" ", 1) for line in lines)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["chat.completions", "embeddings", "messages"]),
            st.sampled_from([200, 400, 429, 502]),
            st.floats(min_value=0, max_value=100, allow_nan=False),
        ),
        max_size=30,
    ),
    st.dictionaries(st.sampled_from(["EMAIL", "PHONE", "PERSON"]), st.integers(1, 5)),
)
def test_a_snapshot_through_json_added_to_empty_counts_renders_the_same(
    calls: list[tuple[str, int, float]], kinds: dict[str, int]
) -> None:
    metrics = Metrics()
    for endpoint, status, seconds in calls:
        metrics.observe(endpoint, status, seconds)
    metrics.found(Counter(kinds))
    copy = Metrics()
    copy.add(json.loads(json.dumps(metrics.snapshot())))
    assert copy.render() == metrics.render()


def test_a_scrape_of_any_worker_adds_up_every_worker(tmp_path: Path) -> None:
    first = _worker(3, 0.02, {"EMAIL": 2})
    second = _worker(5, 0.2, {"EMAIL": 1, "PHONE": 4})
    SharedMetrics(tmp_path, "second").publish(second)
    series = _series(SharedMetrics(tmp_path, "first").combined(first).render())
    assert series['veil_requests_total{endpoint="chat.completions",status="200"}'] == "8"
    assert series['veil_findings_total{kind="EMAIL"}'] == "3"
    assert series['veil_findings_total{kind="PHONE"}'] == "4"
    assert series['veil_rate_limited_total{key="vk_1"}'] == "2"
    bucket = 'veil_request_duration_seconds_bucket{endpoint="chat.completions",le="0.025"}'
    assert series[bucket] == "3"
    assert series['veil_request_duration_seconds_count{endpoint="chat.completions"}'] == "8"
    assert float(series['veil_request_duration_seconds_sum{endpoint="chat.completions"}']) == (
        3 * 0.02 + 5 * 0.2
    )


def test_a_workers_latest_publication_replaces_its_earlier_one(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    worker = SharedMetrics(directory, "one")
    metrics = _worker(1, 0.01, {})
    worker.publish(metrics)
    metrics.observe("chat.completions", 200, 0.01)
    series = _series(worker.combined(metrics).render())
    assert series['veil_requests_total{endpoint="chat.completions",status="200"}'] == "2"
    assert [p.name for p in directory.iterdir()] == ["one.json"]  # no temporary file left


def test_the_counts_of_a_worker_that_stopped_stay_in_the_totals(tmp_path: Path) -> None:
    SharedMetrics(tmp_path, "gone").publish(_worker(4, 0.01, {}))
    series = _series(SharedMetrics(tmp_path, "alive").combined(Metrics()).render())
    assert series['veil_requests_total{endpoint="chat.completions",status="200"}'] == "4"
