"""``veil detect``: find secrets and PII in a file, stdin, or a JSONL stream."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.markup import escape

from veil.cli._app import app, out, print_json, settings_from_context
from veil.errors import EXIT_FINDINGS, InputError

if TYPE_CHECKING:
    from veil.detect import Detector, Finding

FileArgument = Annotated[
    str, typer.Argument(help="File to read, or - for standard input.", show_default=True)
]
RecognizersOption = Annotated[
    Path | None,
    typer.Option(
        "--recognizers",
        help="YAML file of extra recognizers and public values (docs/detection.md); "
        "instead of VEIL_RECOGNIZERS for this run.",
    ),
]


def read_input(source: str) -> str:
    """A file's (or stdin's) text. Bytes that are not UTF-8 (a Latin-1 log line) are kept
    as lone surrogates, which no recognizer matches and :func:`write_output` writes back
    as the same bytes: redacting such a file changes only what was found in it."""
    if source == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        data = stdin.read() if stdin is not None else sys.stdin.read().encode()
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"Cannot read {path}: {exc.strerror}.") from None
    return data.decode("utf-8", "surrogateescape")


def write_output(text: str) -> None:
    """``text`` on stdout as UTF-8, bytes kept by :func:`read_input` written back as is."""
    stdout = getattr(sys.stdout, "buffer", None)
    if stdout is None:
        sys.stdout.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        sys.stdout.flush()
        return
    sys.stdout.flush()
    stdout.write(text.encode("utf-8", "surrogateescape"))
    stdout.flush()


def build_detector(ctx: typer.Context, recognizers: Path | None, region: str | None) -> Detector:
    """The detector the configuration asks for (extra recognizers, region hint, NER
    model), with this run's --recognizers and --region in place of the settings'."""
    import dataclasses

    from veil.detect import configured_detector

    settings = settings_from_context(ctx)
    settings = dataclasses.replace(
        settings,
        recognizers=recognizers or settings.recognizers,
        phone_region=(region or settings.phone_region).upper(),
    )
    named_by = "--recognizers" if recognizers else "VEIL_RECOGNIZERS"
    return configured_detector(settings, ner=True, named_by=named_by)


# What one read of stdin may take: the lines in it are detected together.
_JSONL_READ = 1 << 20


def _jsonl(detector: Detector) -> None:
    """One answer line per input line, flushed: the protocol of the shared PII scorer.

    The lines already waiting on stdin are detected together (``find_many``: with NER,
    spaCy batches them, 2-3x the documents per second), while a client that waits for
    each answer before it sends the next line gets it at once, as before."""
    number = 0
    for lines in _waiting_lines(cast("io.BufferedIOBase", sys.stdin.buffer)):
        items: list[tuple[Any, str]] = []
        failure: InputError | None = None
        for line in lines:
            number += 1
            if not line.strip():
                continue
            try:
                items.append(_jsonl_item(line, number))
            except InputError as exc:  # answer the lines before it, then stop
                failure = exc
                break
        if items:
            found = detector.find_many([text for _, text in items])
            sys.stdout.write(
                "".join(
                    json.dumps({"id": ident, "findings": [f.to_dict() for f in findings]}) + "\n"
                    for (ident, _), findings in zip(items, found, strict=True)
                )
            )
            sys.stdout.flush()
        if failure is not None:
            raise failure


def _jsonl_item(line: bytes, number: int) -> tuple[Any, str]:
    try:
        item: Any = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        raise InputError(
            f"stdin line {number} is not JSON.",
            hint='Send one {"id": ..., "text": "..."} object or JSON string per line.',
        ) from None
    if isinstance(item, str):
        return number - 1, item
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return item.get("id", number - 1), item["text"]
    raise InputError(f'stdin line {number} has no "text" string.')


def _waiting_lines(stream: io.BufferedIOBase) -> Iterator[list[bytes]]:
    """The complete lines of each read: ``read1`` returns what is waiting (blocking only
    when nothing is), so a lone line comes back alone and a stream comes in batches."""
    pending: list[bytes] = []
    while chunk := stream.read1(_JSONL_READ):
        if b"\n" not in chunk:  # a long line: join its pieces once, at its end
            pending.append(chunk)
            continue
        lines = b"".join([*pending, chunk]).split(b"\n")
        pending = [lines.pop()]
        yield lines
    if rest := b"".join(pending):
        yield [rest]


# Above this many findings the table is printed as plain aligned columns: rich measures
# every cell of a table before it prints a line (11 s for 16,000 findings).
RICH_TABLE_ROWS = 500
HEADINGS = ("line", "col", "kind", "level", "score", "value (masked)", "recognizer")


def _rows(findings: list[Finding], text: str) -> Iterator[tuple[str, ...]]:
    from veil.transform import mask_value

    # Lines counted forward from the previous finding (findings come sorted by start):
    # counting from the text's start for each one was quadratic on a long file.
    line, counted_to = 1, 0
    for finding in findings:
        if finding.start >= counted_to:
            line += text.count("\n", counted_to, finding.start)
        else:  # not sorted: count afresh
            line = text.count("\n", 0, finding.start) + 1
        counted_to = finding.start
        column = finding.start - (text.rfind("\n", 0, finding.start) + 1) + 1
        yield (
            str(line),
            str(column),
            finding.kind,
            finding.level.value,
            f"{finding.score:.2f}",
            mask_value(text[finding.start : finding.end], finding.kind),
            finding.source,
        )


def _table(findings: list[Finding], text: str) -> None:
    title = f"{len(findings)} finding(s)"
    if not findings:
        out.print(title)
        return
    # Plain aligned columns for many rows (rich's layout is slow) and when piped (a
    # pager or a file: no width to fit, so no value is folded across lines).
    if len(findings) > RICH_TABLE_ROWS or not out.is_terminal:
        rows = [HEADINGS, *_rows(findings, text)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADINGS))]
        lines = [title]
        for row in rows:
            lines.append(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        out.print("\n".join(lines), markup=False)
        return

    from rich import box
    from rich.table import Table  # loaded by the commands that print one

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for heading in HEADINGS:
        # On a narrow terminal (80 columns when piped) long values and recognizer names
        # fold onto more lines; the short columns keep their width instead of shrinking
        # to nothing.
        if heading in ("value (masked)", "recognizer"):
            table.add_column(heading, overflow="fold", min_width=12)
        else:
            table.add_column(heading, no_wrap=True, min_width=len(heading))
    for row in _rows(findings, text):
        table.add_row(*row[:5], escape(row[5]), row[6])
    out.print(table)


def _print_kinds(detector: Detector, as_json: bool) -> None:
    from veil.detect import CATALOG

    rows: list[dict[str, str | bool]] = [
        {
            "kind": kind,
            "level": info.level.value,
            "secret": info.secret,
            "description": info.description,
        }
        for kind, info in CATALOG.items()
    ]
    for kind in sorted(detector.kinds - CATALOG.keys()):
        sources = sorted(spec.id for spec in detector.recognizers if spec.kind == kind)
        level = next(s.resolved_level() for s in detector.recognizers if s.kind == kind)
        rows.append(
            {
                "kind": kind,
                "level": level.value,
                "secret": False,
                "description": f"your recognizers: {', '.join(sources)}",
            }
        )
    if as_json:
        print_json(rows)
        return
    lines = [f"{len(rows)} kinds"]
    width = max(len(str(row["kind"])) for row in rows)
    for row in rows:
        tag = "secret" if row["secret"] else str(row["level"])
        lines.append(f"{str(row['kind']).ljust(width)}  {tag.ljust(8)}  {row['description']}")
    out.print("\n".join(lines), markup=False)


@app.command("detect")
def detect(
    ctx: typer.Context,
    source: FileArgument = "-",
    as_json: Annotated[bool, typer.Option("--json", help="Print all findings as JSON.")] = False,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl",
            help='Read {"id", "text"} lines on stdin, answer {"id", "findings"} lines.',
        ),
    ] = False,
    recognizers: RecognizersOption = None,
    region: Annotated[
        str | None,
        typer.Option(help="Region hint for national phone numbers (default VEIL_PHONE_REGION)."),
    ] = None,
    list_kinds: Annotated[
        bool,
        typer.Option(
            "--list-kinds",
            help="List the kinds that can be found (what a policy's kinds: may name), "
            "your recognizers' included, and exit.",
        ),
    ] = False,
) -> None:
    """Find secrets and personal data. Exits 1 when something is found.

    Values are never printed in full: the table shows them masked, JSON gives offsets.
    """
    if jsonl and (source != "-" or as_json):
        # It read stdin regardless: FILE was ignored (and a terminal waited for input).
        raise InputError(
            "--jsonl reads standard input and writes JSON lines: it takes no FILE and no --json.",
            hint="veil detect --jsonl < items.jsonl",
        )
    detector = build_detector(ctx, recognizers, region)
    if list_kinds:
        _print_kinds(detector, as_json)
        return
    if jsonl:
        _jsonl(detector)
        return
    text = read_input(source)
    findings = detector.find(text)
    if as_json:
        print_json({"findings": [finding.to_dict() for finding in findings]})
    else:
        _table(findings, text)
    if findings:
        raise typer.Exit(EXIT_FINDINGS)
