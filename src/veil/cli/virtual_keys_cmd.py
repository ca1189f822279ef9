"""``veil keys create|list|revoke``: the gateway's virtual keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from veil.cli._app import audit_event, out, print_json, settings_from_context
from veil.cli.keys_cmd import keys_app
from veil.keys import KeyStore, root_key_from_settings
from veil.store import open_engine

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _virtual_keys(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from veil.gateway import VirtualKeys

    settings = settings_from_context(ctx)
    engine = open_engine(settings)
    return settings, VirtualKeys(engine, KeyStore(engine, root_key_from_settings(settings)))


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="What the key is for (team, app).")],
    models: Annotated[
        str | None,
        typer.Option("--models", help="Allowed models, comma-separated globs (default: all)."),
    ] = None,
    rate: Annotated[
        str | None, typer.Option("--rate", help="Request limit, e.g. 60/min or 5/s.")
    ] = None,
    tokens: Annotated[
        str | None, typer.Option("--tokens", help="Token budget, e.g. 100000/day.")
    ] = None,
    policy: Annotated[
        str,
        typer.Option("--policy", help="Policy name: default, or $VEIL_HOME/policies/NAME.yaml."),
    ] = "default",
    as_json: JsonOption = False,
) -> None:
    """Create a virtual key for the gateway. The key is printed once; only a keyed hash
    of it is stored."""
    from veil.detect import configured_kinds
    from veil.transform import PolicyStore

    settings, store = _virtual_keys(ctx)
    # Fail now, not on the key's first request: the policy must load and name only kinds
    # the recognizers report.
    PolicyStore(settings.home).get(policy).policy.check_kinds(configured_kinds(settings))
    key, token = store.create(
        name,
        models=models.split(",") if models else None,
        rate=rate,
        tokens=tokens,
        policy=policy,
        home=settings.home,
    )
    details = {
        k: v for k, v in key.to_dict().items() if k in ("models", "rate", "tokens", "policy")
    }
    audit_event(ctx, "keys.create", f"vk_{key.key_id}", details)
    if as_json:
        print_json({**key.to_dict(), "key": token})
        return
    out.print(f"[green]✓[/] created virtual key vk_{key.key_id} ({escape(name)}).")
    out.print("[yellow]The key (shown once, store it now):[/]")
    out.print(f"  {token}")


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List the gateway's virtual keys (ids, limits, policies; never the keys)."""
    _, store = _virtual_keys(ctx)
    keys = store.list(include_revoked=revoked)
    if as_json:
        print_json([key.to_dict() for key in keys])
        return
    if not keys:
        out.print("No virtual keys. Create one with `veil keys create --name NAME`.")
        return
    from rich import box
    from rich.table import Table  # loaded by the commands that print one

    table = Table(box=box.SIMPLE_HEAD)
    # The id is what `veil keys revoke` takes: never cut; on a narrow terminal the free
    # text columns fold onto more lines instead.
    for heading in ("id", "name", "models", "rate", "tokens", "policy", "created", "revoked"):
        if heading == "id":
            table.add_column(heading, no_wrap=True)
        else:
            table.add_column(heading, overflow="fold", min_width=min(len(heading), 7))
    for key in keys:
        table.add_row(
            f"vk_{key.key_id}",
            escape(key.name),
            escape(",".join(key.models) or "all"),
            key.rate.text if key.rate else "-",
            key.tokens.text if key.tokens else "-",
            escape(key.policy),
            key.created_at.strftime("%Y-%m-%d"),
            key.revoked_at.strftime("%Y-%m-%d") if key.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Key id (vk_…) or name.")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a virtual key; every gateway replica refuses it within two seconds."""
    _, store = _virtual_keys(ctx)
    revoked = store.revoke(key)
    audit_event(ctx, "keys.revoke", f"vk_{revoked.key_id}")
    if as_json:
        print_json({"revoked": f"vk_{revoked.key_id}", "name": revoked.name})
        return
    out.print(f"[green]✓[/] revoked vk_{revoked.key_id} ({escape(revoked.name)}).")
