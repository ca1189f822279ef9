"""Scan orchestration: files in parallel (a process pool, one detector per process),
staged changes, git history; ``veil.toml`` settings; results in a stable order."""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import os
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

from veil.detect import CATALOG, Detector, load_recognizer_file
from veil.errors import InputError
from veil.scan import _git
from veil.scan._content import ContentScanner
from veil.scan._files import discover, git_root, is_binary, veilignore
from veil.scan._hygiene import hygiene_findings
from veil.scan._model import CODE_RULES, Fingerprinter, ScanFinding

DEFAULT_MAX_SIZE = 2 * 1024 * 1024
_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass
class ScanOptions:
    pii: bool = False
    code_checks: bool = True
    max_size: int = DEFAULT_MAX_SIZE
    workers: int = 0  # 0: one per CPU
    recognizers: Path | None = None
    fingerprint_key: bytes | None = None
    disabled: list[tuple[str, list[str]]] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)


@dataclass
class ScanResult:
    findings: list[ScanFinding] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    commits: int = 0  # with --git: the commits whose added lines were scanned

    def add(self, other: ScanResult) -> None:
        self.findings += other.findings
        self.files += other.files
        self.bytes += other.bytes
        self.skipped_binary += other.skipped_binary
        self.skipped_large += other.skipped_large
        self.commits += other.commits

    def sort(self) -> None:
        self.findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule))


def read_config(root: Path, options: ScanOptions) -> ScanOptions:
    """``[scan]`` in ``veil.toml``: ``max_size``, ``exclude`` globs and
    ``[[scan.disable]]`` entries (``rule`` and ``paths``)."""
    path = root / "veil.toml"
    if not path.is_file():
        return options
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {exc}.", hint="Fix the TOML syntax.") from None
    for key in data:
        if key != "scan":
            raise InputError(
                f"{path}: [{key}] is not a section of veil.toml{_did_you_mean(key, ['scan'])}; "
                "it would be ignored.",
                hint="veil.toml has one section, [scan] (see docs/scan.md).",
            )
    scan: Any = data.get("scan", {})
    if not isinstance(scan, dict):
        raise InputError(f"{path}: [scan] must be a table.")
    for key in scan:
        if key not in _SCAN_KEYS:
            raise InputError(
                f"{path}: scan.{key} is not a setting{_did_you_mean(key, _SCAN_KEYS)}; it "
                "would be ignored.",
                hint=f"[scan] takes {', '.join(_SCAN_KEYS)} (see docs/scan.md).",
            )
    if "max_size" in scan:
        if not isinstance(scan["max_size"], int) or scan["max_size"] <= 0:
            raise InputError(f"{path}: scan.max_size must be a positive number of bytes.")
        options.max_size = scan["max_size"]
    exclude = scan.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise InputError(f"{path}: scan.exclude must be a list of globs.")
    options.exclude += exclude
    for index, entry in enumerate(scan.get("disable", [])):
        rule, paths = (
            (entry.get("rule"), entry.get("paths")) if isinstance(entry, dict) else (None, None)
        )
        if (
            not isinstance(rule, str)
            or not isinstance(paths, list)
            or not all(isinstance(p, str) for p in paths)
        ):
            raise InputError(
                f'{path}: scan.disable[{index}] needs rule = "ID or KIND" and '
                'paths = ["glob", ...].'
            )
        _check_rule(path, index, rule, options)
        options.disabled.append((rule, paths))
    return options


_SCAN_KEYS = ("max_size", "exclude", "disable")


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _check_rule(path: Path, index: int, rule: str, options: ScanOptions) -> None:
    """A disable entry must name a rule id or kind (a glob must match one): a misspelt
    `VEIL02` or `secret/OPENAI_KEY` would disable nothing, without a word."""
    kinds = set(CATALOG)
    if options.recognizers is not None:
        kinds |= {spec.kind for spec in load_recognizer_file(options.recognizers)}
    known = {*CODE_RULES, *kinds}
    known |= {
        f"{'secret' if kind in CATALOG and CATALOG[kind].secret else 'pii'}/{kind}"
        for kind in kinds
    }
    if any(fnmatch.fnmatchcase(name, rule) for name in known):
        return
    raise InputError(
        f"{path}: scan.disable[{index}]: no rule or kind is named {rule!r}"
        f"{_did_you_mean(rule, known)}, so it would disable nothing.",
        hint=f"Rules: {', '.join(sorted(CODE_RULES))}, secret/KIND, pii/KIND or a KIND "
        "(`veil detect --list-kinds`); globs like secret/* work.",
    )


def build_content_scanner(options: ScanOptions) -> ContentScanner:
    kinds = None if options.pii else [kind for kind, info in CATALOG.items() if info.secret]
    detector = Detector(extra=options.recognizers, kinds=kinds)
    disabled = [
        (rule, pathspec.GitIgnoreSpec.from_lines(paths)) for rule, paths in options.disabled
    ]
    return ContentScanner(
        detector, Fingerprinter(options.fingerprint_key), options.code_checks, disabled
    )


_WORKER: ContentScanner | None = None


def _init_worker(options: ScanOptions) -> None:
    global _WORKER
    _WORKER = build_content_scanner(options)


