"""``veil init``: create the root key once, say where it went, migrate the database."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from veil._files import write_atomically
from veil.cli._app import app, out, print_json
from veil.config import (
    Settings,
    check_private_file,
    ensure_home,
    env_file_path,
    load_settings,
)
from veil.errors import InputError
from veil.keys import (
    RootKey,
    create_keyring_root_key,
    create_kms_root_key,
    create_passphrase_root_key,
    generate_root_key,
    keyring_file,
    kms_file,
    passphrase_file,
    root_key_from_settings,
)
from veil.store import open_engine


def root_key_configured(settings: Settings) -> bool:
    """Whether any root-key source is set up (so nothing may be created)."""
    return (
        settings.master_key is not None
        or passphrase_file(settings).exists()
        or kms_file(settings).exists()
        or keyring_file(settings).exists()
    )


# `VEIL_MASTER_KEY=` with nothing (or an empty quoted string) after it.
_EMPTY_KEY_LINE = re.compile(
    rb"""^((?:export[ \t]+)?)VEIL_MASTER_KEY[ \t]*=[ \t]*(?:""|'')?[ \t]*$""", re.M
)


def create_env_file_root_key(env_file: Path) -> tuple[Settings, RootKey]:
    """A new root key in the ``.env`` file (mode 0600, written atomically): in place of an
    empty ``VEIL_MASTER_KEY=`` line (a copied template's), else appended."""
    key = generate_root_key()
    existing = b""
    if env_file.exists():
        check_private_file(env_file, ".env file")
        existing = env_file.read_bytes()
    filled, count = _EMPTY_KEY_LINE.subn(
        lambda match: match.group(1) + f"VEIL_MASTER_KEY={key}".encode(), existing, count=1
    )
    if count == 0:
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"
        filled = existing + f"VEIL_MASTER_KEY={key}\n".encode()
    write_atomically(env_file, filled, mode=0o600)
    settings = load_settings(env_file=env_file)
    return settings, root_key_from_settings(settings)


@app.command("init")
def init(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    passphrase: Annotated[
        bool,
        typer.Option(
            "--passphrase",
            help="Protect the root key with a passphrase (argon2id) instead of a .env file.",
        ),
    ] = False,
    from_stdin: Annotated[
        bool, typer.Option("--from-stdin", help="Read the passphrase from stdin.")
    ] = False,
    kms: Annotated[
        bool,
        typer.Option("--kms", help="Keep the root key wrapped by the KMS in VEIL_KMS_URL."),
    ] = False,
    use_keyring: Annotated[
        bool, typer.Option("--keyring", help="Keep the root key in the OS keyring.")
    ] = False,
) -> None:
    """Set Veil up: create a root key (only if none is configured), write it to the .env
    file (mode 0600) — or protect it with a passphrase — and migrate the database. Run it
    once; it never replaces a key."""
    places = [
        flag
        for flag, chosen in (
            ("--passphrase", passphrase),
            ("--kms", kms),
            ("--keyring", use_keyring),
        )
        if chosen
    ]
    if len(places) > 1:  # one was used and the others ignored
        raise InputError(
            f"Choose one place for the root key, not {' and '.join(places)}.",
            hint="A .env file (no option), --passphrase, --kms or --keyring.",
        )
    if from_stdin and not passphrase:
        raise InputError("--from-stdin reads the passphrase: use it with --passphrase.")
    env_file = env_file_path()
    settings = load_settings(env_file=env_file)
    created = False
    stored_in = "already configured"
    configured = root_key_configured(settings)
    if not configured and use_keyring:
        ensure_home(settings)
        root = create_keyring_root_key(settings)
        created, stored_in = True, "the OS keyring"
    elif not configured and kms:
        ensure_home(settings)
        root = create_kms_root_key(settings)
        created, stored_in = True, f"{kms_file(settings)} (wrapped by {settings.kms_url})"
    elif not configured and passphrase:
        ensure_home(settings)
        secret = (
            sys.stdin.read().strip()
            if from_stdin
            else typer.prompt("Passphrase", hide_input=True, confirmation_prompt=True)
        )
        root = create_passphrase_root_key(settings, secret)
        created, stored_in = True, str(passphrase_file(settings))
    elif not configured:
        settings, root = create_env_file_root_key(env_file)
        created, stored_in = True, str(env_file)
    else:
        root = root_key_from_settings(settings)
    engine = open_engine(settings)
    engine.dispose()
    report = {
        "root_key_id": root.key_id,
        "created": created,
        "stored_in": stored_in,
        "database": "migrated",
    }
    if as_json:
        print_json(report)
        return
    if created and use_keyring:
        out.print(f"[green]✓[/] created root key {root.key_id} in the OS keyring.")
    elif created and kms:
        out.print(
            f"[green]✓[/] created root key {root.key_id}, stored only wrapped by the KMS in "
            f"{escape(stored_in)}."
        )
    elif created and passphrase:
        out.print(
            f"[green]✓[/] created root key {root.key_id}, protected by your passphrase "
            f"(argon2id; salt and parameters in {escape(stored_in)})."
        )
        out.print(
            "[yellow]Set VEIL_PASSPHRASE for every process that runs Veil. Without the "
            "passphrase everything Veil encrypted is lost.[/]"
        )
    elif created:
        out.print(
            f"[green]✓[/] created root key {root.key_id} and wrote it to "
            f"{escape(str(env_file))} (mode 0600)."
        )
        out.print(
            "[yellow]Back this file up somewhere safe:[/] without the root key, everything "
            "Veil encrypted (vault, pseudonym maps) is lost, and the audit ledger's "
            "signatures cannot be checked. Keep the file out of git (`veil doctor` checks)."
        )
    else:
        out.print(f"[green]✓[/] root key {root.key_id} is already configured; nothing created.")
    out.print("[green]✓[/] database migrated.")
