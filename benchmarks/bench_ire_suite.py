"""Benchmark: the issue-4 acceptance suite with the real engine, one JSON line per case.

The phantoms of `hepablate.phantoms.IRE_PLANNING_SUITE`, as in
`tests/planning/test_plan_engine.py` (tumours 1 to 3.5 cm, 5 and 10 mm margins, next to or
away from a portal-vein branch and a bile duct), planned on the default 1 mm grid; prints
status, coverage, the number of cycles and pairs, and the wall time.

    .venv/bin/python benchmarks/bench_ire_suite.py
"""

from __future__ import annotations

import json
import platform
import time


def main() -> None:
    from hepablate.optimize import IrePlanOptions, plan_ire
    from hepablate.phantoms import IRE_PLANNING_SUITE, build_phantom, ire_suite_spec

    for diam, margin, vgap, dgap in IRE_PLANNING_SUITE:
        case = build_phantom(ire_suite_spec(diam, margin, vgap, dgap, spacing_mm=1.0))
        t0 = time.perf_counter()
        res = plan_ire(case, IrePlanOptions(grid_spacing_mm=1.0, monte_carlo_samples=16))
        wall = time.perf_counter() - t0
        p = res.plan
        print(
            json.dumps(
                {
                    "tumour_diameter_mm": diam,
                    "margin_mm": margin,
                    "vessel_gap_mm": vgap,
                    "duct_gap_mm": dgap,
                    "wall_s": round(wall, 1),
                    "status": p.status,
                    "target_coverage": p.metrics.target_coverage,
                    "tumour_coverage": p.metrics.tumour_coverage,
                    "probes": len({x.id for x in p.probes}),
                    "cycles": len({x.cycle for x in p.probes}),
                    "pairs": len(p.pairs),
                    "max_current_a": max(
                        (x.predicted_current_a or 0 for x in p.pairs), default=None
                    ),
                    "thermal_damage_warnings": sorted(
                        {w.code for w in p.warnings if w.code.startswith("thermal_damage")}
                    ),
                    "nonlinear_solves": (p.planning.stats if p.planning else {}).get(
                        "nonlinear_solves"
                    ),
                    "status_reason": p.status_reason,
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "cases": len(IRE_PLANNING_SUITE),
            }
        )
    )


if __name__ == "__main__":
    main()
