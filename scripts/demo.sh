#!/usr/bin/env bash
# Sets everything up, then runs hepablate's main job on the bundled IRE sample case:
# validate the case, then plan it (probes, protocol, coverage, report) into out/ire-perihilar/.
# The 2 mm planning grid keeps the run to a couple of minutes on a 2-core machine (see
# docs/performance.md); pass --grid 1 for the default resolution.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/hepablate case check examples/ire-perihilar
.venv/bin/hepablate plan examples/ire-perihilar --modality ire --out out/ire-perihilar --grid 2 "$@"
echo "report: out/ire-perihilar/report.pdf (and report.html)"
