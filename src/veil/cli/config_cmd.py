"""``veil config``: what Veil is configured with, secrets masked."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape

from veil.cli._app import VeilGroup, app, out, print_json, settings_from_context
from veil.config import env_file_path, settings_status

config_app = typer.Typer(cls=VeilGroup, help="Inspect Veil's configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@config_app.command("status")
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print every setting, where it came from, and whether it is configured.

    Secret values (provider keys, the master key) are masked: only a prefix and the
    last characters are shown, enough to tell which key is in use.
    """
    settings = settings_from_context(ctx)
    rows = settings_status(settings)
    env_file = env_file_path()
    if as_json:
        print_json(
            {
                "env_file": str(env_file) if env_file.is_file() else None,
                "settings": [asdict(row) for row in rows],
            }
        )
        return
    from rich.table import Table  # loaded by the commands that print one

    table = Table(title="Veil configuration", title_justify="left")
    table.add_column("variable", style="bold", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_column("source", style="dim")
    table.add_column("what it is", style="dim")
    for row in rows:
        style = "green" if row.configured else "dim"
        table.add_row(
            row.variable, f"[{style}]{escape(row.value)}[/]", row.source, escape(row.description)
        )
    out.print(table)
    where = str(env_file) if env_file.is_file() else f"none ({env_file} does not exist)"
    out.print(f".env file: {escape(where)}")
