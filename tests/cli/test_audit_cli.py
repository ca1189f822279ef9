"""``veil audit`` as a compliance officer runs it."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.cli.conftest import veil
from veil.audit import merkle, open_ledger
from veil.config import load_settings
from veil.errors import EXIT_INTEGRITY, EXIT_OK, EXIT_USAGE
from veil.store import engine_for


@pytest.fixture(autouse=True)
def populated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    ledger = open_ledger(load_settings())
    for index in range(6):
        ledger.append(
            "alice" if index % 2 else "bob",
            "vault.set" if index < 3 else "gateway.call",
            "ok" if index != 4 else "denied",
            subject="customer-7" if index == 5 else None,
            details={"n": index},
        )


def test_verify_passes_and_reports_counts() -> None:
    code, output = veil("audit", "verify", "--json")
    assert code == EXIT_OK
    report = json.loads(output)
    assert report["ok"] is True
    assert report["entries"] == 6


def test_verify_exits_3_and_names_the_edited_entry() -> None:
    with engine_for(load_settings()).begin() as connection:
        connection.execute(text("UPDATE audit_entries SET entry = :e WHERE seq = 2"), {"e": b"{}"})
    code, output = veil("audit", "verify")
    assert code == EXIT_INTEGRITY
    assert "entry 2" in output


def test_checkpoint_then_truncation_is_detected(tmp_path: Path) -> None:
    saved = tmp_path / "checkpoint.json"
    assert veil("audit", "checkpoint", "--out", str(saved))[0] == EXIT_OK
    assert json.loads(saved.read_text())["size"] == 6
    assert veil("audit", "verify", "--checkpoint", str(saved))[0] == EXIT_OK
    with engine_for(load_settings()).begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 5"))
        connection.execute(text("DELETE FROM audit_heads WHERE size = 6"))
        frontier = merkle.Frontier()
        for (leaf,) in connection.execute(text("SELECT leaf_hash FROM audit_entries ORDER BY seq")):
            frontier.append(bytes(leaf))
        connection.execute(
            text("UPDATE audit_state SET size = :n, frontier = :f"),
            {"n": frontier.size, "f": b"".join(frontier.subtrees)},
        )
    code, output = veil("audit", "verify", "--checkpoint", str(saved))
    assert code == EXIT_INTEGRITY
    assert "truncated or rolled back" in output


def test_a_new_checkpoint_replaces_the_old_one_only_when_the_ledger_extends_it(
    tmp_path: Path,
) -> None:
    # A nightly `veil audit checkpoint --out FILE` wrote over the evidence: run after a
    # rewrite, it replaced the checkpoint that would have exposed it.
    saved = tmp_path / "checkpoint.json"
    assert veil("audit", "checkpoint", "--out", str(saved))[0] == EXIT_OK
    open_ledger(load_settings()).append("carol", "vault.get", "ok")
    assert veil("audit", "checkpoint", "--out", str(saved))[0] == EXIT_OK
    assert json.loads(saved.read_text())["size"] == 7
    kept = saved.read_text()
    with engine_for(load_settings()).begin() as connection:
        connection.execute(
            text("UPDATE audit_entries SET leaf_hash = :h WHERE seq = 2"), {"h": os.urandom(32)}
        )
    code, output = veil("audit", "checkpoint", "--out", str(saved))
    assert code == EXIT_INTEGRITY
    assert "entry 2 was edited" in output
    assert "was kept" in output
    assert saved.read_text() == kept
    assert veil("audit", "checkpoint", "--out", str(saved), "--force")[0] == EXIT_OK


def test_a_checkpoint_is_not_replaced_after_truncation(tmp_path: Path) -> None:
    saved = tmp_path / "checkpoint.json"
    assert veil("audit", "checkpoint", "--out", str(saved))[0] == EXIT_OK
    kept = saved.read_text()
    with engine_for(load_settings()).begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 5"))
        connection.execute(text("DELETE FROM audit_heads WHERE size = 6"))
        connection.execute(text("UPDATE audit_state SET size = 5"))
    code, output = veil("audit", "checkpoint", "--out", str(saved))
    assert code == EXIT_INTEGRITY
    assert "truncated or rolled back" in output
    assert saved.read_text() == kept


def test_checkpoint_refuses_to_write_over_a_file_that_is_not_one(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("my notes")
    code, output = veil("audit", "checkpoint", "--out", str(other))
    assert code == EXIT_USAGE
    assert "is not a checkpoint" in output
    assert other.read_text() == "my notes"


def test_a_missing_checkpoint_file_is_a_usage_error(tmp_path: Path) -> None:
    code, output = veil("audit", "verify", "--checkpoint", str(tmp_path / "nope.json"))
    assert code == EXIT_USAGE
    assert "veil audit checkpoint" in output


def test_prove_prints_a_proof_any_rfc6962_verifier_accepts() -> None:
    code, output = veil("audit", "prove", "3")
    assert code == EXIT_OK
    proof = json.loads(output)
    merkle.verify_inclusion(
        proof["leaf_index"],
        proof["tree_size"],
        merkle.leaf_hash(proof["entry"].encode()),
        [bytes.fromhex(node) for node in proof["proof"]],
        bytes.fromhex(proof["root"]),
    )


def test_query_filters_and_exports_csv_and_jsonl() -> None:
    code, output = veil("audit", "query", "--actor", "alice", "--format", "csv")
    assert code == EXIT_OK
    rows = list(csv.DictReader(io.StringIO(output)))
    assert [row["seq"] for row in rows] == ["1", "3", "5"]
    code, output = veil("audit", "query", "--outcome", "denied")
    assert [json.loads(line)["seq"] for line in output.splitlines()] == [4]
    code, output = veil("audit", "query", "--subject", "customer-7", "--format", "json")
    assert [entry["seq"] for entry in json.loads(output)] == [5]
    code, output = veil("audit", "query", "--since", "2000-01-01T00:00Z", "--action", "vault.set")
    assert len(output.splitlines()) == 3


def test_query_with_a_bad_time_is_a_usage_error() -> None:
    code, output = veil("audit", "query", "--since", "last tuesday")
    assert code == EXIT_USAGE
    assert "ISO 8601" in output


def test_query_with_since_after_until_is_a_usage_error() -> None:
    # Swapped bounds matched nothing and exited 0: an empty export that looked like
    # "nothing happened" to whoever asked.
    code, output = veil(
        "audit", "query", "--since", "2026-11-24T00:00Z", "--until", "2026-11-01T00:00Z"
    )
    assert code == EXIT_USAGE
    assert "--since is not before --until" in output


def test_tail_with_a_count_below_one_is_a_usage_error() -> None:
    # -n -3 became SQL's LIMIT -3, no limit at all: the whole ledger.
    assert veil("audit", "tail", "-n", "-3")[0] == EXIT_USAGE


def test_tail_shows_the_newest_entries() -> None:
    code, output = veil("audit", "tail", "-n", "2", "--json")
    assert code == EXIT_OK
    assert [entry["seq"] for entry in json.loads(output)] == [4, 5]


def test_tail_prints_one_line_per_entry_with_compact_details() -> None:
    code, output = veil("audit", "tail", "-n", "2")
    assert code == EXIT_OK
    rows = [line for line in output.splitlines() if line.startswith("│")]
    assert len(rows) == 2  # nothing wraps onto a second line
    assert "gateway.call" in rows[1]
    assert "customer-7" in rows[1]
    assert "n=5" in rows[1]


def test_archive_then_verify_and_verify_archive(tmp_path: Path) -> None:
    segment = tmp_path / "segment.jsonl"
    code, output = veil(
        "audit", "archive", "--before", "2999-01-01T00:00Z", "--out", str(segment), "--json"
    )
    assert code == EXIT_OK
    report = json.loads(output)
    assert report["archived"] == 6
    assert veil("audit", "verify")[0] == EXIT_OK
    # The archive itself is in the record: which entries left, and the file's digest.
    code, output = veil("audit", "query", "--action", "audit.archive")
    [entry] = [json.loads(line) for line in output.splitlines()]
    assert entry["details"] == {"start": 0, "end": 6, "archived": 6, "sha256": report["sha256"]}
    code, output = veil("audit", "verify-archive", str(segment), "--json")
    assert code == EXIT_OK
    assert json.loads(output)["entries"] == 6
    code, output = veil("audit", "archive", "--out", str(tmp_path / "again.jsonl"))
    assert "Nothing to archive" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--before", "2026-01-01T00:00Z", "--older-than-years", "7"], "not both"),
        (["--older-than-years", "-1"], "older-than-years"),  # a cutoff in the future
    ],
)
def test_archive_refuses_a_cutoff_it_would_misread(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = veil("audit", "archive", "--out", str(tmp_path / "a.jsonl"), *args)
    assert code == EXIT_USAGE
    assert message in output
    assert not (tmp_path / "a.jsonl").exists()


def test_an_archive_file_is_never_replaced(tmp_path: Path) -> None:
    # Archiving again to the same name replaced the earlier segment, whose entries had
    # already left the database: years of the record gone.
    segment = tmp_path / "segment.jsonl"
    code, output = veil("audit", "archive", "--before", "2999-01-01T00:00Z", "--out", str(segment))
    assert code == EXIT_OK, output
    first = segment.read_bytes()
    ledger = open_ledger(load_settings())
    for index in range(3):
        ledger.append("dana", "vault.set", "ok", details={"n": index})
    code, output = veil("audit", "archive", "--before", "2999-01-01T00:00Z", "--out", str(segment))
    assert code == EXIT_USAGE
    assert "never replaced" in output
    assert segment.read_bytes() == first
    assert ledger.size() == 10  # 6, the first archive's own entry, 3
    code, output = veil(
        "audit",
        "archive",
        "--before",
        "2999-01-01T00:00Z",
        "--out",
        str(tmp_path / "next.jsonl"),
        "--json",
    )
    assert code == EXIT_OK, output
    assert json.loads(output)["archived"] == 4
    assert veil("audit", "verify")[0] == EXIT_OK


def test_access_then_erase_a_data_subject() -> None:
    ledger = open_ledger(load_settings())
    sealed = ledger.seal("customer-7", "+1 415 555 0133")
    ledger.append("svc", "support.call", "ok", subject="customer-7", details={"phone": sealed})
    ledger.close()

    code, output = veil("audit", "access", "customer-7")
    assert code == EXIT_OK
    entries = json.loads(output)
    assert [e["details"] for e in entries] == [{"n": 5}, {"phone": "+1 415 555 0133"}]

    code, output = veil("audit", "erase", "customer-7")
    assert code == EXIT_USAGE  # nothing happens without --yes
    assert "--yes" in output
    code, output = veil("audit", "erase", "customer-7", "--yes", "--json")
    assert code == EXIT_OK
    assert json.loads(output)["keys_destroyed"] == 1

    code, output = veil("audit", "access", "customer-7", "--format", "jsonl")
    lines = [json.loads(line) for line in output.splitlines()]
    assert lines[1]["details"] == {"phone": "[erased]"}
    assert [e["action"] for e in lines[2:]] == ["subject.access", "subject.erase"]
    code, output = veil("audit", "verify", "--json")
    assert (code, json.loads(output)["entries"]) == (EXIT_OK, 6 + 4)


def test_query_as_json_is_one_document_of_every_match() -> None:
    code, output = veil("audit", "query", "--format", "json")
    assert code == EXIT_OK
    assert [entry["seq"] for entry in json.loads(output)] == [0, 1, 2, 3, 4, 5]
    code, output = veil("audit", "query", "--actor", "nobody", "--format", "json")
    assert json.loads(output) == []


def test_consistency_with_a_checkpoint_proves_the_old_ledger_is_a_prefix(tmp_path: Path) -> None:
    saved = tmp_path / "checkpoint.json"
    assert veil("audit", "checkpoint", "--out", str(saved))[0] == EXIT_OK
    ledger = open_ledger(load_settings())
    ledger.append("carol", "vault.set", "ok")
    ledger.close()
    code, output = veil("audit", "consistency", "--checkpoint", str(saved))
    assert code == EXIT_OK, output
    proof = json.loads(output)
    assert (proof["old_size"], proof["tree_size"], proof["verified"]) == (6, 7, True)
    code, output = veil("audit", "consistency", "3")
    assert code == EXIT_OK
    assert json.loads(output)["old_size"] == 3


def test_a_checkpoint_older_than_an_archive_is_proved_with_the_segment_file(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "checkpoint.json"
    veil("audit", "checkpoint", "--out", str(saved))  # at 6 entries
    segment = tmp_path / "segment.jsonl"
    code, _ = veil("audit", "archive", "--before", "2999-01-01T00:00Z", "--out", str(segment))
    assert code == EXIT_OK
    ledger = open_ledger(load_settings())
    ledger.append("carol", "vault.set", "ok")
    ledger.close()
    code, output = veil("audit", "consistency", "3")  # needs archived entries 3..5
    assert code == EXIT_USAGE
    assert "--archive" in output
    code, output = veil("audit", "consistency", "3", "--archive", str(segment))
    assert code == EXIT_OK, output
    assert json.loads(output)["old_size"] == 3
    code, output = veil(
        "audit", "consistency", "--checkpoint", str(saved), "--archive", str(segment)
    )
    assert code == EXIT_OK, output
    assert json.loads(output)["verified"] is True


def test_consistency_exits_3_when_an_entry_before_the_checkpoint_was_rewritten(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "checkpoint.json"
    veil("audit", "checkpoint", "--out", str(saved))
    # Entry 1 rewritten with its leaf hash recomputed, so its own hash checks out.
    forged = b'{"action":"vault.set","actor":"mallory","details":{},"outcome":"ok","seq":1}'
    with engine_for(load_settings()).begin() as connection:
        connection.execute(
            text("UPDATE audit_entries SET entry = :e, leaf_hash = :h WHERE seq = 1"),
            {"e": forged, "h": merkle.leaf_hash(forged)},
        )
    ledger = open_ledger(load_settings())
    ledger.append("carol", "vault.set", "ok")  # a later head, signed over the true tree
    ledger.close()
    code, output = veil("audit", "consistency", "--checkpoint", str(saved))
    assert code == EXIT_INTEGRITY, output
