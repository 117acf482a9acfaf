"""Python API walk-through, laser: load a case, plan, change the energy, evaluate, report.

    .venv/bin/python examples/python/laser_walkthrough.py [CASE_DIR] [--grid MM] [--out DIR]

Defaults: the bundled sample case examples/laser-peripheral at a 2 mm grid, outputs under
out/walkthrough-laser/. docs/python-api.md explains each step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import hepablate

here = Path(__file__).resolve().parent
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("case", nargs="?", default=here.parent / "laser-peripheral", type=Path)
ap.add_argument("--grid", type=float, default=2.0, help="planning grid spacing (mm)")
ap.add_argument("--out", type=Path, default=Path("out/walkthrough-laser"))
args = ap.parse_args()

# 1. Load and plan (fast settings: no optical sensitivity runs, 16 Monte Carlo samples).
case = hepablate.load_case(args.case)
opts = hepablate.LaserPlanOptions(
    grid_spacing_mm=args.grid, search_spacing_mm=3.0, sensitivity=False, monte_carlo_samples=16
)
planned = hepablate.plan(case, "laser", opts)
print("planned:", planned.status, planned.metrics.target_coverage, planned.delivery_text())

# 2. Edit: shorten every illumination by a third (less energy per fibre).
edited = planned.plan.model_copy(deep=True)
for il in edited.illuminations:
    il.duration_s = round(il.duration_s * 2 / 3, 1)
    il.energy_j = None  # recomputed from power x duration

# 3. Evaluate the edited plan.
less = hepablate.evaluate(case, edited)
for name in ("target_coverage", "tumour_coverage", "min_margin_mm", "ablation_volume_ml"):
    print(f"{name:20s} {getattr(planned.metrics, name)!s:>8} -> {getattr(less.metrics, name)}")
print("criteria failing:", [r.code for r in less.plan.criteria if not r.passed])
print("status:", less.status, less.plan.status_reason[:120])

# 4. The temperature map behind the zone.
tmax = less.volume("temperature_max_c")
print(f"maximum temperature {float(tmax.array.max()):.1f} degC")

# 5. Outputs.
written = hepablate.write_outputs(less, args.out)
print("wrote", ", ".join(p.name for p in written))
