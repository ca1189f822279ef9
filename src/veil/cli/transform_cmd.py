"""``veil redact``, ``veil pseudonymize`` and ``veil restore``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from veil._files import exclusive, write_atomically
from veil.cli._app import app, audit_map_event, print_json, settings_from_context
from veil.cli.detect_cmd import (
    FileArgument,
    RecognizersOption,
    build_detector,
    read_input,
    write_output,
)
from veil.config import check_private_file
from veil.errors import InputError
from veil.keys import KeyStore, root_key_from_settings
from veil.store import open_engine

if TYPE_CHECKING:
    from veil.transform import Policy, Pseudonymizer

PolicyOption = Annotated[
    Path | None, typer.Option("--policy", help="Policy YAML (default: the built-in policy).")
]
MapOption = Annotated[
    Path,
    typer.Option(
        "--map", help="Encrypted pseudonym map file (sealed with the root key, mode 0600)."
    ),
]


def _policy(path: Path | None) -> Policy:
    from veil.transform import default_policy, load_policy

    return load_policy(path) if path is not None else default_policy()


def _emit(text: str) -> None:
    write_output(text)


def _keys(ctx: typer.Context) -> KeyStore:
    settings = settings_from_context(ctx)
    root = root_key_from_settings(settings)
    return KeyStore(open_engine(settings), root)


def _load_map(path: Path, keys: KeyStore, style: str = "token") -> Pseudonymizer:
    from veil.transform import Pseudonymizer

    if not path.exists():
        return Pseudonymizer(style=style)
    check_private_file(path, "pseudonym map")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read the pseudonym map {path}: {exc.strerror}.") from None
    return Pseudonymizer.from_sealed(keys, blob)


def _save_map(path: Path, mapping: Pseudonymizer, keys: KeyStore) -> None:
    write_atomically(path, mapping.to_sealed(keys), mode=0o600)


@app.command("redact")
def redact_command(
    ctx: typer.Context,
    source: FileArgument = "-",
    policy: PolicyOption = None,
    surface: Annotated[
        str | None, typer.Option(help="Apply the policy's override for this surface.")
    ] = None,
    recognizers: RecognizersOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the text with findings and counts.")
    ] = False,
) -> None:
    """Print the input with secrets and personal data transformed by the policy.

    The default policy replaces values by their kind ([EMAIL]), masks phone and card
    numbers (XXX-XXX-4567) and removes every secret.
    """
    from veil.transform import Redactor

    chosen = _policy(policy)
    needs_key = chosen.uses("hash") or chosen.uses("encrypt")
    redactor = Redactor(
        detector=build_detector(ctx, recognizers, None),
        policy=chosen,
        surface=surface,
        keys=_keys(ctx) if needs_key else None,
    )
    result = redactor.redact(read_input(source))
    if as_json:
        print_json(
            {
                "text": result.text,
                "findings": [finding.to_dict() for finding in result.findings],
                "actions": result.actions,
            }
        )
    else:
        _emit(result.text)


@app.command("pseudonymize")
def pseudonymize_command(
    ctx: typer.Context,
    map_file: MapOption,
    source: FileArgument = "-",
    policy: PolicyOption = None,
    recognizers: RecognizersOption = None,
    style: Annotated[
        str,
        typer.Option(
            help="token: <EMAIL_1>; realistic: format-preserving fakes (alex.lee1@example.net)."
        ),
    ] = "token",
) -> None:
    """Replace personal data with consistent tokens (<EMAIL_1>) and keep the mapping.

    Secrets are still removed. The mapping is sealed with the root key (VEIL_MASTER_KEY)
    into --map; running again with the same map reuses its tokens. Undo with
    `veil restore --map FILE`.
    """
    from veil.transform import Redactor

    keys = _keys(ctx)
    text = read_input(source)
    detector = build_detector(ctx, recognizers, None)
    # Another run on the same map waits here: each loads what the one before it saved, so
    # no run's tokens are lost or handed out again for other values.
    with exclusive(map_file):
        mapping = _load_map(map_file, keys, style)
        redactor = Redactor(
            detector=detector,
            policy=_policy(policy),
            surface="gateway",
            pseudonymizer=mapping,
            keys=keys,
        )
        result = redactor.redact(text)
        _save_map(map_file, mapping, keys)
    details = {"findings": len(result.findings), "actions": result.actions}
    audit_map_event(ctx, "cli.pseudonymize", map_file, details)
    _emit(result.text)


@app.command("restore")
def restore_command(ctx: typer.Context, map_file: MapOption, source: FileArgument = "-") -> None:
    """Put the original values back in place of the tokens of a pseudonym map."""
    from veil.transform import Redactor

    if not map_file.exists():
        raise InputError(
            f"The pseudonym map {map_file} does not exist.",
            hint="Pass the --map file that `veil pseudonymize` wrote.",
        )
    keys = _keys(ctx)
    mapping = _load_map(map_file, keys)
    restored = Redactor(pseudonymizer=mapping, keys=keys).restore(read_input(source))
    audit_map_event(ctx, "cli.restore", map_file, {"tokens_in_map": len(mapping)})
    _emit(restored)
