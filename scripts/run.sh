#!/usr/bin/env bash
# The one command that sets Veil up and runs its main job: the gateway (`veil serve`) on
# the embedded SQLite default. The first start creates the root key (in ./.env, mode
# 0600) and prints a first virtual key once. Extra arguments go to `veil serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh "server,fast"
exec .venv/bin/veil serve "$@"
