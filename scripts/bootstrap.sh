#!/usr/bin/env bash
# Creates .venv (once) and installs Veil into it with the given extras. Idempotent and
# quick when nothing changed: it reinstalls only when pyproject.toml or the extras change.
# Usage: bash scripts/bootstrap.sh EXTRAS   (for example "server" or "dev,server")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found; install Python 3.11 or newer (or set PYTHON=...)" >&2
  exit 4
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Veil needs Python 3.11 or newer; $python is $("$python" -V 2>&1)" >&2
  exit 4
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$python" -V 2>&1)"
  if ! "$python" -m venv .venv 2>/dev/null; then
    # Debian ships venv without ensurepip unless python3-venv is installed: fall back to
    # the system pip, which can install into another interpreter's environment.
    rm -rf .venv
    "$python" -m venv --without-pip .venv
    if ! "$python" -m pip --version >/dev/null 2>&1; then
      echo "error: cannot create a virtual environment with pip in it." >&2
      echo "fix:   sudo apt-get install python3-venv   (then run this command again)" >&2
      rm -rf .venv
      exit 4
    fi
    "$python" -m pip --python .venv/bin/python install --quiet --upgrade pip
  fi
fi

stamp=".venv/.veil-installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16) extras=$extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> installing veil[${extras}] into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
  echo "$want" > "$stamp"
fi
