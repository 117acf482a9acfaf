#!/usr/bin/env bash
# Sets everything up, then runs hepablate's main job on the bundled IRE sample case.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/hepablate case check examples/ire-perihilar
