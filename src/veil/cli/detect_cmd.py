"""``veil detect``: find secrets and PII in a file, stdin, or a JSONL stream."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    typer.Option("--recognizers", help="YAML file of extra recognizers (see docs/detection.md)."),
]


def read_input(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.") from None


def build_detector(ctx: typer.Context, recognizers: Path | None, region: str | None) -> Detector:
    """The detector the configuration asks for: extra recognizers, region hint, NER model."""
    from veil.detect import Detector

    settings = settings_from_context(ctx)
    return Detector(
        extra=recognizers,
        phone_region=(region or settings.phone_region).upper(),
        ner=settings.ner_model,
        address_blocks=settings.address_blocks,
    )


def _jsonl(detector: Detector) -> None:
    """One answer line per input line, flushed: the protocol of the shared PII scorer."""
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            item: Any = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(
                f"stdin line {number} is not JSON.",
                hint='Send one {"id": ..., "text": "..."} object or JSON string per line.',
            ) from None
        ident: Any
        if isinstance(item, str):
            ident, text = number - 1, item
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            ident, text = item.get("id", number - 1), item["text"]
        else:
            raise InputError(f'stdin line {number} has no "text" string.')
        findings = [finding.to_dict() for finding in detector.find(text)]
        sys.stdout.write(json.dumps({"id": ident, "findings": findings}) + "\n")
        sys.stdout.flush()


def _table(findings: list[Finding], text: str) -> None:
    from rich.table import Table  # loaded by the commands that print one

    from veil.transform import mask_value

    table = Table(title=f"{len(findings)} finding(s)", title_justify="left")
    for heading in ("line", "col", "kind", "level", "score", "value (masked)", "recognizer"):
        table.add_column(heading, no_wrap=heading in ("kind", "value (masked)"))
    for finding in findings:
        line = text.count("\n", 0, finding.start) + 1
        column = finding.start - (text.rfind("\n", 0, finding.start) + 1) + 1
        shown = mask_value(text[finding.start : finding.end], finding.kind)
        table.add_row(
            str(line),
            str(column),
            finding.kind,
            finding.level.value,
            f"{finding.score:.2f}",
            escape(shown),
            finding.source,
        )
    out.print(table)


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
) -> None:
    """Find secrets and personal data. Exits 1 when something is found.

    Values are never printed in full: the table shows them masked, JSON gives offsets.
    """
    detector = build_detector(ctx, recognizers, region)
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
