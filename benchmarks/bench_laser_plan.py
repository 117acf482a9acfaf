"""Benchmark: a complete laser plan (search, confirmation, sensitivity, Monte Carlo, report)
for the bundled 3.5 cm tumour phantom at a 1 mm planning grid. Prints JSON.

Usage: .venv/bin/python benchmarks/bench_laser_plan.py
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from pathlib import Path

import hepablate
from hepablate.optimize.laser import LaserPlanOptions
from hepablate.phantoms import build_phantom, laser_example_spec


def main() -> None:
    case = build_phantom(laser_example_spec())
    with tempfile.TemporaryDirectory() as tmp:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        ev = hepablate.plan(case, "laser", LaserPlanOptions())
        hepablate.write_outputs(ev, Path(tmp) / "plan")
        plan = ev.plan
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    m = plan.metrics
    stats = plan.planning.stats if plan.planning else {}
    print(
        json.dumps(
            {
                "benchmark": "laser_plan_3_5cm_tumour_1mm",
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "status": plan.status,
                "fibres": len(plan.fibres),
                "steps": len({i.step for i in plan.illuminations}),
                "energy_per_illumination_j": stats.get("energy_per_illumination_j"),
                "total_energy_j": m.extra.get("total_energy_j"),
                "target_coverage": m.target_coverage,
                "min_margin_mm": m.min_margin_mm,
                "ablation_volume_ml": m.ablation_volume_ml,
                "non_target_liver_ml": m.non_target_liver_ml,
                "coverage_probability": m.coverage_probability,
                "sensitivity_volume_range_pct": m.extra.get("sensitivity.volume_range_pct"),
                "planner_runs": stats.get("planner_runs"),
                "warnings": sorted({w.code for w in plan.warnings}),
                "cpu_count": os.cpu_count(),
                "load_avg_1min": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
