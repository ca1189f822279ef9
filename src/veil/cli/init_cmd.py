"""``veil init``: create the root key once, say where it went, migrate the database."""

from __future__ import annotations

import base64
from typing import Annotated

import typer
from rich.markup import escape

from veil._files import write_atomically
from veil.cli._app import app, out, print_json
from veil.config import check_private_file, env_file_path, load_settings
from veil.keys import RootKey, generate_root_key
from veil.store import open_engine


@app.command("init")
def init(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Set Veil up: create a root key (only if none is configured), write it to the .env
    file (mode 0600) and migrate the database. Run it once; it never replaces a key."""
    env_file = env_file_path()
    settings = load_settings(env_file=env_file)
    created = False
    if settings.master_key is None:
        key = generate_root_key()
        existing = b""
        if env_file.exists():
            check_private_file(env_file, ".env file")
            existing = env_file.read_bytes()
            if existing and not existing.endswith(b"\n"):
                existing += b"\n"
        write_atomically(env_file, existing + f"VEIL_MASTER_KEY={key}\n".encode(), mode=0o600)
        settings = load_settings(env_file=env_file)
        created = True
    assert settings.master_key is not None
    root = RootKey(base64.b64decode(settings.master_key.get_secret_value()))
    engine = open_engine(settings)
    engine.dispose()
    report = {
        "root_key_id": root.key_id,
        "created": created,
        "stored_in": str(env_file) if created else "already configured",
        "database": "migrated",
    }
    if as_json:
        print_json(report)
        return
    if created:
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
