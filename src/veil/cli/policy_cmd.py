"""``veil policy``: check, install, list, show and remove the named policies that the
gateway's virtual keys use. Installing and removing are audited (the file's SHA-256)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from veil.cli._app import VeilGroup, app, audit_event, out, print_json, settings_from_context
from veil.errors import InputError

if TYPE_CHECKING:
    from veil.transform import Policy, PolicyStore

policy_app = typer.Typer(
    cls=VeilGroup,
    help="Named policies for the gateway's virtual keys: check, install, list, show, "
    "remove. Installing and removing are recorded in the audit ledger.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
FileArgument = Annotated[Path, typer.Argument(help="Policy YAML file, or - for stdin.")]


def _store(ctx: typer.Context) -> PolicyStore:
    # The policy code loads the detection engine: only in the commands that need it.
    from veil.transform import PolicyStore

    return PolicyStore(settings_from_context(ctx).home)


def _read(file: Path) -> tuple[str, str]:
    """The text of FILE (or stdin) and the name to show in errors."""
    if str(file) == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return file.read_text(encoding="utf-8"), str(file)
    except OSError as exc:
        raise InputError(f"Cannot read the policy {file}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise InputError(f"The policy {file} is not UTF-8 text.") from None


def _parse(ctx: typer.Context, text: str, origin: str) -> Policy:
    """The policy in ``text``, refused when a kind rule names a kind that neither the
    built-in recognizers nor VEIL_RECOGNIZERS report (a misspelt ``EMIAL`` applies to
    nothing, silently)."""
    from veil.detect import configured_kinds
    from veil.transform import parse_policy

    policy = parse_policy(text, origin=origin)
    policy.check_kinds(configured_kinds(settings_from_context(ctx)))
    return policy


def _active_keys_using(ctx: typer.Context, name: str) -> list[str]:
    from veil.gateway import VirtualKeys
    from veil.keys import KeyStore, root_key_from_settings
    from veil.store import open_engine

    settings = settings_from_context(ctx)
    engine = open_engine(settings)
    keys = VirtualKeys(engine, KeyStore(engine, root_key_from_settings(settings)))
    return [f"vk_{key.key_id}" for key in keys.list() if key.policy == name]


@policy_app.command("check")
def check(ctx: typer.Context, file: FileArgument, as_json: JsonOption = False) -> None:
    """Validate a policy file without installing it (exit 2 with the line at fault)."""
    text, origin = _read(file)
    policy = _parse(ctx, text, origin)
    if as_json:
        print_json({"valid": True, "name": policy.name})
        return
    out.print(f"[green]✓[/] {escape(origin)} is a valid policy")


@policy_app.command("install")
def install(
    ctx: typer.Context,
    file: FileArgument,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name to install it as (default: the file name)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate FILE and install it as $VEIL_HOME/policies/NAME.yaml (atomically,
    replacing any policy of that name). Running gateways apply it within a second;
    `veil keys create --policy NAME` gives it to a key."""
    text, origin = _read(file)
    if name is None:
        if origin == "<stdin>":
            raise InputError("A policy read from stdin needs --name.")
        name = file.stem
    _parse(ctx, text, origin)
    stored, previous = _store(ctx).install(name, text, origin=origin)
    details: dict[str, Any] = {"sha256": stored.sha256}
    if previous is not None:
        details["previous_sha256"] = previous
    audit_event(ctx, "policy.install", f"policy:{name}", details)
    if as_json:
        print_json({"name": name, "path": str(stored.path), **details})
        return
    verb = "replaced" if previous is not None else "installed"
    out.print(f"[green]✓[/] {verb} policy {escape(name)} ({escape(str(stored.path))})")


@policy_app.command("list")
def list_policies(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The policies keys can name: `default` (shipped) and the installed ones, with
    their SHA-256 (what the audit ledger records) or the reason they cannot load."""
    from veil.detect import configured_kinds

    store = _store(ctx)
    kinds = configured_kinds(settings_from_context(ctx))
    rows: list[dict[str, Any]] = []
    for name in store.names():
        try:
            stored = store.get(name)
            stored.policy.check_kinds(kinds)
        except InputError as exc:
            rows.append({"name": name, "valid": False, "error": exc.message})
            continue
        path = str(stored.path) if stored.path else "(shipped with Veil)"
        rows.append({"name": name, "valid": True, "sha256": stored.sha256, "path": path})
    if as_json:
        print_json(rows)
        return
    from rich.table import Table  # loaded by the commands that print one

    table = Table("name", "sha256", "file")
    for row in rows:
        digest = row["sha256"][:16] + "…" if row["valid"] else "[red]invalid[/]"
        table.add_row(escape(row["name"]), digest, escape(row.get("path") or row["error"]))
    out.print(table)


@policy_app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """Print a policy's YAML as stored, valid or not (`default`: the shipped policy)."""
    text = _store(ctx).text(name)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@policy_app.command("remove")
def remove(
    ctx: typer.Context,
    name: str,
    as_json: JsonOption = False,
) -> None:
    """Delete an installed policy. Refused while an active virtual key uses it (revoke
    the key or create it anew with another --policy first)."""
    users = _active_keys_using(ctx, name)
    if users:
        raise InputError(
            f"Policy {name!r} is used by {len(users)} active virtual key(s): {', '.join(users)}.",
            hint="Revoke those keys (veil keys revoke ID) before removing the policy.",
        )
    digest = _store(ctx).remove(name)
    audit_event(ctx, "policy.remove", f"policy:{name}", {"sha256": digest})
    if as_json:
        print_json({"name": name, "removed": True, "sha256": digest})
        return
    out.print(f"[green]✓[/] removed policy {escape(name)}")
