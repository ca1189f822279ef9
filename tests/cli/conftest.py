"""What the CLI tests share: running a command in process, and a fresh root key."""

from __future__ import annotations

import base64
import os

import pytest
from typer.testing import CliRunner

from veil.cli import app

runner = CliRunner()


def veil(*args: str, stdin: str | None = None) -> tuple[int, str]:
    """Run ``veil ARGS`` in this process; its exit code and output."""
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A new root key in VEIL_MASTER_KEY for this test."""
    key = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("VEIL_MASTER_KEY", key)
    return key
