#!/usr/bin/env bash
# Regenerates the bundled sample cases in examples/ from the deterministic phantom builders.
# The anatomical examples are cases of the anatomical suite (src/hepablate/data/anatomy_suite.yaml)
# on 2 mm voxels (about 2.6 MB each); tests/foundation/test_anatomical_examples.py checks that
# regenerating gives the same images.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/hepablate phantom --preset ire --out examples/ire-perihilar
.venv/bin/hepablate phantom --preset laser --out examples/laser-peripheral
.venv/bin/hepablate phantom --preset suite --suite-case torso-ire-posterior-25 --out examples/torso-ire-segment-vii
.venv/bin/hepablate phantom --preset suite --suite-case torso-laser-subcapsular-20 --out examples/torso-laser-subcapsular
