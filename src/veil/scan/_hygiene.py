"""Repository hygiene: files that usually hold secrets, tracked or world-readable."""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

from veil.scan._model import CODE_RULES, Fingerprinter, ScanFinding

SENSITIVE_FILES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "credentials.json",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    ".netrc",
    ".pgpass",
)
_HARMLESS = (".env.example", ".env.sample", ".env.template", ".env.dist", "*.pub")


def sensitive_file(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatchcase(base, pattern) for pattern in _HARMLESS):
        return False
    return any(fnmatch.fnmatchcase(base, pattern) for pattern in SENSITIVE_FILES)


def hygiene_findings(
    root: Path, files: list[Path], in_git: bool, tracked: set[str], fingerprint: Fingerprinter
) -> list[ScanFinding]:
    found: list[ScanFinding] = []
    candidates = {f for f in files if sensitive_file(f.name)}
    # Ignored secret files at the top are not in the file list; their mode still matters.
    candidates |= {p for p in root.glob(".env*") if p.is_file() and sensitive_file(p.name)}
    for path in sorted(candidates):
        relative = path.relative_to(root).as_posix()
        if in_git and path in files:
            how = "tracked by git" if relative in tracked else "not covered by .gitignore"
            rule = CODE_RULES["VEIL010"]
            found.append(
                ScanFinding(
                    relative, 1, 1, rule.id, rule.id, fingerprint(rule.id, relative, how), how
                )
            )
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if os.name == "posix" and mode & 0o077:
            rule = CODE_RULES["VEIL011"]
            shown = f"mode {stat.S_IMODE(mode):04o}"
            found.append(
                ScanFinding(
                    relative, 1, 1, rule.id, rule.id, fingerprint(rule.id, relative, "mode"), shown
                )
            )
    return found
