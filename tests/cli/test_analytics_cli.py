"""``veil analytics`` as an operator runs it."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from tests.cli.conftest import veil
from veil.analytics import open_events
from veil.config import load_settings
from veil.errors import EXIT_OK, EXIT_USAGE

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    store = open_events(load_settings())
    for index, (model, outcome) in enumerate(
        [("gpt-4o", "ok"), ("gpt-4o", "ok"), ("gpt-4o", "blocked"), ("claude-x", "ok")]
    ):
        store.record(
            "gateway",
            "gateway.chat.completions",
            outcome,
            actor=f"vk_{index % 2}",
            dims={"model": model},
            values={"latency_ms": 10.0 * (index + 1), "found.EMAIL": 1},
            time=NOW - timedelta(hours=index),
        )
    store.close()


def test_events_export_as_json_lines_oldest_first() -> None:
    code, output = veil("analytics", "events")
    assert code == EXIT_OK
    events = [json.loads(line) for line in output.splitlines()]
    assert [e["dims"]["model"] for e in events] == ["gpt-4o", "gpt-4o", "gpt-4o", "claude-x"]
    assert all(e["actor"].startswith("a_") for e in events)


def test_events_filter_by_time_and_outcome_and_export_csv() -> None:
    since = (NOW - timedelta(minutes=90)).isoformat()
    code, output = veil("analytics", "events", "--since", since, "--format", "csv")
    assert code == EXIT_OK
    rows = list(csv.DictReader(io.StringIO(output)))
    assert len(rows) == 2
    assert json.loads(rows[0]["values"])["found.EMAIL"] == 1
    code, output = veil("analytics", "events", "--outcome", "blocked", "--format", "json")
    assert [e["outcome"] for e in json.loads(output)] == ["blocked"]


def test_summary_groups_by_model() -> None:
    code, output = veil("analytics", "summary", "--by", "model", "--json")
    assert code == EXIT_OK
    rows = {row["model"]: row for row in json.loads(output)}
    assert rows["gpt-4o"]["events"] == 3
    assert rows["gpt-4o"]["outcomes"] == {"blocked": 1, "ok": 2}
    assert rows["gpt-4o"]["actors"] == 2
    assert rows["claude-x"]["totals"] == {"found.EMAIL": 1}


def test_summary_prints_a_table() -> None:
    code, output = veil("analytics", "summary")
    assert code == EXIT_OK
    assert "gpt-4o" in output
    assert "4 events" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["events", "--since", "yesterday"], "must be an ISO 8601 time"),
        (["events", "--format", "xml"], "json, jsonl or csv"),
        (["summary", "--by", ","], "at least one field"),
        # swapped bounds: an empty export with exit 0 read as "nothing happened"
        (["events", "--since", "2026-11-24", "--until", "2026-11-01"], "not before --until"),
        (["summary", "--since", "2026-11-24", "--until", "2026-11-24"], "not before --until"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    code, output = veil("analytics", *args)
    assert code == EXIT_USAGE
    assert message in output


def test_prune_deletes_older_events_and_is_audited() -> None:
    from veil.audit import open_ledger

    before = (NOW - timedelta(minutes=90)).isoformat()
    code, output = veil("analytics", "prune", "--before", before, "--json")
    assert code == EXIT_OK
    assert json.loads(output)["deleted"] == 2
    code, output = veil("analytics", "events", "--format", "json")
    assert len(json.loads(output)) == 2
    entries = open_ledger(load_settings()).entries(action="analytics.prune")
    assert entries[-1]["details"]["deleted"] == 2


def test_prune_needs_a_time() -> None:
    code, output = veil("analytics", "prune")
    assert code == EXIT_USAGE
    assert "--before" in output
