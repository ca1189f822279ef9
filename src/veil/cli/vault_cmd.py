"""``veil vault``: provider API keys and other secrets, sealed in the database."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from veil.cli._app import VeilGroup, app, audit_event, out, print_json, settings_from_context
from veil.config import mask_secret
from veil.errors import InputError
from veil.keys import KeyStore, Vault, env_variable, root_key_from_settings
from veil.store import open_engine

vault_app = typer.Typer(
    cls=VeilGroup,
    help="Store provider API keys and other secrets, sealed under the root key.",
    no_args_is_help=True,
)
app.add_typer(vault_app, name="vault")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
FromStdin = Annotated[
    bool, typer.Option("--from-stdin", help="Read the value from standard input.")
]


def _vault(ctx: typer.Context) -> Vault:
    settings = settings_from_context(ctx)
    engine = open_engine(settings)
    return Vault(engine, KeyStore(engine, root_key_from_settings(settings)))


def _audit(ctx: typer.Context, action: str, name: str) -> None:
    """Every change to the vault is audited — the name, never the value."""
    audit_event(ctx, f"vault.{action}", f"vault:{name}")


def _read_value(from_stdin: bool, name: str) -> str:
    if from_stdin:
        value = sys.stdin.read().strip()
    else:
        value = typer.prompt(f"Value for {name}", hide_input=True).strip()
    if not value:
        raise InputError("No value given.", hint="Pipe the value in with --from-stdin.")
    return value


@vault_app.command("set")
def set_command(ctx: typer.Context, name: str, from_stdin: FromStdin = False) -> None:
    """Store NAME (replacing any value). The value comes from a hidden prompt or stdin,
    never from the command line, where it would land in shell history."""
    vault = _vault(ctx)
    vault.set(name, _read_value(from_stdin, name))
    _audit(ctx, "set", name)
    out.print(f"[green]✓[/] {escape(name)} stored (sealed with the vault key)")


@vault_app.command("get")
def get_command(
    ctx: typer.Context,
    name: str,
    reveal: Annotated[bool, typer.Option("--reveal", help="Print the value in full.")] = False,
) -> None:
    """Show NAME masked (sk-…a1f), or in full with --reveal."""
    vault = _vault(ctx)
    value = vault.get(name)
    if reveal:
        _audit(ctx, "reveal", name)
        sys.stdout.write(value + "\n")
    else:
        out.print(f"{escape(name)}: {escape(mask_secret(value))} (from {vault.source(name)})")


@vault_app.command("list")
def list_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List stored names with their dates; values are never listed."""
    entries = _vault(ctx).list()
    if as_json:
        print_json([entry.to_dict() for entry in entries])
        return
    from rich.table import Table  # loaded by the commands that print one

    table = Table(title=f"{len(entries)} secret(s)", title_justify="left")
    for heading in ("name", "created", "last rotated", "rotation pending", "overridden by"):
        table.add_column(heading)
    for entry in entries:
        table.add_row(
            escape(entry.name),
            entry.created_at.strftime("%Y-%m-%d"),
            entry.rotated_at.strftime("%Y-%m-%d"),
            "yes" if entry.rotation_pending else "",
            env_variable(entry.name) if os.environ.get(env_variable(entry.name)) else "",
        )
    out.print(table)


@vault_app.command("rm")
def rm_command(ctx: typer.Context, name: str) -> None:
    """Delete NAME from the vault."""
    if not _vault(ctx).remove(name):
        raise InputError(f"No secret named {name!r} in the vault.")
    _audit(ctx, "rm", name)
    out.print(f"[green]✓[/] {escape(name)} removed")


@vault_app.command("rotate")
def rotate_command(
    ctx: typer.Context,
    name: str,
    from_stdin: FromStdin = False,
    commit: Annotated[bool, typer.Option("--commit", help="Drop the previous value.")] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Put the previous value back.")
    ] = False,
) -> None:
    """Rotate NAME in two steps: store the new value (the old one is kept), roll out,
    then --commit, or --rollback if the new key does not work."""
    if commit and rollback:
        raise InputError("Use either --commit or --rollback.")
    vault = _vault(ctx)
    if commit:
        vault.commit_rotation(name)
        _audit(ctx, "rotate.commit", name)
        out.print(f"[green]✓[/] rotation of {escape(name)} committed; the old value is gone")
    elif rollback:
        vault.rollback_rotation(name)
        _audit(ctx, "rotate.rollback", name)
        out.print(f"[green]✓[/] {escape(name)} rolled back to its previous value")
    else:
        vault.rotate(name, _read_value(from_stdin, name))
        _audit(ctx, "rotate", name)
        out.print(
            f"[green]✓[/] new value of {escape(name)} stored; finish with "
            f"`veil vault rotate {escape(name)} --commit` (or --rollback)"
        )


@vault_app.command("status")
def status_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Where each secret comes from (environment or vault), masked."""
    vault = _vault(ctx)
    rows = []
    for entry in vault.list():
        value = vault.get(entry.name)
        rows.append(
            {"name": entry.name, "source": vault.source(entry.name), "value": mask_secret(value)}
        )
    if as_json:
        print_json(rows)
        return
    for row in rows:
        out.print(f"{escape(row['name'])}: {escape(row['value'])} ({row['source']})")
