#!/usr/bin/env bash
# Gateway benchmark: sets up .venv (Veil) and .venv-litellm (LiteLLM proxy, the anchor),
# then measures direct / aiohttp pass-through / Veil / LiteLLM against one upstream.
# Usage: bash bench/gateway/run.sh [--seconds 5] [--soak 600]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/bootstrap.sh "dev,server,fast"
if [ ! -x .venv-litellm/bin/litellm ]; then
  python3 -m venv .venv-litellm
  .venv-litellm/bin/python -m pip install --quiet --disable-pip-version-check 'litellm[proxy]'
fi
mkdir -p bench/results
.venv/bin/python bench/gateway/bench_gateway.py "$@" > bench/results/gateway.json
echo "results in bench/results/gateway.json"
