"""Reports (human, JSON, SARIF 2.1.0) and baselines of accepted findings."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from veil import __version__
from veil._files import write_atomically
from veil.errors import InputError
from veil.scan._model import ScanFinding, rule_for

BASELINE_VERSION = 1
_SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)


def load_baseline(path: Path) -> set[str]:
    """Accepted fingerprints; a missing file is an empty baseline."""
    if not path.exists():
        return set()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != BASELINE_VERSION:
            raise ValueError("version")
        return {str(item["fingerprint"]) for item in data["findings"]}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(
            f"{path} is not a veil scan baseline.",
            hint="Write one with `veil scan --update-baseline --baseline FILE`.",
        ) from None


def write_baseline(path: Path, findings: Iterable[ScanFinding]) -> int:
    """The baseline accepting ``findings`` (fingerprints, rules and paths; no values)."""
    items = sorted(
        {(f.fingerprint, f.rule, f.path) for f in findings}, key=lambda item: (item[2], item[1])
    )
    data = {
        "version": BASELINE_VERSION,
        "tool": f"veil {__version__}",
        "findings": [{"fingerprint": fp, "rule": rule, "path": p} for fp, rule, p in items],
    }
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)
    return len(items)


def to_json(findings: list[ScanFinding], summary: dict[str, Any]) -> dict[str, Any]:
    return {"summary": summary, "findings": [f.to_dict() for f in findings]}


def to_sarif(findings: list[ScanFinding]) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, rule metadata for every rule that fired."""
    rule_ids = sorted({f.rule for f in findings})
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    rules = []
    for rule_id in rule_ids:
        rule = rule_for(rule_id)
        rules.append(
            {
                "id": rule.id,
                "name": rule.name,
                "shortDescription": {"text": rule.summary},
                "fullDescription": {"text": f"{rule.summary} {rule.fix}"},
                "help": {"text": rule.fix},
                "defaultConfiguration": {"level": rule.level},
                "properties": {"tags": ["security", "privacy"]},
            }
        )
    results = []
    for finding in findings:
        rule = rule_for(finding.rule)
        region: dict[str, Any] = {"startLine": finding.line, "startColumn": finding.column}
        if finding.end_line is not None and finding.end_line >= finding.line:
            region["endLine"] = finding.end_line
        result: dict[str, Any] = {
            "ruleId": rule.id,
            "ruleIndex": index[finding.rule],
            "level": rule.level,
            "message": {"text": f"{rule.summary} ({finding.shown}) {rule.fix}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": finding.path, "uriBaseId": "%SRCROOT%"},
                        "region": region,
                    }
                }
            ],
            "partialFingerprints": {"veilFingerprint/v1": finding.fingerprint},
        }
        if finding.commit is not None:
            result["properties"] = {"commit": finding.commit}
        results.append(result)
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "veil",
                        "version": __version__,
                        "informationUri": "https://github.com/veil/veil",
                        "rules": rules,
                    }
                },
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
