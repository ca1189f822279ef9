"""The ``veil`` command line: one module per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from veil import __version__
from veil.cli import (
    analytics_cmd,
    audit_cmd,
    code_cmd,
    config_cmd,
    db_cmd,
    detect_cmd,
    doctor_cmd,
    files_cmd,
    init_cmd,
    keys_cmd,
    policy_cmd,
    scan_cmd,
    serve_cmd,
    transform_cmd,
    vault_cmd,
    virtual_keys_cmd,
)
from veil.cli._app import app

__all__ = [
    "analytics_cmd",
    "app",
    "audit_cmd",
    "code_cmd",
    "config_cmd",
    "db_cmd",
    "detect_cmd",
    "doctor_cmd",
    "files_cmd",
    "init_cmd",
    "keys_cmd",
    "main",
    "policy_cmd",
    "scan_cmd",
    "serve_cmd",
    "transform_cmd",
    "vault_cmd",
    "virtual_keys_cmd",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"veil {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Veil keeps secrets and personal data out of AI prompts, logs and exports."""


def main() -> None:
    app()
