"""``veil vault`` as an operator uses it: values never on the command line or in output."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import veil
from veil.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE

KEY_VALUE = "sk-proj-Q7mZ2vX9pL4tR8wK1nB6cY3hJ5dF0gS2aE7uI9oP4lM8kN3"


pytestmark = pytest.mark.usefixtures("master_key")


def test_set_from_stdin_then_get_masked_and_revealed() -> None:
    code, output = veil("vault", "set", "openai", "--from-stdin", stdin=KEY_VALUE)
    assert code == EXIT_OK
    assert KEY_VALUE not in output
    code, output = veil("vault", "get", "openai")
    assert code == EXIT_OK
    assert "sk-…kN3" in output
    assert KEY_VALUE not in output
    code, output = veil("vault", "get", "openai", "--reveal")
    assert output.strip() == KEY_VALUE


def test_set_reads_a_hidden_prompt() -> None:
    code, output = veil("vault", "set", "anthropic", stdin=KEY_VALUE + "\n")
    assert code == EXIT_OK
    assert KEY_VALUE not in output
    assert veil("vault", "get", "anthropic", "--reveal")[1].strip() == KEY_VALUE


def test_list_shows_names_and_dates_never_values() -> None:
    veil("vault", "set", "openai", "--from-stdin", stdin=KEY_VALUE)
    code, output = veil("vault", "list", "--json")
    assert code == EXIT_OK
    (entry,) = json.loads(output)
    assert entry["name"] == "openai"
    assert entry["rotation_pending"] is False
    assert KEY_VALUE not in output


def test_rotation_commit_and_rollback() -> None:
    veil("vault", "set", "openai", "--from-stdin", stdin="sk-old-value-0123456789")
    assert (
        veil("vault", "rotate", "openai", "--from-stdin", stdin="sk-new-value-0123456789")[0] == 0
    )
    assert veil("vault", "get", "openai", "--reveal")[1].strip() == "sk-new-value-0123456789"
    assert veil("vault", "rotate", "openai", "--rollback")[0] == EXIT_OK
    assert veil("vault", "get", "openai", "--reveal")[1].strip() == "sk-old-value-0123456789"
    code, output = veil("vault", "rotate", "openai", "--commit")
    assert code == EXIT_USAGE
    assert "No rotation" in output


def test_every_change_is_audited_without_the_value() -> None:
    veil("vault", "set", "openai", "--from-stdin", stdin=KEY_VALUE)
    veil("vault", "get", "openai", "--reveal")
    veil("vault", "rm", "openai")
    code, output = veil("audit", "query", "--format", "json")
    assert code == EXIT_OK
    assert [entry["action"] for entry in json.loads(output)] == [
        "vault.set",
        "vault.reveal",
        "vault.rm",
    ]
    assert KEY_VALUE not in output


def test_environment_overrides_and_status_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    veil("vault", "set", "openai", "--from-stdin", stdin=KEY_VALUE)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-override-0123456789")
    code, output = veil("vault", "status", "--json")
    assert code == EXIT_OK
    assert json.loads(output) == [{"name": "openai", "source": "environment", "value": "sk-…789"}]


def test_without_a_root_key_the_vault_says_what_to_configure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VEIL_MASTER_KEY")
    code, output = veil("vault", "list")
    assert code == EXIT_ERROR
    assert "VEIL_MASTER_KEY" in output


def test_missing_secret_and_bad_name() -> None:
    code, output = veil("vault", "get", "nothing-here")
    assert code == EXIT_USAGE
    assert "veil vault set nothing-here" in output
    code, output = veil("vault", "set", "Bad Name", "--from-stdin", stdin="x")
    assert code == EXIT_USAGE
