"""What a scan reports: rules (with ids, explanations and fixes) and findings."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from veil.detect import CATALOG


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    summary: str
    fix: str
    level: str = "error"  # SARIF level: error, warning, note


CODE_RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "VEIL001",
            "sensitive-value-logged",
            "A logging call or print interpolates a value named like a secret or message content.",
            "Log an identifier or a digest instead, or install veil.logging's sanitizing filter.",
        ),
        Rule(
            "VEIL002",
            "hard-coded-credential",
            "A string literal is assigned or passed to a name that holds a credential.",
            "Read it from the environment or a secret store (veil vault).",
        ),
        Rule(
            "VEIL003",
            "insecure-http-endpoint",
            "A plain http:// endpoint off this machine: traffic and credentials travel "
            "unencrypted.",
            "Use https:// (plain http is fine for localhost and 127.0.0.1).",
            "warning",
        ),
        Rule(
            "VEIL004",
            "tls-verification-disabled",
            "verify=False turns off certificate checks: anyone on the path can read and "
            "change the traffic.",
            "Remove verify=False; pass verify='/path/to/ca.pem' for a private CA.",
        ),
        Rule(
            "VEIL005",
            "unsafe-deserialization",
            "pickle.load / yaml.load without a safe loader runs code from the data.",
            "Use json, or yaml.safe_load; unpickle only data you produced and signed.",
        ),
        Rule(
            "VEIL010",
            "sensitive-file-in-repository",
            "A file that usually holds secrets (.env, *.pem, *.key, credentials.json) is "
            "tracked by git or not covered by .gitignore.",
            "git rm --cached the file, add it to .gitignore and rotate what it held.",
        ),
        Rule(
            "VEIL011",
            "sensitive-file-permissions",
            "A file that usually holds secrets is readable by group or others.",
            "chmod 600 the file.",
            "warning",
        ),
    )
}


def detection_rule(kind: str) -> Rule:
    """The rule of a detected kind: ``secret/GITHUB_TOKEN``, ``pii/EMAIL``."""
    info = CATALOG.get(kind)
    secret = info is not None and info.secret
    description = info.description if info is not None else kind.lower().replace("_", " ")
    if secret:
        return Rule(
            f"secret/{kind}",
            kind.lower().replace("_", "-"),
            f"A {description} is written in the file.",
            "Remove it, rotate it (it is in the history now), and load it from the "
            "environment or a secret store.",
        )
    return Rule(
        f"pii/{kind}",
        kind.lower().replace("_", "-"),
        f"Personal data ({description}) is written in the file.",
        "Remove it or replace it with a value reserved for examples (name@example.com, "
        "555-0100 to 555-0199, 192.0.2.x, test card numbers), which are not reported.",
        "warning",
    )


def rule_for(rule_id: str) -> Rule:
    if rule_id in CODE_RULES:
        return CODE_RULES[rule_id]
    return detection_rule(rule_id.split("/", 1)[-1])


@dataclass(frozen=True, slots=True)
class ScanFinding:
    """One finding: where, what, and a fingerprint (a keyed hash, never the value)."""

    path: str
    line: int
    column: int
    rule: str
    kind: str
    fingerprint: str
    shown: str  # the value masked (sk-…a1f), or the check's message
    commit: str | None = None
    end_line: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "shown": self.shown,
        }
        if self.commit is not None:
            data["commit"] = self.commit
        return data


class Fingerprinter:
    """HMAC-SHA-256 of rule, path and value under ``VEIL_SCAN_KEY`` (or an unkeyed,
    domain-separated SHA-256 when no key is set: fine for random secrets, guessable for
    short personal data — set the key when baselines leave the machine)."""

    def __init__(self, key: bytes | None) -> None:
        self.keyed = key is not None
        self._key = key if key is not None else b"veil-scan-fingerprint-v1"

    def __repr__(self) -> str:
        return f"Fingerprinter(keyed={self.keyed})"

    def __call__(self, rule: str, path: str, value: str) -> str:
        message = f"{rule}\0{path}\0{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]
