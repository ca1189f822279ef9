#!/usr/bin/env bash
# The one command that sets up and runs the whole test suite: lint, format, types, tests.
# Tests that need PostgreSQL or Redis read VEIL_TEST_POSTGRES_URL / VEIL_TEST_REDIS_URL and
# skip without them (unless VEIL_REQUIRE_SERVICES=1, as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh "dev,server,fast"
export PATH="$PWD/.venv/bin:$PATH"
echo "==> ruff check";          ruff check src tests bench
echo "==> ruff format --check"; ruff format --check src tests bench
echo "==> mypy --strict";       mypy --strict src/veil
echo "==> pytest";              exec pytest -n "${VEIL_TEST_WORKERS:-2}" "$@"
