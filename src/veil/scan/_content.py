"""Scanning one text: the engine's findings and the code-review checks, with line and
column, inline allowances and per-path disabled rules applied."""

from __future__ import annotations

import bisect
import fnmatch
import logging
import re
from dataclasses import dataclass, field

import pathspec

from veil.detect import Detector, kind_info
from veil.scan._model import Fingerprinter, ScanFinding
from veil.scan._python_checks import CONFIG_SUFFIXES, config_http_issues, python_issues
from veil.scan._samples import is_sample_value
from veil.transform import mask_value

log = logging.getLogger("veil.scan")
_ALLOW = re.compile(r"veil:\s*allow(?:=([A-Za-z0-9_/,-]+))?")


@dataclass
class ContentScanner:
    """Everything needed to scan texts; built once per process."""

    detector: Detector
    fingerprint: Fingerprinter
    code_checks: bool = True
    disabled: list[tuple[str, pathspec.GitIgnoreSpec]] = field(default_factory=list)

    def _disabled(self, rule: str, kind: str, path: str) -> bool:
        return any(
            (fnmatch.fnmatchcase(rule, name) or fnmatch.fnmatchcase(kind, name))
            and spec.match_file(path)
            for name, spec in self.disabled
        )

    def scan(
        self,
        path: str,
        text: str,
        *,
        commit: str | None = None,
        line_offset: dict[int, int] | None = None,
    ) -> list[ScanFinding]:
        """Findings in ``text`` (the content of ``path``). ``line_offset`` maps a line of
        ``text`` to the file's line (history hunks)."""
        starts: list[int] | None = None
        lines: list[str] | None = None

        def position(offset: int) -> tuple[int, int]:
            nonlocal starts
            if starts is None:
                starts = [0, *(m.end() for m in re.finditer("\n", text))]
            index = bisect.bisect_right(starts, offset) - 1
            return index + 1, offset - starts[index] + 1

        def line_text(number: int) -> str:
            nonlocal lines
            if lines is None:
                lines = text.split("\n")
            return lines[number - 1] if 0 < number <= len(lines) else ""

        found: list[ScanFinding] = []
        for finding in self.detector.find(text):
            value = text[finding.start : finding.end]
            info = kind_info(finding.kind)
            secret = info is not None and info.secret
            if not secret and is_sample_value(finding.kind, value):
                continue  # alice@example.com, 555-0123, 127.0.0.1: what the fix advises
            rule = f"{'secret' if secret else 'pii'}/{finding.kind}"
            line, column = position(finding.start)
            if self._allowed(line_text(line), rule, finding.kind) or self._disabled(
                rule, finding.kind, path
            ):
                continue
            found.append(
                ScanFinding(
                    path=path,
                    line=line_offset.get(line, line) if line_offset else line,
                    column=column,
                    rule=rule,
                    kind=finding.kind,
                    fingerprint=self.fingerprint(rule, path, value),
                    shown=mask_value(value, finding.kind),
                    commit=commit,
                )
            )
        if self.code_checks and commit is None:
            suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
            issues = []
            try:
                if suffix == "py":
                    issues = python_issues(text)
                elif f".{suffix}" in CONFIG_SUFFIXES or path.endswith(".env"):
                    issues = config_http_issues(text)
            except Exception as exc:  # a check's bug must not cost the secret scan
                log.warning("code-review checks skipped for %s: %s", path, type(exc).__name__)
            for issue in issues:
                source_line = line_text(issue.line)
                if self._allowed(source_line, issue.rule, issue.rule) or self._disabled(
                    issue.rule, issue.rule, path
                ):
                    continue
                found.append(
                    ScanFinding(
                        path=path,
                        line=issue.line,
                        column=issue.column,
                        rule=issue.rule,
                        kind=issue.rule,
                        fingerprint=self.fingerprint(issue.rule, path, source_line.strip()),
                        shown=issue.message,
                        end_line=issue.end_line,
                    )
                )
        return found

    @staticmethod
    def _allowed(line: str, rule: str, kind: str) -> bool:
        if "veil:" not in line:
            return False
        match = _ALLOW.search(line)
        if match is None:
            return False
        if match.group(1) is None:
            return True
        allowed = {item.strip() for item in match.group(1).split(",")}
        return bool(allowed & {rule, kind, rule.split("/", 1)[-1]})
