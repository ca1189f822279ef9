"""``veil keys``: rotate the root key (data keys are re-wrapped, data is untouched)."""

from __future__ import annotations

import base64
import binascii
import getpass
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from veil._files import write_atomically
from veil.cli._app import VeilGroup, app, out, print_json, settings_from_context
from veil.config import Settings, check_private_file, env_file_path, settings_status
from veil.errors import ConfigError, InputError, KeyMaterialError
from veil.keys import KeyStore, RootKey, Vault, generate_root_key, root_key_from_settings
from veil.store import open_engine

if TYPE_CHECKING:
    pass

keys_app = typer.Typer(
    cls=VeilGroup, help="Manage the root key and the gateway's virtual keys.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

_NEXT = "VEIL_MASTER_KEY_NEXT"


def _set_line(text: str, name: str, value: str | None) -> str:
    """``text`` (a .env file) with ``name`` set to ``value`` (or removed when None)."""
    lines = [line for line in text.splitlines() if not re.match(rf"\s*{name}\s*=", line)]
    if value is not None:
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def _read_env(path: Path) -> str:
    if not path.exists():
        return ""
    check_private_file(path, ".env file")
    return path.read_text(encoding="utf-8")


def _parse_key(text: str) -> RootKey:
    try:
        return RootKey(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError):
        raise KeyMaterialError("The new root key is not base64 of 32 bytes.") from None


def _reencrypt(settings: Settings, purpose: str, as_json: bool) -> None:
    from veil.audit import Ledger
    from veil.transform import shared_detector

    if purpose != "vault":
        raise InputError(
            f"Only the vault can be re-encrypted here, not {purpose!r}.",
            hint="Pseudonym maps and sealed files live outside the database (re-encrypt them "
            "by decrypting and encrypting again); the ledger's keys must not change.",
        )
    store = KeyStore(open_engine(settings), root_key_from_settings(settings))
    old_id, new_id, count = Vault(store.engine, store).reencrypt()
    ledger = Ledger(store.engine, store, shared_detector(settings))
    ledger.append(
        getpass.getuser(),
        "keys.reencrypt",
        "ok",
        details={"purpose": purpose, "old": old_id, "new": new_id, "values": count},
    )
    ledger.close()
    if as_json:
        print_json(
            {"purpose": purpose, "old_key_id": old_id, "new_key_id": new_id, "values": count}
        )
    else:
        out.print(
            f"[green]✓[/] {count} vault value(s) moved from {old_id} to {new_id}; "
            f"{old_id} is destroyed."
        )


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    new_key_from_stdin: Annotated[
        bool,
        typer.Option(
            "--new-key-from-stdin",
            help="Read the new root key (base64 of 32 bytes) from stdin instead of generating one.",
        ),
    ] = False,
    reencrypt: Annotated[
        str | None,
        typer.Option(
            "--reencrypt",
            help="Instead: move PURPOSE's data to a fresh data key (supported: vault).",
            metavar="PURPOSE",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-wrap every data key under a new root key; no data is re-encrypted.

    When the root key lives in the .env file, the new key is first saved there as
    VEIL_MASTER_KEY_NEXT, then the data keys are re-wrapped in one transaction, then the
    .env file is switched over — so a crash at any point is finished by running the
    command again. When the key comes from the environment, pass the new key with
    --new-key-from-stdin and update the environment afterwards.
    """
    from veil.audit import Ledger
    from veil.transform import shared_detector

    settings = settings_from_context(ctx)
    if reencrypt is not None:
        if new_key_from_stdin:
            raise InputError(
                "--reencrypt moves data to a fresh data key and takes no new root key.",
                hint="Run them one at a time: veil keys rotate --new-key-from-stdin, then "
                "--reencrypt PURPOSE.",
            )
        _reencrypt(settings, reencrypt, as_json)
        return
    env_file = env_file_path()
    rows = {row.variable: row for row in settings_status(settings, env_file=env_file)}
    in_env_file = rows["VEIL_MASTER_KEY"].source == ".env"
    text = _read_env(env_file) if in_env_file else ""
    pending = re.search(rf"^\s*{_NEXT}\s*=\s*(\S+)", text, re.MULTILINE)
    if pending is not None:
        if new_key_from_stdin:
            # The key on stdin would be ignored for the one the interrupted run chose.
            raise InputError(
                f"An interrupted rotation to the key in {_NEXT} ({env_file}) is pending; "
                "nothing was changed.",
                hint="Finish it first with `veil keys rotate` (no option), then rotate "
                "again to your key.",
            )
        new_root = _parse_key(pending.group(1))  # finish an interrupted rotation
    elif new_key_from_stdin:
        new_root = _parse_key(sys.stdin.read())
    elif in_env_file:
        new_root = _parse_key(generate_root_key())
    else:
        raise ConfigError(
            "The root key comes from the process environment, so Veil cannot store a new one.",
            hint="Generate a key in your secret manager and pass it with --new-key-from-stdin.",
        )
    old_root = root_key_from_settings(settings)
    if in_env_file and pending is None:
        encoded = base64.b64encode(new_root.material).decode()
        write_atomically(env_file, _set_line(text, _NEXT, encoded).encode(), mode=0o600)
    store = KeyStore(open_engine(settings), old_root)
    rewrapped = store.rotate_root(new_root)
    if in_env_file:
        text = _read_env(env_file)
        encoded = base64.b64encode(new_root.material).decode()
        text = _set_line(_set_line(text, _NEXT, None), "VEIL_MASTER_KEY", encoded)
        write_atomically(env_file, text.encode(), mode=0o600)
    remaining = store.references(old_root.key_id)
    ledger = Ledger(store.engine, KeyStore(store.engine, new_root), shared_detector(settings))
    ledger.append(
        getpass.getuser(),
        "keys.rotate",
        "ok",
        details={"old": old_root.key_id, "new": new_root.key_id, "rewrapped": rewrapped},
    )
    ledger.close()
    report = {
        "old_root_key_id": old_root.key_id,
        "new_root_key_id": new_root.key_id,
        "rewrapped": rewrapped,
        "old_key_still_referenced": remaining,
        "stored_in": str(env_file) if in_env_file else "update VEIL_MASTER_KEY yourself",
    }
    if as_json:
        print_json(report)
        return
    out.print(
        f"[green]✓[/] {rewrapped} data key(s) re-wrapped from {old_root.key_id} to "
        f"{new_root.key_id}."
    )
    if in_env_file:
        out.print(f"[green]✓[/] the new root key is in {env_file}; back it up now.")
    else:
        out.print("[yellow]Set VEIL_MASTER_KEY to the new key everywhere Veil runs.[/]")
    if remaining == 0:
        out.print(f"Nothing refers to {old_root.key_id} any more: it can be destroyed.")
