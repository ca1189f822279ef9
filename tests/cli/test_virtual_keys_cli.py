"""``veil keys create/list/revoke``: what a person reads must be enough to act on."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import veil
from veil.errors import EXIT_OK

pytestmark = pytest.mark.usefixtures("master_key")


def test_list_piped_shows_whole_ids_that_revoke_takes() -> None:
    # Piped, rich fitted the table to 80 columns and cut ids to `vk_1be…`.
    models = "gpt-4o-mini,claude-3-5-sonnet-latest,text-embedding-3-small"
    code, output = veil(
        "keys", "create", "--name", "a-rather-long-application-name", "--models", models,
        "--rate", "60/min", "--tokens", "100000/day", "--json",
    )  # fmt: skip
    assert code == EXIT_OK, output
    key_id = f"vk_{json.loads(output)['key_id']}"
    code, listed = veil("keys", "list")
    assert code == EXIT_OK
    assert key_id in listed
    assert models in listed
    assert "…" not in listed
    assert veil("keys", "revoke", key_id)[0] == EXIT_OK
