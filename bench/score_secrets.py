"""Score Veil's secret detection on gitleaks' own rule cases (../shared/bench-data/secrets).

Recall on ``label == "secret"`` and false-positive rate on ``label == "not_secret"``,
skipping rows judged by file name (``path``). A case counts as detected when Veil reports
any secret kind in it. The false-positive rate is also given without the not_secret cases
that another default gitleaks rule flags (``cross_rule_hit``: ambiguous, per the data's
README). Usage: python bench/score_secrets.py [--misses N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from veil.detect import CATALOG, Detector

DATA = Path(__file__).resolve().parents[2] / "shared/bench-data/secrets/gitleaks_cases.jsonl"


def is_secret_kind(kind: str) -> bool:
    info = CATALOG.get(kind)
    return info is None or info.secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--misses", type=int, default=0, help="print this many misses")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if "path" not in row]
    detector = Detector()
    started = time.perf_counter()
    hits = [any(is_secret_kind(f.kind) for f in detector.find(row["text"])) for row in rows]
    elapsed = time.perf_counter() - started
    positives = [
        (row, hit) for row, hit in zip(rows, hits, strict=True) if row["label"] == "secret"
    ]
    negatives = [
        (row, hit) for row, hit in zip(rows, hits, strict=True) if row["label"] != "secret"
    ]
    recall = sum(hit for _, hit in positives) / len(positives)
    fp_rate = sum(hit for _, hit in negatives) / len(negatives)
    # The data's README calls the not_secret cases that another default gitleaks rule flags
    # (``cross_rule_hit``) ambiguous: reported apart, the headline rate keeps them.
    clear = [hit for row, hit in negatives if not row.get("cross_rule_hit")]
    by_origin = {}
    for origin in ("literal", "template", "generated"):
        subset = [hit for row, hit in positives if row.get("origin") == origin]
        by_origin[origin] = round(sum(subset) / len(subset), 4) if subset else None
    missed_rules = Counter(row["rule"] for row, hit in positives if not hit)
    rules = {row["rule"] for row, _ in positives}
    covered = {row["rule"] for row, hit in positives if hit}
    report = {
        "cases_secret": len(positives),
        "cases_not_secret": len(negatives),
        "recall": round(recall, 4),
        "false_positive_rate": round(fp_rate, 4),
        "false_positive_rate_without_cross_rule_cases": round(sum(clear) / len(clear), 4),
        "cross_rule_cases": len(negatives) - len(clear),
        "recall_by_origin": by_origin,
        "rules_with_a_hit": f"{len(covered)}/{len(rules)}",
        "seconds": round(elapsed, 2),
        "most_missed_rules": missed_rules.most_common(15),
    }
    print(json.dumps(report, indent=2))
    if args.misses:
        for row, hit in positives:
            if not hit and args.misses > 0:
                args.misses -= 1
                print("MISS", row["rule"], repr(row["text"][:160]))
        for row, hit in negatives:
            if hit:
                found = [
                    (f.kind, row["text"][f.start : f.end][:40]) for f in detector.find(row["text"])
                ]
                cross = " (cross-rule)" if row.get("cross_rule_hit") else ""
                print("FP" + cross, row["rule"], repr(row["text"][:120]), found)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
