"""The root Typer app, shared output helpers and the error → exit-code mapping."""

from __future__ import annotations

import csv
import inspect
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from typer.core import TyperGroup

from veil import logging as veil_logging
from veil.config import Settings, load_settings
from veil.errors import EXIT_ERROR, InputError, VeilError, failure_place

if TYPE_CHECKING:
    from veil.audit import Ledger

# How wide tables may grow when the output is not a terminal.
PIPED_WIDTH = 1000


class _Console(Console):
    """A console whose tables, when piped to a file, a pager or a script, are as wide as
    their content: rich fits them to 80 columns (or $COLUMNS) there, which cut key ids
    (`vk_1be…`) that then cannot be copied into `veil keys revoke`. Output without a
    screen has no width to fit."""

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        assert isinstance(size, ConsoleDimensions)
        if not self.is_terminal:
            return ConsoleDimensions(PIPED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


out = _Console(highlight=False, soft_wrap=True, emoji=False)
err = _Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


class VeilGroup(TyperGroup):
    """Turns a :class:`VeilError` from any command into its message and exit code.

    Tracebacks are not shown: they could carry local variables holding secrets.
    """

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.short_help is None and command.help:
            # Rich help keeps a docstring's single line breaks in the command list, which
            # cuts sentences mid-line there; the list shows the first paragraph as one.
            first = inspect.cleandoc(command.help).split("\n\n")[0]
            command.short_help = " ".join(first.split())
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except VeilError as exc:
            err.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, highlight=False)
            if exc.hint:
                err.print(f"[yellow]fix:[/] {escape(exc.hint)}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:
            raise  # `veil ... | head`: the reader left; nothing to say
        except Exception as exc:
            # typer's own exits and usage errors (they know how to show themselves)
            if isinstance(exc, typer.Exit | typer.Abort) or hasattr(exc, "show"):
                raise
            # A bug: its type and place, not a traceback, whose messages could quote
            # the input.
            reason = f" ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror else ""
            err.print(
                f"[bold red]error:[/] Veil failed unexpectedly ({escape(failure_place(exc))})"
                f"{escape(reason)}.",
                markup=True,
                highlight=False,
            )
            err.print(
                "[yellow]fix:[/] This is a bug in Veil; please report the command and this line.",
                markup=True,
                highlight=False,
            )
            raise typer.Exit(EXIT_ERROR) from None


app = typer.Typer(
    name="veil",
    cls=VeilGroup,
    help="Veil keeps secrets and personal data out of AI prompts, logs and exports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def settings_from_context(ctx: typer.Context) -> Settings:
    """Settings loaded once per invocation (so a bad value fails before any work)."""
    obj = ctx.find_root().obj
    if isinstance(obj, Settings):
        return obj
    settings = load_settings()
    ctx.find_root().obj = settings
    veil_logging.configure_process(settings.log_level)
    return settings


def audit_map_event(
    ctx: typer.Context, action: str, map_file: Path, details: dict[str, Any]
) -> None:
    """An entry for a run that used a map (pseudonyms, code): re-identification and data
    leaving for a model are privacy events. Who, which map (a keyed digest of its path),
    how much; never the content."""
    _append(ctx, action, lambda ledger: f"map:{ledger.digest(str(map_file.resolve()))}", details)


def audit_event(
    ctx: typer.Context,
    action: str,
    resource: str,
    details: dict[str, Any] | None = None,
    *,
    outcome: str = "ok",
) -> None:
    """One ledger entry for an administrative change or a run made from the CLI (the OS
    user is the actor; never a secret value)."""
    _append(ctx, action, lambda _ledger: resource, details, outcome)


def _append(
    ctx: typer.Context,
    action: str,
    resource: Callable[[Ledger], str],
    details: dict[str, Any] | None,
    outcome: str = "ok",
) -> None:
    import getpass

    from veil.audit import open_ledger

    ledger = open_ledger(settings_from_context(ctx))
    try:
        ledger.append(
            getpass.getuser(), action, outcome, resource=resource(ledger), details=details
        )
    finally:
        ledger.close()


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, one document."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 option value in UTC (``Z`` or an offset accepted; a time without one
    is UTC), or None when the option is not given."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"--{name} must be an ISO 8601 time, for example 2026-11-01T00:00Z."
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_time_range(
    since: str | None, until: str | None
) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until``, refused when no time can be in between (swapped
    bounds exported nothing and exited 0, which reads as "nothing happened")."""
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start is not None and end is not None and start >= end:
        raise InputError(
            "--since is not before --until: nothing can match.",
            hint="Swap them: --since is the earlier time.",
        )
    return start, end


EXPORT_FORMATS = ("json", "jsonl", "csv")


def check_export_format(output_format: str) -> None:
    if output_format not in EXPORT_FORMATS:
        raise InputError("--format must be json, jsonl or csv.")


def export_records(
    records: Iterable[dict[str, Any]], output_format: str, columns: Sequence[str]
) -> None:
    """Records on stdout as one JSON document, JSON lines, or CSV with ``columns`` (nested
    values as sorted JSON text in their cell), written as they come: an iterator of
    millions of records is never held in memory. Callers check ``output_format`` with
    :func:`check_export_format` before doing the work."""
    if output_format == "json":
        # The same document print_json writes for the list, one record at a time.
        sys.stdout.write("[")
        separator = "\n  "
        for record in records:
            text = json.dumps(record, indent=2, ensure_ascii=False)
            sys.stdout.write(separator + text.replace("\n", "\n  "))
            separator = ",\n  "
        sys.stdout.write("\n]\n" if separator != "\n  " else "]\n")
        sys.stdout.flush()
    elif output_format == "jsonl":
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow(
                {
                    name: json.dumps(value, sort_keys=True)
                    if isinstance(value, dict | list)
                    else value
                    for name, value in record.items()
                }
            )
