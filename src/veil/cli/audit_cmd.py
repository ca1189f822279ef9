"""``veil audit``: verify, checkpoint, prove, tail and query the audit ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from veil._files import write_atomically
from veil.cli._app import (
    VeilGroup,
    app,
    audit_event,
    check_export_format,
    export_records,
    out,
    parse_time,
    parse_time_range,
    print_json,
    settings_from_context,
)
from veil.errors import InputError, IntegrityError

if TYPE_CHECKING:
    from veil.audit import Ledger

audit_app = typer.Typer(
    cls=VeilGroup,
    help="The tamper-evident audit ledger: verify it, prove entries, export them.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SubjectArgument = Annotated[
    str, typer.Argument(help="The data subject's identifier in the ledger (customer-42).")
]
_COLUMNS = ["seq", "time", "actor", "action", "outcome", "subject", "resource", "details"]


def _ledger(ctx: typer.Context) -> Ledger:
    from veil.audit import open_ledger

    return open_ledger(settings_from_context(ctx))


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A checkpoint saved earlier: detects truncation and rollback."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute every entry and the Merkle tree and check them against the latest
    signed tree head (every stored root and head are checked when something is off).

    Exits 3 and names the first bad entry when anything was edited, deleted, reordered
    or inserted, or when the ledger is behind a saved checkpoint.
    """
    saved: dict[str, Any] | None = None
    if checkpoint is not None:
        try:
            saved = json.loads(checkpoint.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(
                f"Cannot read the checkpoint {checkpoint}.",
                hint="Create one with `veil audit checkpoint --out FILE`.",
            ) from None
    report = _ledger(ctx).verify(saved)
    if as_json:
        print_json({"ok": True, **report})
    else:
        extra = " and is consistent with the checkpoint" if saved is not None else ""
        out.print(
            f"[green]✓[/] {report['entries']} entries and {report['signed_heads']} signed tree "
            f"heads verify{extra}. Root {report['root']}"
        )


@audit_app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the checkpoint.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace FILE without verifying the ledger against the checkpoint in it.",
        ),
    ] = False,
) -> None:
    """Save the latest signed tree head (with the public key) outside the database.

    Keep it somewhere the database's administrators cannot write; `veil audit verify
    --checkpoint FILE` then detects a truncated or rolled-back ledger. When FILE already
    holds a checkpoint, it is replaced only once the ledger verifies against it (as
    `veil audit verify --checkpoint FILE`): an edited, truncated or rolled-back ledger
    exits 3 and the old checkpoint, the evidence, stays.
    """
    ledger = _ledger(ctx)
    if out_file.exists() and not force:
        data = _extending_head(ledger, out_file)
    else:
        data = ledger.checkpoint()
    write_atomically(out_file, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)
    out.print(f"[green]✓[/] checkpoint of {data['size']} entries written to {out_file}")


def _extending_head(ledger: Ledger, previous: Path) -> dict[str, Any]:
    """The latest signed head, once the whole ledger verifies against the checkpoint in
    ``previous`` (entries, tree, heads, and that the checkpoint's tree is a prefix)."""
    try:
        saved = json.loads(previous.read_text(encoding="utf-8"))
        if int(saved["size"]) < 1 or len(bytes.fromhex(saved["root"])) != 32:
            raise ValueError("not a tree head")
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"{previous} exists and is not a checkpoint; nothing was written.",
            hint="Pass another --out, or --force to replace it.",
        ) from None
    try:
        ledger.verify(saved)
    except IntegrityError as exc:
        raise IntegrityError(
            f"{exc.message} The checkpoint in {previous} was kept.",
            hint="Investigate with `veil audit verify --checkpoint FILE`.",
        ) from None
    return ledger.checkpoint()


@audit_app.command("prove")
def prove(
    ctx: typer.Context,
    seq: int,
    archive: Annotated[
        Path | None,
        typer.Option(
            help="Prove an archived entry from its segment file (written by `veil audit "
            "archive`), against the signed head that closes the segment."
        ),
    ] = None,
) -> None:
    """Print an RFC 6962 inclusion proof of entry SEQ against the latest signed head
    (or, with --archive, against the signed head of the archived segment holding it)."""
    if archive is not None:
        from veil.audit import prove_archived

        print_json(prove_archived(archive, seq, _ledger(ctx).public_key))
        return
    print_json(_ledger(ctx).prove(seq))


