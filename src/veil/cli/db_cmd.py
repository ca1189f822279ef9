"""``veil db``: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from veil.cli._app import VeilGroup, app, out, print_json, settings_from_context
from veil.store import engine_for, migration_status, safe_url, upgrade

db_app = typer.Typer(cls=VeilGroup, help="Manage Veil's database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@db_app.command("upgrade")
def upgrade_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Apply every pending migration to the configured database (safe to repeat)."""
    settings = settings_from_context(ctx)
    engine = engine_for(settings)
    try:
        before = migration_status(engine)
        after = upgrade(engine)
    finally:
        engine.dispose()
    url = safe_url(engine.url)
    if as_json:
        print_json({"database": url, "from": before.current, "to": after.current})
        return
    if before.current == after.current:
        out.print(f"[green]✓[/] {url} is already at revision {after.current}.")
    else:
        out.print(
            f"[green]✓[/] {url} upgraded from {before.current or 'empty'} to {after.current}."
        )


@db_app.command("status")
def status_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the database's schema revision and whether it is up to date."""
    settings = settings_from_context(ctx)
    engine = engine_for(settings)
    try:
        status = migration_status(engine)
    finally:
        engine.dispose()
    url = safe_url(engine.url)
    if as_json:
        print_json(
            {
                "database": url,
                "current": status.current,
                "head": status.head,
                "up_to_date": status.up_to_date,
            }
        )
        return
    mark = "[green]✓[/]" if status.up_to_date else "[yellow]![/]"
    out.print(f"{mark} {url}: revision {status.current or 'none'} (newest {status.head})")
    if not status.up_to_date:
        raise typer.Exit(1)
