"""Which files a scan reads: git's view of the tree (tracked and untracked, not ignored)
or a directory walk honouring .gitignore; then .veilignore, size and binary filters."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pathspec

from veil.errors import InputError

BINARY_SNIFF = 8192
_ALWAYS_SKIPPED = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox"}


def git_root(path: Path) -> Path | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def _spec(path: Path) -> pathspec.GitIgnoreSpec | None:
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _git_files(root: Path, base: Path) -> list[str] | None:
    try:
        result = subprocess.run(
            [
                "git",
                "-C",
                str(base),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--full-name",
                ".",
            ],
            capture_output=True,
            check=False,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return [name for name in result.stdout.decode("utf-8", "replace").split("\0") if name]


def _walk(base: Path) -> Iterator[Path]:
    """A directory walk that honours .gitignore files on the way down."""
    stack: list[tuple[Path, list[tuple[Path, pathspec.GitIgnoreSpec]]]] = [(base, [])]
    while stack:
        directory, specs = stack.pop()
        own = _spec(directory / ".gitignore")
        if own is not None:
            specs = [*specs, (directory, own)]
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name in _ALWAYS_SKIPPED:
                continue
            path = Path(entry.path)
            is_dir = entry.is_dir(follow_symlinks=False)
            ignored = False
            for anchor, spec in specs:
                relative = path.relative_to(anchor).as_posix() + ("/" if is_dir else "")
                if spec.match_file(relative):
                    ignored = True
            if ignored:
                continue
            if is_dir:
                stack.append((path, specs))
            elif entry.is_file(follow_symlinks=False):
                yield path


def discover(target: Path) -> tuple[Path, list[Path]]:
    """``(root, files)``: paths are reported relative to ``root`` (the git work tree
    when ``target`` is inside one, else ``target`` itself)."""
    if not target.exists():
        raise InputError(f"{target} does not exist.", hint="Give a file or a directory.")
    if target.is_file():
        return target.parent, [target]
    root = git_root(target)
    if root is not None:
        names = _git_files(root, target)
        if names is not None:
            files = [root / name for name in names]
            return root, [f for f in files if f.is_file() and not f.is_symlink()]
    return target, list(_walk(target))


def veilignore(root: Path) -> pathspec.GitIgnoreSpec | None:
    return _spec(root / ".veilignore")


def is_binary(head: bytes) -> bool:
    return b"\0" in head[:BINARY_SNIFF]
