#!/usr/bin/env bash
# Sets everything up, then runs hepablate's main job on the bundled IRE sample case:
# validate the case, then plan it (probes, protocol, coverage, report) into out/ire-perihilar/.
# Default 1 mm planning grid: about 1.5 minutes for both plans on a 2-core machine (docs/performance.md), plus
# a one-off ~20 s the first time while numba compiles the solver kernels.
# Then an anatomical example (torso phantom: ribs, lungs, vessel trees) with the laser planner
# into out/torso-laser-subcapsular/ (about 35 s at 1 mm on the same machine).
# examples/torso-ire-segment-vii (--modality ire) is not planned here: the IRE planner of this
# release finds no layout whose paths all clear its vessels, ducts, ribs and lung (issue 12;
# docs/planning-ire.md, "Why parallel layouts fail here").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/hepablate case check examples/ire-perihilar
.venv/bin/hepablate plan examples/ire-perihilar --modality ire --out out/ire-perihilar "$@"
echo "report: out/ire-perihilar/report.pdf (and report.html)"
.venv/bin/hepablate case check examples/torso-laser-subcapsular
.venv/bin/hepablate plan examples/torso-laser-subcapsular --modality laser \
  --out out/torso-laser-subcapsular
echo "report: out/torso-laser-subcapsular/report.pdf (and report.html)"
