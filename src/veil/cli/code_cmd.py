"""``veil code``: anonymize source code for a coding assistant and restore its answers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from veil._files import write_atomically
from veil.cli._app import (
    VeilGroup,
    app,
    audit_map_event,
    out,
    print_json,
    settings_from_context,
)
from veil.cli.detect_cmd import read_input, write_output
from veil.errors import InputError
from veil.keys import KeyStore, root_key_from_settings
from veil.store import open_engine

code_app = typer.Typer(
    cls=VeilGroup,
    help="Anonymize code for AI assistants; restore their answers.",
    no_args_is_help=True,
)
app.add_typer(code_app, name="code")
_PURPOSE = "code-map"


def _keys(ctx: typer.Context) -> KeyStore:
    settings = settings_from_context(ctx)
    return KeyStore(open_engine(settings), root_key_from_settings(settings))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_places(source: Path, out_dir: Path, map_file: Path, force: bool) -> None:
    """The copy goes where it cannot mix with the originals: not in the source tree (the
    next run would anonymize the copy, and sending the tree would send the originals),
    not around it (for one file: not beside it), and not into other files unless
    --force; the map stays out of both."""
    out, map_path = out_dir.resolve(), map_file.resolve()
    root = source.resolve()
    if source.is_dir():
        overlaps = _within(out, root) or _within(root, out)
    else:
        overlaps, root = out == root.parent, root.parent
    if overlaps:
        raise InputError(
            f"--out {out_dir} overlaps the source {root}: the copy would mix with the "
            "originals. Nothing was written.",
            hint="Pass an --out directory outside the source tree, e.g. /tmp/anon.",
        )
    if (
        _within(map_path, out)
        or (_within(map_path, root) and source.is_dir())
        or (map_path == source.resolve())
    ):
        raise InputError(
            f"--map {map_file} is inside the {'copy' if _within(map_path, out) else 'source'}; "
            "nothing was written.",
            hint="Keep the map apart from the code (it is what turns answers back).",
        )
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out_dir} is a file, not a directory; nothing was written.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(
            f"--out {out_dir} is not empty; nothing was written.",
            hint="Pass an empty or new directory, or --force to write into it (files of "
            "the same name are replaced, others stay).",
        )


@code_app.command("anonymize")
def anonymize(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A Python file or a directory of them.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where the anonymized copy goes.")],
    map_file: Annotated[Path, typer.Option("--map", help="The encrypted map, for restore.")],
    comments: Annotated[
        str,
        typer.Option(
            help="marker (replaced, restorable), keep, or engine (kept, with secrets and "
            "personal data as tokens and the code's names renamed)."
        ),
    ] = "marker",
    docstrings: Annotated[
        str, typer.Option(help="marker, keep or engine, as for --comments.")
    ] = "marker",
    strings: Annotated[
        str,
        typer.Option(
            help="Python names inside string text: refs (where the text refers to the "
            "code; the program behaves the same) or all (every word of 3+ letters; no "
            "name left, but text-processing code may compute differently)."
        ),
    ] = "refs",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write into an --out directory that is not empty (files of the same name "
            "are replaced, the others stay).",
        ),
    ] = False,
) -> None:
    """Rename what the code defines to neutral names (consistently across files; Python
    exactly, JavaScript/TypeScript/Java/Go/C/C++/Rust/SQL by declarations), replace
    comments and docstrings with markers and values in strings with tokens. The copy
    still runs; the map (sealed with your root key) turns a model's answer back."""
    from veil.transform import shared_detector
    from veil.transform.code import (
        LexedAnonymizer,
        LiteralTransformer,
        PythonAnonymizer,
        SourceFile,
        language_of,
    )

    for option, value in (("--comments", comments), ("--docstrings", docstrings)):
        if value not in ("marker", "keep", "engine"):
            raise InputError(f"{option} must be marker, keep or engine, not {value!r}.")
    if strings not in ("refs", "all"):
        raise InputError(f"--strings must be refs or all, not {strings!r}.")
    if not source.exists():
        raise InputError(f"{source} does not exist.")
    root = source if source.is_dir() else source.parent
    _check_places(source, out_dir, map_file, force)
    candidates = (
        sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    )
    files: list[SourceFile] = []
    others: list[SourceFile] = []
    skipped = 0
    for path in candidates:
        relative = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in relative.split("/")):
            continue  # .git, .venv and other hidden trees
        if path.suffix != ".py" and language_of(relative) is None:
            skipped += 1
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text.") from None
        (files if path.suffix == ".py" else others).append(SourceFile(relative, text))
    if not files and not others:
        raise InputError(
            f"No supported source files under {source}.",
            hint="Python, JavaScript/TypeScript, Java, Go, C/C++, Rust and SQL.",
        )
    keys = _keys(ctx)
    started = time.perf_counter()
    literals = LiteralTransformer(shared_detector(settings_from_context(ctx)))
    try:
        result = PythonAnonymizer(
            comments=comments, docstrings=docstrings, literals=literals, strings=strings
        ).anonymize(files)
    except SyntaxError as exc:
        raise InputError(
            f"{exc.filename}:{exc.lineno}: not valid Python ({exc.msg}).",
            hint="Only code that parses can be anonymized exactly.",
        ) from None
    if others:
        lexed = LexedAnonymizer(comments=comments, literals=literals).anonymize(others)
        result.files += lexed.files
        result.code_map.names.update(lexed.code_map.names)
        result.code_map.markers.update(lexed.code_map.markers)
        result.code_map.literals.update(lexed.code_map.literals)
        result.renamed += lexed.renamed
        result.defined += lexed.defined
        result.kept += lexed.kept
    files += others
    seconds = time.perf_counter() - started
    for file in result.files:
        target = out_dir / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, file.text.encode("utf-8"), mode=0o644)
    sealed = keys.seal(_PURPOSE, json.dumps(result.code_map.to_json()).encode(), aad=b"code-map")
    write_atomically(map_file, sealed, mode=0o600)
    counts = {
        "files": len(files),
        "identifiers_renamed": result.renamed,
        "values": len(result.code_map.literals),
    }
    audit_map_event(ctx, "code.anonymize", map_file, counts)
    lines = sum(f.text.count("\n") + 1 for f in files)
    report = {
        "files": len(files),
        "lines": lines,
        "identifiers_defined": result.defined,
        "identifiers_renamed": result.renamed,
        "identifiers_kept": len(result.kept),
        "markers": len(result.code_map.markers),
        "literal_values": len(result.code_map.literals),
        "other_files_skipped": skipped,
        "seconds": round(seconds, 3),
    }
    if as_json:
        print_json(report)
        return
    out.print(
        f"[green]✓[/] anonymized {len(files)} file(s), {lines:,} lines into "
        f"{escape(str(out_dir))}: {result.renamed} of {result.defined} identifiers renamed, "
        f"{len(result.code_map.markers)} comments/docstrings replaced, "
        f"{len(result.code_map.literals)} values in strings tokenized."
    )
    out.print(f"  map (encrypted): {escape(str(map_file))}")
    if skipped:
        out.print(f"[yellow]{skipped} file(s) of other types were not copied.[/]")


@code_app.command("restore")
def restore(
    ctx: typer.Context,
    map_file: Annotated[Path, typer.Option("--map", help="The map written by anonymize.")],
    source: Annotated[
        str, typer.Argument(help="Text to restore: a file, or - for standard input.")
    ] = "-",
) -> None:
    """Put the original names, comments, docstrings and values back into a model's answer
    (code, diffs, markdown). Names the model introduced stay as they are."""
    from veil.transform.code import CodeMap

    keys = _keys(ctx)
    if not map_file.is_file():
        raise InputError(f"{map_file} does not exist.", hint="Pass the --map of anonymize.")
    data = json.loads(keys.open(_PURPOSE, map_file.read_bytes(), aad=b"code-map"))
    code_map = CodeMap.from_json(data)
    write_output(code_map.restore(read_input(source)))
    audit_map_event(ctx, "code.restore", map_file, {})
