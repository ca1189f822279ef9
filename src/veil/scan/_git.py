"""Git sources: the staged changes (pre-commit) and the history (every added line of every
reachable commit), read from ``git`` as a stream so memory stays flat."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from veil.errors import InputError


@dataclass
class Hunk:
    """Consecutive lines a commit (or the index) added to ``path``."""

    commit: str | None
    path: str
    lines: list[tuple[int, str]] = field(default_factory=list)


def _git(root: Path, *args: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            ["git", "-C", str(root), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError:
        raise InputError("git is not installed.", hint="Install git to scan history.") from None


def parse_diff(lines: Iterator[bytes], commit: str | None = None) -> Iterator[Hunk]:
    """Added-line hunks of a ``-U0`` unified diff; ``\\0commit SHA`` lines switch commit."""
    path: str | None = None
    hunk: Hunk | None = None
    line_number = 0
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line.startswith("\0commit "):
            if hunk is not None and hunk.lines:
                yield hunk
            hunk, path = None, None
            commit = line[8:].strip()
        elif line.startswith("+++ "):
            name = line[4:]
            path = None if name == "/dev/null" else name.removeprefix("b/")
        elif line.startswith("@@"):
            if hunk is not None and hunk.lines:
                yield hunk
            new = line.split("+", 1)[1].split(" ", 1)[0]
            line_number = int(new.split(",", 1)[0])
            hunk = Hunk(commit, path) if path is not None else None
        elif line.startswith("+") and hunk is not None:
            hunk.lines.append((line_number, line[1:]))
            line_number += 1
        elif line.startswith("diff --git"):
            if hunk is not None and hunk.lines:
                yield hunk
            hunk, path = None, None
    if hunk is not None and hunk.lines:
        yield hunk


def history_hunks(root: Path, since: str | None = None) -> Iterator[Hunk]:
    """Every added line of every reachable commit (or of ``since..HEAD``), oldest first."""
    revisions = [f"{since}..HEAD"] if since else ["--all"]
    process = _git(
        root,
        "log",
        "-p",
        "-U0",
        "--no-color",
        "--no-ext-diff",
        "--no-renames",
        "--reverse",
        "--format=%x00commit %H",
        *revisions,
    )
    assert process.stdout is not None
    yield from parse_diff(iter(process.stdout))
    process.stdout.close()
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.wait() != 0:
        raise InputError(
            f"git log failed: {error.strip()[:300]}",
            hint="Run it inside a git repository; check the --since revision.",
        )


def staged_files(root: Path) -> list[str]:
    result = subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "diff",
            "--cached",
            "--name-only",
            "-z",
            "--diff-filter=ACMR",
            "--no-renames",
        ],
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise InputError("Cannot read the staged changes.", hint="Run it inside a git repository.")
    return [name for name in result.stdout.decode("utf-8", "replace").split("\0") if name]


def staged_content(root: Path, path: str) -> bytes:
    result = subprocess.run(
        ["git", "-C", str(root), "show", f":{path}"], capture_output=True, check=False, timeout=120
    )
    return result.stdout if result.returncode == 0 else b""


def staged_added_lines(root: Path) -> dict[str, set[int]]:
    process = _git(
        root,
        "diff",
        "--cached",
        "-U0",
        "--no-color",
        "--no-ext-diff",
        "--no-renames",
        "--diff-filter=ACMR",
    )
    assert process.stdout is not None
    added: dict[str, set[int]] = {}
    for hunk in parse_diff(iter(process.stdout)):
        added.setdefault(hunk.path, set()).update(number for number, _ in hunk.lines)
    process.wait()
    return added


def tracked(root: Path) -> set[str]:
    result = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=False, timeout=300
    )
    return set(result.stdout.decode("utf-8", "replace").split("\0")) - {""}
