"""``veil scan``: secrets and personal data in files, staged changes and git history; the
privacy code-review checks; baselines; text, JSON and SARIF reports.

Uses the engine's recognizers (no second list of patterns).
"""

from __future__ import annotations

from veil.scan._hygiene import sensitive_file
from veil.scan._model import CODE_RULES, Fingerprinter, Rule, ScanFinding, rule_for
from veil.scan._python_checks import python_issues
from veil.scan._report import load_baseline, to_json, to_sarif, write_baseline
from veil.scan._scanner import DEFAULT_MAX_SIZE, Scanner, ScanOptions, ScanResult

__all__ = [
    "CODE_RULES",
    "DEFAULT_MAX_SIZE",
    "Fingerprinter",
    "Rule",
    "ScanFinding",
    "ScanOptions",
    "ScanResult",
    "Scanner",
    "load_baseline",
    "python_issues",
    "rule_for",
    "sensitive_file",
    "to_json",
    "to_sarif",
    "write_baseline",
]
