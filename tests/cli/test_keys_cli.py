"""``veil keys rotate``: data keys re-wrapped, data untouched, crash-safe with a .env key."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest

from tests.cli.conftest import veil
from veil.errors import EXIT_OK, EXIT_USAGE

SECRET = "sk-proj-Q7mZ2vX9pL4tR8wK1nB6cY3hJ5dF0gS2aE7uI9oP4lM8kN3"


def master_key_in_env_file() -> str:
    match = re.search(r"^VEIL_MASTER_KEY=(\S+)$", Path(".env").read_text(), re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_rotation_with_the_key_in_env_file_keeps_everything_readable() -> None:
    assert veil("init")[0] == EXIT_OK
    old_key = master_key_in_env_file()
    veil("vault", "set", "openai", "--from-stdin", stdin=SECRET)
    veil("pseudonymize", "-", "--map", "conv.map", stdin="mail bob@example.com")
    code, output = veil("keys", "rotate", "--json")
    assert code == EXIT_OK, output
    report = json.loads(output)
    assert report["rewrapped"] >= 3  # vault, pseudonym map, ledger keys
    assert report["old_key_still_referenced"] == 0
    assert master_key_in_env_file() != old_key
    assert "VEIL_MASTER_KEY_NEXT" not in Path(".env").read_text()
    assert veil("vault", "get", "openai", "--reveal")[1].strip() == SECRET
    assert veil("restore", "-", "--map", "conv.map", stdin="<EMAIL_1>")[1] == "bob@example.com"
    code, output = veil("audit", "verify")
    assert code == EXIT_OK, output
    assert SECRET not in output


def test_an_interrupted_rotation_is_finished_by_running_it_again() -> None:
    veil("init")
    veil("vault", "set", "openai", "--from-stdin", stdin=SECRET)
    # The crash window: the new key was saved as NEXT, nothing else happened yet.
    new_key = base64.b64encode(os.urandom(32)).decode()
    env = Path(".env")
    env.write_text(env.read_text() + f"VEIL_MASTER_KEY_NEXT={new_key}\n")
    assert veil("keys", "rotate")[0] == EXIT_OK
    assert master_key_in_env_file() == new_key
    assert veil("vault", "get", "openai", "--reveal")[1].strip() == SECRET


def test_a_new_key_on_stdin_is_refused_while_a_rotation_is_pending() -> None:
    # The pending key was used and the one given on stdin silently ignored.
    assert veil("init")[0] == EXIT_OK
    env = Path(".env")
    pending = base64.b64encode(os.urandom(32)).decode()
    env.write_text(env.read_text() + f"VEIL_MASTER_KEY_NEXT={pending}\n")
    before = env.read_text()
    mine = base64.b64encode(os.urandom(32)).decode()
    code, output = veil("keys", "rotate", "--new-key-from-stdin", stdin=mine)
    assert code == EXIT_USAGE
    assert "interrupted rotation" in output
    assert env.read_text() == before
    code, output = veil(
        "keys", "rotate", "--reencrypt", "vault", "--new-key-from-stdin", stdin=mine
    )
    assert code == EXIT_USAGE
    assert "takes no new root key" in output


def test_a_key_from_the_environment_needs_the_new_key_on_stdin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    veil("vault", "set", "openai", "--from-stdin", stdin=SECRET)
    code, output = veil("keys", "rotate")
    assert code == EXIT_USAGE
    assert "--new-key-from-stdin" in output
    new_key = base64.b64encode(os.urandom(32)).decode()
    code, output = veil("keys", "rotate", "--new-key-from-stdin", stdin=new_key)
    assert code == EXIT_OK, output
    assert new_key not in output
    monkeypatch.setenv("VEIL_MASTER_KEY", new_key)
    assert veil("vault", "get", "openai", "--reveal")[1].strip() == SECRET


def test_reencrypt_the_vault_from_the_cli() -> None:
    veil("init")
    veil("vault", "set", "openai", "--from-stdin", stdin=SECRET)
    code, output = veil("keys", "rotate", "--reencrypt", "vault", "--json")
    assert code == EXIT_OK, output
    assert json.loads(output)["values"] == 1
    assert veil("vault", "get", "openai", "--reveal")[1].strip() == SECRET
    code, output = veil("keys", "rotate", "--reencrypt", "pseudonym-map")
    assert code == EXIT_USAGE
    assert "outside the database" in output
