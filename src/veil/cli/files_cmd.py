"""``veil encrypt`` / ``veil decrypt`` (age format) and ``veil keys recipient``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from veil.cli._app import app, err, out, settings_from_context
from veil.cli.keys_cmd import keys_app
from veil.errors import InputError
from veil.keys import KeyStore, Vault, root_key_from_settings
from veil.keys._files import (
    STDOUT,
    decrypt_file,
    decrypt_sealed,
    decrypt_with_passphrase,
    encrypt_file,
    encrypt_sealed,
    encrypt_with_passphrase,
    is_passphrase_file,
    is_sealed_file,
    recipient,
)
from veil.store import open_engine


def _keys(ctx: typer.Context) -> KeyStore:
    settings = settings_from_context(ctx)
    return KeyStore(open_engine(settings), root_key_from_settings(settings))


def _vault(ctx: typer.Context) -> Vault:
    keys = _keys(ctx)
    return Vault(keys.engine, keys)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"{path} is not a file.")
    return path


ForceOption = Annotated[bool, typer.Option("--force", help="Replace the output file if it exists.")]


def _target(target: Path, source: Path, force: bool) -> Path:
    """Where the output goes: never over the input, over another file only with --force."""
    if target == STDOUT:
        return target
    if target.resolve() == source.resolve():
        raise InputError(
            f"The output {target} is the input file; nothing was written.",
            hint="Pass --out with another file name.",
        )
    if target.exists() and not force:
        raise InputError(
            f"{target} already exists; nothing was written.",
            hint="Pass --out FILE for another name, or --force to replace it.",
        )
    return target


def _done(verb: str, target: Path) -> None:
    # On stderr when the output itself went to stdout (it would corrupt the stream).
    shown = "standard output" if target == STDOUT else str(target)
    (err if target == STDOUT else out).print(f"[green]✓[/] {verb} {escape(shown)}")


@keys_app.command("recipient")
def recipient_command(ctx: typer.Context) -> None:
    """Print this installation's age recipient (public key) to give to others."""
    print(recipient(_vault(ctx)))


@app.command("encrypt")
def encrypt(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="File to encrypt.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Default: FILE.age; - for standard output.")
    ] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="age recipient (age1…); repeatable.")
    ] = None,
    to_self: Annotated[
        bool, typer.Option("--self", help="Also encrypt to this installation.")
    ] = False,
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="Encrypt with a passphrase (prompted).")
    ] = False,
    armor: Annotated[bool, typer.Option("--armor", help="ASCII-armored output.")] = False,
    sealed: Annotated[
        bool,
        typer.Option(
            "--sealed", help="Veil's streaming format for data at rest (fast, this install)."
        ),
    ] = False,
    force: ForceOption = False,
) -> None:
    """Encrypt a file in the age format (readable by the `age` tool): to recipients
    (streaming, constant memory) or with a passphrase. Written to a temporary file and
    renamed only on success."""
    source = _existing(source)
    if sealed:
        if to or to_self or passphrase or armor:
            raise InputError("--sealed takes no recipients, passphrase or armor.")
        target = _target(out_file or source.with_name(source.name + ".sealed"), source, force)
        encrypt_sealed(source, target, _keys(ctx))
        _done("sealed to", target)
        return
    target = _target(out_file or source.with_name(source.name + ".age"), source, force)
    if passphrase:
        if to or to_self:
            raise InputError("Use either --passphrase or recipients, not both.")
        secret = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=True, err=True)
        encrypt_with_passphrase(source, target, secret, armored=armor)
    else:
        recipients = list(to or [])
        if to_self:
            recipients.append(recipient(_vault(ctx)))
        encrypt_file(source, target, recipients, armored=armor)
    _done("encrypted to", target)


@app.command("decrypt")
def decrypt(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Argument(help="Encrypted file: age or sealed (the format is detected).")
    ],
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Default: FILE without .age / .sealed; - for standard output."),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Decrypt a file made by `veil encrypt`: an age file with this installation's
    identity, or with a passphrase when it was encrypted with one (prompted); a sealed
    file with this installation's key store. Nothing is written when it fails."""
    source = _existing(source)
    default = (
        source.with_suffix("")
        if source.suffix in (".age", ".sealed")
        else source.with_name(source.name + ".decrypted")
    )
    target = _target(out_file or default, source, force)
    if is_sealed_file(source):
        decrypt_sealed(source, target, _keys(ctx))
    elif is_passphrase_file(source):
        # On stderr: with --out - the plaintext is what goes to stdout.
        secret = typer.prompt("Passphrase", hide_input=True, err=True)
        decrypt_with_passphrase(source, target, secret)
    else:
        decrypt_file(source, target, _vault(ctx))
    _done("decrypted to", target)
