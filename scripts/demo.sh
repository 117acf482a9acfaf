#!/usr/bin/env bash
# Sets everything up, then runs hepablate's main job on the bundled IRE sample case:
# validate the case, then plan it (probes, protocol, coverage, report) into out/ire-perihilar/.
# Default 1 mm planning grid: about 1 minute on a 2-core machine (docs/performance.md), plus
# a one-off ~20 s the first time while numba compiles the solver kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/hepablate case check examples/ire-perihilar
.venv/bin/hepablate plan examples/ire-perihilar --modality ire --out out/ire-perihilar "$@"
echo "report: out/ire-perihilar/report.pdf (and report.html)"
