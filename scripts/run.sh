#!/usr/bin/env bash
# The one command that sets Veil up and runs its main job on the embedded SQLite default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh "server,fast"
.venv/bin/veil db upgrade
exec .venv/bin/veil doctor "$@"
