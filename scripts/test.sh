#!/usr/bin/env bash
# Sets everything up, then runs lint, the type check (mypy) and the (fast) test suite. Extra args go to pytest,
# e.g. `bash scripts/test.sh -m slow` for the long verification studies.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
if [ "$#" -eq 0 ]; then set -- -m "not slow"; fi
.venv/bin/python -m pytest -q "$@"