@audit_app.command("consistency")
def consistency(
    ctx: typer.Context,
    old_size: Annotated[
        int | None, typer.Argument(help="The older tree size (a checkpoint's size).")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A checkpoint saved earlier: prove from its size and check it."),
    ] = None,
    archive: Annotated[
        list[Path] | None,
        typer.Option(
            "--archive",
            help="A segment file from `veil audit archive` holding entries the proof needs "
            "(repeat for several; they must run up to the database's first entry).",
        ),
    ] = None,
) -> None:
    """Print an RFC 6962 consistency proof that the ledger of OLD_SIZE entries is a prefix
    of the ledger under the latest signed head.

    With --checkpoint the proof is also checked against the checkpoint's root (exit 3 if
    the ledger was rewritten since), so anyone holding a checkpoint can confirm that
    nothing before it changed. A checkpoint older than an archive needs the archived
    segment files from its size on (--archive FILE, repeated).
    """
    from veil.audit import merkle

    saved: dict[str, Any] | None = None
    if checkpoint is not None:
        try:
            saved = json.loads(checkpoint.read_text(encoding="utf-8"))
            old_size = int(saved["size"])
            old_root = bytes.fromhex(saved["root"])
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(
                f"Cannot read the checkpoint {checkpoint}.",
                hint="Pass a file written by `veil audit checkpoint --out FILE`.",
            ) from None
    if old_size is None:
        raise InputError(
            "Give the older tree size, or --checkpoint FILE.",
            hint="veil audit consistency 1000   or   veil audit consistency --checkpoint c.json",
        )
    proof = _ledger(ctx).prove_consistency(old_size, archive or ())
    if saved is not None:
        merkle.verify_consistency(
            old_size,
            proof["tree_size"],
            old_root,
            bytes.fromhex(proof["root"]),
            [bytes.fromhex(node) for node in proof["proof"]],
        )
        proof["old_root"] = old_root.hex()
        proof["verified"] = True
    print_json(proof)


