"""``veil analytics``: the events Veil recorded (gateway calls) and summaries of them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

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
from veil.errors import InputError

if TYPE_CHECKING:
    from veil.analytics import Event

analytics_app = typer.Typer(
    cls=VeilGroup,
    help="Analytics events (one per gateway call, no content; callers as keyed hashes).",
    no_args_is_help=True,
)
app.add_typer(analytics_app, name="analytics")

SinceOption = Annotated[
    str | None, typer.Option(help="From this time (ISO 8601; without an offset, UTC).")
]
UntilOption = Annotated[str | None, typer.Option(help="Before this time (ISO 8601).")]


def _events(
    ctx: typer.Context,
    since: str | None,
    until: str | None,
    action: str | None = None,
    outcome: str | None = None,
    limit: int | None = None,
) -> list[Event]:
    from veil.analytics import open_events

    start, end = parse_time_range(since, until)
    store = open_events(settings_from_context(ctx))
    try:
        return store.events(
            since=start,
            until=end,
            action=action,
            outcome=outcome,
            limit=limit,
        )
    finally:
        store.close()


@analytics_app.command("events")
def events(
    ctx: typer.Context,
    since: SinceOption = None,
    until: UntilOption = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. gateway.chat.completions.")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome: ok, blocked or error.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many events.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="json, jsonl or csv.")] = "jsonl",
) -> None:
    """Export events matching every filter given, oldest first."""
    from veil.analytics import open_events

    check_export_format(output_format)
    columns = ["id", "time", "source", "action", "outcome", "actor", "dims", "values"]
    start, end = parse_time_range(since, until)
    store = open_events(settings_from_context(ctx))
    try:
        found = store.iter_events(
            since=start,
            until=end,
            action=action,
            outcome=outcome,
            limit=limit,
        )
        export_records((event.as_dict() for event in found), output_format, columns)
    finally:
        store.close()


@analytics_app.command("summary")
def summary(
    ctx: typer.Context,
    since: SinceOption = None,
    until: UntilOption = None,
    by: Annotated[
        str,
        typer.Option(help="Group by these fields or dimensions, comma-separated."),
    ] = "action,model",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Events per group: outcomes, distinct callers, latency p50/p95, tokens, findings.

    These are exact figures for the operators of this Veil, not differentially private
    releases: do not publish them beyond the people who may read the audit ledger."""
    from veil.analytics import summarize

    fields = tuple(name.strip() for name in by.split(",") if name.strip())
    if not fields:
        raise InputError("--by needs at least one field, for example action,model.")
    rows = summarize(_events(ctx, since, until), fields)
    if as_json:
        print_json(rows)
        return
    from rich.table import Table  # loaded by the commands that print one

    table = Table(title=f"{sum(r['events'] for r in rows)} events", title_justify="left")
    for heading in (*fields, "events", "outcomes", "callers", "p50 ms", "p95 ms", "totals"):
        table.add_column(heading)
    for row in rows:
        table.add_row(
            *(escape(str(row[name])) for name in fields),
            str(row["events"]),
            escape(json.dumps(row["outcomes"])),
            str(row["actors"]),
            "" if row["latency_p50_ms"] is None else f"{row['latency_p50_ms']:.1f}",
            "" if row["latency_p95_ms"] is None else f"{row['latency_p95_ms']:.1f}",
            escape(json.dumps(row["totals"])),
        )
    out.print(table)


@analytics_app.command("prune")
def prune(
    ctx: typer.Context,
    before: Annotated[
        str, typer.Option(help="Delete events recorded before this time (ISO 8601).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Delete events recorded before a time (retention); the deletion is audited."""
    from veil.analytics import open_events

    cutoff = parse_time(before, "before")
    assert cutoff is not None  # --before is required
    store = open_events(settings_from_context(ctx))
    try:
        deleted = store.prune(cutoff)
    finally:
        store.close()
    stamp = cutoff.isoformat().replace("+00:00", "Z")
    # A number, not the ISO text: the ledger refuses details that read as dates (PII).
    details = {"before_unix": int(cutoff.timestamp()), "deleted": deleted}
    audit_event(ctx, "analytics.prune", "analytics_events", details)
    if as_json:
        print_json({"deleted": deleted, "before": stamp})
    else:
        out.print(f"deleted {deleted} analytics events recorded before {stamp}")