def _scan_files(
    root: Path, names: list[str], max_size: int, scanner: ContentScanner | None = None
) -> ScanResult:
    scanner = scanner or _WORKER
    assert scanner is not None
    result = ScanResult()
    for name in names:
        path = root / name
        try:
            size = path.stat().st_size
            if size > max_size:
                result.skipped_large += 1
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if is_binary(data):
            result.skipped_binary += 1
            continue
        result.files += 1
        result.bytes += len(data)
        result.findings += scanner.scan(name, data.decode("utf-8", "replace"))
    return result


def _chunks(root: Path, names: list[str]) -> Iterable[list[str]]:
    chunk: list[str] = []
    size = 0
    for name in names:
        chunk.append(name)
        with contextlib.suppress(OSError):
            size += (root / name).stat().st_size
        if size >= _CHUNK_BYTES or len(chunk) >= 256:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _excluded(root: Path, options: ScanOptions) -> Callable[[str], bool]:
    """Whether a path (relative, POSIX) is left out: ``.veilignore`` and ``exclude`` in
    ``veil.toml``, the same for files, staged changes and history."""
    ignore = veilignore(root)
    extra = pathspec.GitIgnoreSpec.from_lines(options.exclude)
    return lambda name: (ignore is not None and ignore.match_file(name)) or extra.match_file(name)


class Scanner:
    def __init__(self, options: ScanOptions | None = None) -> None:
        self.options = options or ScanOptions()

    def __repr__(self) -> str:
        return f"Scanner(pii={self.options.pii}, code_checks={self.options.code_checks})"

    def scan_paths(
        self, target: Path, progress: Callable[[int, int], None] | None = None
    ) -> ScanResult:
        """Files under ``target``; ``progress(done, total)`` after each batch."""
        root, files = discover(target.resolve())
        options = read_config(root, self.options)
        excluded = _excluded(root, options)
        names = []
        for path in files:
            name = path.relative_to(root).as_posix()
            if not excluded(name):
                names.append(name)
        result = ScanResult()
        workers = options.workers or os.cpu_count() or 1
        chunks = list(_chunks(root, names))
        if workers == 1 or len(chunks) <= 1:
            scanner = build_content_scanner(options)
            for index, chunk in enumerate(chunks):
                result.add(_scan_files(root, chunk, options.max_size, scanner))
                if progress is not None:
                    progress(index + 1, len(chunks))
        else:
            with ProcessPoolExecutor(
                workers, initializer=_init_worker, initargs=(options,)
            ) as pool:
                futures = [
                    pool.submit(_scan_files, root, chunk, options.max_size) for chunk in chunks
                ]
                for index, future in enumerate(futures):
                    result.add(future.result())
                    if progress is not None:
                        progress(index + 1, len(chunks))
        in_git = _git_root_is(root)
        tracked = _git.tracked(root) if in_git else set()
        kept = {root / name for name in names}
        result.findings += hygiene_findings(
            root,
            [f for f in files if f in kept],
            in_git,
            tracked,
            Fingerprinter(options.fingerprint_key),
        )
        result.sort()
        return result

    def scan_text(self, text: str, name: str = "<stdin>") -> ScanResult:
        scanner = build_content_scanner(self.options)
        return ScanResult(scanner.scan(name, text), files=1, bytes=len(text.encode()))

    def _repository(self, repo: Path, why: str) -> tuple[Path, ScanOptions, ContentScanner]:
        root = git_root(repo)
        if root is None:
            raise InputError(f"{repo} is not inside a git repository.", hint=why)
        options = read_config(root, self.options)
        return root, options, build_content_scanner(options)

    def scan_staged(self, repo: Path) -> ScanResult:
        """The staged version of each staged file; findings on lines the commit adds."""
        root, options, scanner = self._repository(
            repo, "--staged scans what `git commit` would record."
        )
        added = _git.staged_added_lines(root)
        excluded = _excluded(root, options)
        result = ScanResult()
        for name in _git.staged_files(root):
            if excluded(name):
                continue
            data = _git.staged_content(root, name)
            if len(data) > options.max_size:
                result.skipped_large += 1
                continue
            if is_binary(data):
                result.skipped_binary += 1
                continue
            result.files += 1
            result.bytes += len(data)
            lines = added.get(name, set())
            result.findings += [
                f for f in scanner.scan(name, data.decode("utf-8", "replace")) if f.line in lines
            ]
        result.sort()
        return result

    def scan_history(self, repo: Path, since: str | None = None) -> ScanResult:
        """Every line added by a reachable commit; each finding once, at the commit
        that introduced it."""
        root, options, scanner = self._repository(repo, "--git scans the history of a repository.")
        excluded = _excluded(root, options)
        seen: set[str] = set()
        paths: set[str] = set()
        commits: set[str | None] = set()
        result = ScanResult()
        for hunk in _git.history_hunks(root, since):
            if excluded(hunk.path):
                continue
            paths.add(hunk.path)
            commits.add(hunk.commit)
            text = "\n".join(line for _, line in hunk.lines)
            result.bytes += len(text.encode())
            mapping = {index: number for index, (number, _) in enumerate(hunk.lines, 1)}
            for finding in scanner.scan(hunk.path, text, commit=hunk.commit, line_offset=mapping):
                if finding.fingerprint not in seen:
                    seen.add(finding.fingerprint)
                    result.findings.append(finding)
        result.files, result.commits = len(paths), len(commits)
        result.sort()
        return result


def _git_root_is(root: Path) -> bool:
    found = git_root(root)
    return found is not None and found.resolve() == root.resolve()