@audit_app.command("tail")
def tail(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many entries.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show the newest entries, one line each (details cut to the terminal's width; --json
    prints them whole)."""
    entries = list(reversed(_ledger(ctx).entries(limit=lines, newest_first=True)))
    if as_json:
        print_json(entries)
        return
    from rich.table import Table  # loaded by the commands that print one

    table = Table(title=f"last {len(entries)} audit entries (UTC)", title_justify="left")
    headings = ["seq", "time", "actor", "action", "outcome"]
    if any(entry.get("subject") for entry in entries):
        headings.append("subject")
    rows = [
        [
            str(entry["seq"]),
            str(entry["time"])[:19].replace("T", " "),  # to the second: the rest is --json's
            *(str(entry.get(field) or "") for field in headings[2:]),
        ]
        for entry in entries
    ]
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headings)]
    # The details get what the other columns leave of the terminal (each column costs
    # its width plus 3 for padding and its border), at least 20 characters.
    room = max(20, out.size.width - sum(widths) - 3 * (len(widths) + 1) - 1)
    for heading, width in zip(headings, widths, strict=True):
        table.add_column(
            heading, no_wrap=True, min_width=width, justify="right" if heading == "seq" else "left"
        )
    table.add_column("details", no_wrap=True, overflow="ellipsis", max_width=room)
    for entry, row in zip(entries, rows, strict=True):
        details = _compact_details(entry["details"])
        if len(details) > room:
            details = details[: room - 1] + "…"
        table.add_row(*(escape(cell) for cell in row), escape(details))
    out.print(table)


def _compact_details(details: dict[str, Any]) -> str:
    """``key=value`` pairs, strings bare and other values as JSON: one line to skim."""
    return " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, sort_keys=True)}"
        for key, value in sorted(details.items())
    )


@audit_app.command("query")
def query(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601).")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Who acted, exactly: `gateway`, an OS user, ...")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="What was done, exactly: `keys.create`, ...")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="The data subject, exactly.")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="`ok`, `blocked`, `error`, ... exactly.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="json, jsonl or csv.")] = "jsonl",
) -> None:
    """Export entries matching every filter given, oldest first."""
    check_export_format(output_format)
    start, end = parse_time_range(since, until)
    entries = _ledger(ctx).iter_entries(
        since=start,
        until=end,
        actor=actor,
        action=action,
        subject=subject,
        outcome=outcome,
    )
    export_records(entries, output_format, _COLUMNS)


@audit_app.command("access")
def access(
    ctx: typer.Context,
    subject: SubjectArgument,
    output_format: Annotated[str, typer.Option("--format", help="json, jsonl or csv.")] = "json",
) -> None:
    """Answer a data subject's access request (GDPR art. 15): every entry about SUBJECT,
    with the values sealed for them opened (shown as erased after an erasure).

    The request is recorded in the ledger (`subject.access`, the OS user as actor).
    """
    import getpass

    check_export_format(output_format)
    ledger = _ledger(ctx)
    try:
        entries = ledger.access(subject, getpass.getuser())
    finally:
        ledger.close()
    export_records(entries, output_format, _COLUMNS)


@audit_app.command("erase")
def erase(
    ctx: typer.Context,
    subject: SubjectArgument,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the erasure cannot be undone.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Answer a data subject's erasure request (GDPR art. 17) by crypto-shredding: destroy
    SUBJECT's keys, so everything sealed for them (in the ledger, in backups, in archives)
    can no longer be read, while every entry and hash stays and `veil audit verify` passes.

    The erasure is recorded in the ledger (`subject.erase`, the OS user as actor).
    """
    import getpass

    if not yes:
        raise InputError(
            "Erasing a data subject destroys their keys for good.",
            hint="Run again with --yes to confirm.",
        )
    ledger = _ledger(ctx)
    try:
        entry = ledger.erase_subject(subject, getpass.getuser())
    finally:
        ledger.close()
    destroyed = entry.details["keys_destroyed"]
    if as_json:
        print_json({"subject": subject, "keys_destroyed": destroyed, "seq": entry.seq})
    else:
        out.print(
            f"[green]✓[/] data subject erased: {destroyed} key(s) destroyed; recorded as "
            f"audit entry {entry.seq}"
        )


RETENTION_YEARS = 7.0  # the record's retention (docs/audit.md)


@audit_app.command("archive")
def archive(
    ctx: typer.Context,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the archived segment.")],
    before: Annotated[
        str | None, typer.Option(help="Archive entries older than this time (ISO 8601).")
    ] = None,
    older_than_years: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Instead of --before: the retention period in years (default 7)."
        ),
    ] = None,
    max_entries: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="At most this many entries in this segment; run again (with another "
            "--out) for the rest. Appends wait while a segment is written.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Move entries past retention to an archive file and drop them from the database.

    The signed tree head at the boundary stays, so `veil audit verify` still checks every
    later entry; `veil audit verify-archive FILE` checks the archive on its own.
    """
    if before is not None and older_than_years is not None:
        raise InputError("Give --before or --older-than-years, not both (one would be ignored).")
    years = RETENTION_YEARS if older_than_years is None else older_than_years
    cutoff = parse_time(before, "before") or datetime.now(UTC) - timedelta(days=365.25 * years)
    report = _ledger(ctx).archive(cutoff, out_file, max_entries=max_entries)
    if report["archived"]:
        # Entries leaving the database are a retention event of the record itself.
        audit_event(
            ctx,
            "audit.archive",
            f"segment:{report['start']}-{report['end']}",
            {key: report[key] for key in ("start", "end", "archived", "sha256")},
        )
    if as_json:
        print_json(report)
    elif report["archived"] == 0:
        out.print("Nothing to archive: no signed range of entries is older than the cutoff.")
    else:
        out.print(
            f"[green]✓[/] entries {report['start']}..{report['end'] - 1} archived to "
            f"{out_file} (sha256 {report['sha256']})"
        )


@audit_app.command("verify-archive")
def verify_archive_command(
    ctx: typer.Context, archive_file: Path, as_json: JsonOption = False
) -> None:
    """Check an archived segment: its entries must rebuild the root its tree head signs."""
    from veil.audit import verify_archive

    report = verify_archive(archive_file, _ledger(ctx).public_key)
    if as_json:
        print_json({"ok": True, **report})
    else:
        out.print(
            f"[green]✓[/] {report['entries']} archived entries ({report['start']}.."
            f"{report['end'] - 1}) rebuild the signed root {report['root']}"
        )
