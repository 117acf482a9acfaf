#!/usr/bin/env bash
# Regenerates the bundled sample cases in examples/ from the deterministic phantom builder.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/hepablate phantom --preset ire --out examples/ire-perihilar
.venv/bin/hepablate phantom --preset laser --out examples/laser-peripheral
