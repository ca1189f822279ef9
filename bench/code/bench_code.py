"""Code anonymization benchmark: standard-library modules anonymized together with their
own tests; the tests run on the original and on the anonymized copy.

Usage: python bench/code/bench_code.py > result.json
Each project runs twice: with the default `strings="refs"` (names renamed in strings where
the text refers to the code) and with `strings="all"` (every word that is a renamed name).
For each project: tests run/passed before and after, identifiers the project defines and
how many were renamed, renamed identifiers of three or more letters still present in the
output as whole words (they can only survive inside string literals, as words of data;
`renamed_left_as_code` counts any left as a name token, which must be 0), one- and
two-letter ones left in strings, comment words left (comments become markers), lines/s of
the anonymizer (engine on string literals included).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import tokenize
from pathlib import Path
from typing import Any

from veil.transform import shared_detector
from veil.transform.code import LiteralTransformer, PythonAnonymizer, SourceFile

STDLIB = Path(sysconfig.get_paths()["stdlib"])
PROJECTS = [
    "textwrap",
    "colorsys",
    "fnmatch",
    "shlex",
    "graphlib",
    "string",
    "bisect",
    "glob",
    "getopt",
    "calendar",
]
_RESULT = re.compile(r"Ran (\d+) tests?.*?\n\n(OK|FAILED)[^\n]*", re.S)


def run_tests(directory: Path, test_module: str) -> dict[str, Any]:
    # Tests that start the module in a child interpreter (`python -I -m calendar`) find
    # it only on sys.path: a .pth file makes the copy importable there, as installing a
    # project would (the original's name resolves to the standard library first anyway).
    pth = Path(sysconfig.get_paths()["purelib"]) / "veil-code-bench.pth"
    pth.write_text(f"{directory}\n")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "unittest", test_module],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    finally:
        pth.unlink(missing_ok=True)
    match = _RESULT.search(done.stderr)
    ran = int(match.group(1)) if match else 0
    failures = re.search(r"failures=(\d+)", done.stderr)
    errors = re.search(r"errors=(\d+)", done.stderr)
    skipped = re.search(r"skipped=(\d+)", done.stderr)
    bad = sum(int(m.group(1)) for m in (failures, errors) if m)
    return {
        "ran": ran,
        "passed": ran - bad - (int(skipped.group(1)) if skipped else 0),
        "ok": done.returncode == 0,
    }


def project(name: str, strings: str = "refs") -> dict[str, Any]:
    module, test = STDLIB / f"{name}.py", STDLIB / "test" / f"test_{name}.py"
    sources = [
        SourceFile(f"{name}.py", module.read_text()),
        SourceFile(f"test_{name}.py", test.read_text()),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        original, anonymized = Path(tmp) / "original", Path(tmp) / "anonymized"
        original.mkdir()
        anonymized.mkdir()
        for source in sources:
            (original / source.path).write_text(source.text)
        before = run_tests(original, f"test_{name}")
        started = time.perf_counter()
        result = PythonAnonymizer(
            literals=LiteralTransformer(shared_detector()), strings=strings
        ).anonymize(sources)
        seconds = time.perf_counter() - started
        for file in result.files:
            (anonymized / file.path).write_text(file.text)
        after = run_tests(anonymized, f"test_{name}")
    output = "\n".join(f.text for f in result.files)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", output))
    renamed_names = set(result.code_map.names.values())
    left_everywhere = renamed_names & words
    # One- and two-letter names are not renamed inside strings by design ("r", "%s").
    left = sorted(n for n in left_everywhere if len(n) >= 3)
    code_names = {
        token.string
        for file in result.files
        for token in tokenize.generate_tokens(io.StringIO(file.text).readline)
        if token.type == tokenize.NAME
    }
    comment_words = {
        w
        for marker, text in result.code_map.markers.items()
        if marker.startswith("#")
        for w in re.findall(r"[A-Za-z]{5,}", text)
    }
    identifiers = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", "".join(s.text for s in sources)))
    comment_only = comment_words - identifiers
    lines = sum(s.text.count("\n") + 1 for s in sources)
    round_trip = all(
        result.code_map.restore(a.text) == s.text
        for a, s in zip(result.files, sources, strict=True)
    )
    return {
        "project": name,
        "strings": strings,
        "lines": lines,
        "tests_before": before,
        "tests_after": after,
        "identifiers_defined": result.defined,
        "identifiers_renamed": result.renamed,
        "renamed_share": round(result.renamed / result.defined, 3),
        "renamed_left_in_output": len(left),
        "renamed_left_examples": left[:8],
        "short_names_left_in_strings": len(left_everywhere) - len(left),
        "renamed_left_as_code": len(renamed_names & code_names),
        "comment_words_left": len(comment_only & words),
        "round_trip_exact": round_trip,
        "lines_per_s": round(lines / seconds),
    }


def main() -> None:
    results = []
    for name in PROJECTS:
        if not (STDLIB / "test" / f"test_{name}.py").exists():
            continue
        entry = project(name)
        results.append(entry)
        # The other policy: every renamed name of 3+ letters renamed in strings too.
        strict = project(name, "all")
        entry["strings_all"] = {
            key: strict[key]
            for key in ("tests_after", "renamed_left_in_output", "renamed_left_as_code")
        }
        print(
            json.dumps({k: v for k, v in entry.items() if k != "renamed_left_examples"}),
            file=sys.stderr,
        )
    json.dump({"python": sys.version.split()[0], "projects": results}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    shutil.rmtree(Path(tempfile.gettempdir()) / "veil-code-bench", ignore_errors=True)


if __name__ == "__main__":
    main()
