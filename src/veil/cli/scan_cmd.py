"""``veil scan``: secrets and personal data in files, staged changes and git history."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from veil._files import write_atomically
from veil.cli._app import app, audit_event, out, print_json, settings_from_context
from veil.errors import EXIT_FINDINGS, InputError

if TYPE_CHECKING:
    from veil.scan import ScanFinding

_HOOK_MARK = "# installed by veil scan --install-hook"


def _install_hook(target: Path) -> None:
    from veil.scan._files import git_root

    root = git_root(target)
    if root is None:
        raise InputError(
            f"{target} is not inside a git repository.",
            hint="Run it in the repository whose commits should be checked.",
        )
    found = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--git-path", "hooks"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    hooks = Path(found.stdout.strip() or ".git/hooks")
    hooks = hooks if hooks.is_absolute() else root / hooks
    hook = hooks / "pre-commit"
    if hook.exists() and _HOOK_MARK not in hook.read_text(errors="replace"):
        raise InputError(
            f"{hook} exists and was not written by Veil; it was left alone.",
            hint="Add `veil scan --staged` to it yourself, or use the pre-commit framework "
            "(.pre-commit-hooks.yaml).",
        )
    veil = shutil.which("veil") or str(Path(sys.argv[0]).resolve())
    hooks.mkdir(parents=True, exist_ok=True)
    script = f'#!/bin/sh\n{_HOOK_MARK}\nexec "{veil}" scan --staged\n'
    write_atomically(hook, script.encode(), mode=0o755)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    out.print(f"[green]✓[/] installed {escape(str(hook))}: commits that add secrets are refused.")


def _print_text(findings: list, new: set[str], summary: dict) -> None:  # type: ignore[type-arg]
    from veil.scan import rule_for

    by_path: dict[str, list] = defaultdict(list)  # type: ignore[type-arg]
    for finding in findings:
        by_path[finding.path].append(finding)
    for path, items in by_path.items():
        out.print(f"[bold]{escape(path)}[/]")
        for f in items:
            rule = rule_for(f.rule)
            color = "red" if rule.level == "error" else "yellow"
            where = f"{f.line}:{f.column}"
            commit = f" [dim]{f.commit[:10]}[/]" if f.commit else ""
            known = "" if f.fingerprint in new else " [dim](baseline)[/]"
            out.print(
                f"  {where:>9}  [{color}]{escape(f.rule)}[/]  {escape(f.shown)}{commit}{known}"
            )
            out.print(f"             [dim]{escape(rule.fix)}[/]")
    mb = summary["bytes"] / 1e6
    of_commits = f" of {summary['commits']} commit(s)" if "commits" in summary else ""
    out.print(
        f"{summary['findings']} finding(s), {summary['new']} new, in {summary['files']} "
        f"file(s){of_commits} ({mb:.1f} MB, {summary['seconds']:.1f} s)."
    )
    if summary["new"]:
        out.print(
            "[dim]Accept known findings with --baseline FILE --update-baseline, or "
            "mark a line with `# veil: allow=KIND`.[/]"
        )


def _record_ci_run(
    ctx: typer.Context,
    staged: bool,
    history: bool,
    targets: list[Path],
    findings: list[ScanFinding],
    summary: dict[str, Any],
    baseline: Path | None,
) -> None:
    """The ``scan.ci`` ledger entry: counts and the commit, never values or paths."""
    from veil.scan._files import git_root

    scope = "staged" if staged else "git" if history else "paths"
    if [str(t) for t in targets] == ["-"]:
        scope = "stdin"
    details: dict[str, Any] = {
        "scope": scope,
        "findings": summary["findings"],
        "new": summary["new"],
        "files": summary["files"],
        "baseline": baseline is not None,
        "rules": dict(sorted(Counter(f.rule for f in findings).items())),
    }
    root = git_root(targets[0]) if scope != "stdin" else None
    if root is not None:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if head.returncode == 0:
            details["commit"] = head.stdout.strip()
    outcome = "blocked" if summary["new"] else "ok"
    audit_event(ctx, "scan.ci", f"scan:{scope}", details, outcome=outcome)


@app.command("scan")
def scan(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or directories (default: .); '-' reads stdin."),
    ] = None,
    staged: Annotated[
        bool,
        typer.Option(
            "--staged", help="Scan what `git commit` would record (for pre-commit hooks)."
        ),
    ] = False,
    history: Annotated[
        bool, typer.Option("--git", help="Scan every commit reachable from any ref (added lines).")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="With --git: only commits after this revision.")
    ] = None,
    pii: Annotated[
        bool,
        typer.Option(
            "--pii", help="Also report personal data (e-mail addresses, phone numbers, ...)."
        ),
    ] = False,
    no_checks: Annotated[
        bool, typer.Option("--no-checks", help="Skip the code-review checks (VEIL001-VEIL011).")
    ] = False,
    output_format: Annotated[str, typer.Option("--format", help="text, json or sarif.")] = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file.")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Accepted findings (fingerprints).")
    ] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Write every current finding to --baseline.")
    ] = False,
    max_size: Annotated[
        int | None,
        typer.Option(
            "--max-size", min=1, help="Skip files larger than this many bytes (default 2 MB)."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Processes (default 0: one per CPU).")
    ] = 0,
    recognizers: Annotated[
        Path | None,
        typer.Option(
            "--recognizers", help="Extra recognizers (YAML); instead of VEIL_RECOGNIZERS."
        ),
    ] = None,
    install_hook: Annotated[
        bool, typer.Option("--install-hook", help="Install a git pre-commit hook running --staged.")
    ] = False,
    ci: Annotated[
        bool,
        typer.Option(
            "--ci",
            help="CI mode: record the run in the audit ledger (what was scanned, the git "
            "commit, counts by rule, how many are new; never values or file names). Needs "
            "a root key; point VEIL_DATABASE_URL at the team's ledger.",
        ),
    ] = False,
) -> None:
    """Find secrets (and with --pii personal data) in files, staged changes or git history,
    and code that would leak them. Exit 1 when there are findings not in the baseline.
    Values are never printed: reports show them masked and a keyed fingerprint."""
    from veil.scan import Scanner, ScanOptions, load_baseline, to_json, to_sarif, write_baseline

    settings = settings_from_context(ctx)
    targets = paths or [Path(".")]
    if install_hook:
        _install_hook(targets[0])
        return
    fmt = "json" if as_json else output_format.lower()
    if fmt not in ("text", "json", "sarif"):
        raise InputError(f"Unknown --format {output_format!r}.", hint="Use text, json or sarif.")
    if update_baseline and baseline is None:
        raise InputError("--update-baseline needs --baseline FILE.")
    if since is not None and not history:
        # It would be ignored: the whole tree (or the staged changes) would be scanned.
        raise InputError("--since applies to --git only.", hint="Add --git, or drop --since.")
    if staged and history:
        raise InputError("Use --staged or --git, not both.")
    if ci:
        from veil.keys import root_key_from_settings

        root_key_from_settings(settings)  # no key, no record: fail before scanning
    key = settings.scan_key.get_secret_value().encode() if settings.scan_key else None
    options = ScanOptions(
        pii=pii,
        code_checks=not no_checks,
        workers=workers,
        recognizers=recognizers or settings.recognizers,
        fingerprint_key=key,
    )
    if max_size is not None:
        options.max_size = max_size
    scanner = Scanner(options)
    started = time.perf_counter()
    if staged:
        result = scanner.scan_staged(targets[0])
    elif history:
        result = scanner.scan_history(targets[0], since)
    elif [str(t) for t in targets] == ["-"]:
        result = scanner.scan_text(sys.stdin.read())
    else:
        from veil.scan import ScanResult

        result = ScanResult()
        show = sys.stderr.isatty() and fmt == "text"
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("scanning"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} batches"),
            TimeRemainingColumn(),
            transient=True,
            disable=not show,
        ) as bar:
            task = bar.add_task("scan", total=None)
            for target in targets:
                result.add(
                    scanner.scan_paths(
                        target, lambda done, total: bar.update(task, completed=done, total=total)
                    )
                )
        result.sort()
    seconds = time.perf_counter() - started
    accepted = load_baseline(baseline) if baseline is not None else set()
    if update_baseline:
        assert baseline is not None
        count = write_baseline(baseline, result.findings)
        out.print(f"[green]✓[/] wrote {count} accepted finding(s) to {escape(str(baseline))}.")
        return
    new = {f.fingerprint for f in result.findings} - accepted
    summary = {
        "findings": len(result.findings),
        "new": sum(1 for f in result.findings if f.fingerprint in new),
        "files": result.files,
        "bytes": result.bytes,
        "seconds": round(seconds, 3),
        "skipped_binary": result.skipped_binary,
        "skipped_large": result.skipped_large,
        "fingerprints_keyed": key is not None,
    }
    if history:
        summary["commits"] = result.commits
    if ci:
        _record_ci_run(ctx, staged, history, targets, result.findings, summary, baseline)
    if fmt == "text" and output is None:
        _print_text(result.findings, new, summary)
    else:
        document = (
            to_sarif(result.findings) if fmt == "sarif" else to_json(result.findings, summary)
        )
        if output is not None:
            write_atomically(output, (json.dumps(document, indent=2) + "\n").encode(), mode=0o644)
            out.print(
                f"{summary['findings']} finding(s), {summary['new']} new; report in "
                f"{escape(str(output))}."
            )
        else:
            print_json(document)
    if summary["new"]:
        raise typer.Exit(EXIT_FINDINGS)
