#!/usr/bin/env bash
# Creates .venv/ in the repository root with hepablate and its pinned dependencies.
# Idempotent: a second run only re-installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
      PY=$cand; break
    fi
  done
fi
if [ -z "$PY" ]; then echo "error: Python >= 3.11 not found (set PYTHON=...)" >&2; exit 2; fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.hepablate-lock
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # pip's warnings about unreachable extra index locations are noise; real errors still show.
  quiet_pip() { .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
  quiet_pip --upgrade pip
  quiet_pip -r requirements.lock
  quiet_pip --no-deps -e .
  echo "$want" > "$stamp"
fi
.venv/bin/hepablate --version
