"""Benchmark: the issue-4 acceptance suite with the real engine, one JSON line per case.

The same phantoms as `tests/planning/test_plan_engine.py` (tumours 1 to 3.5 cm, 5 and 10 mm
margins, next to or away from a portal-vein branch and a bile duct), planned on the default
1 mm grid; prints status, coverage, the number of cycles and pairs, and the wall time.

    .venv/bin/python benchmarks/bench_ire_suite.py
"""

from __future__ import annotations

import json
import platform
import time

SUITE = [
    # (diameter mm, margin mm, vessel gap mm or None, duct gap mm or None)
    (10.0, 5.0, None, None),
    (10.0, 10.0, 0.0, None),
    (20.0, 5.0, 0.0, 2.0),
    (20.0, 10.0, None, None),
    (30.0, 5.0, 0.0, None),
    (35.0, 5.0, None, 2.0),
]


def case_for(diameter_mm, margin_mm, vessel_gap_mm, duct_gap_mm, spacing=1.0):
    from hepablate.phantoms import PhantomSpec, TubeSpec, TumourSpec, build_phantom

    tubes = []
    if vessel_gap_mm is not None:
        tubes.append(
            TubeSpec(
                name="portal_vein",
                radius_mm=4.0,
                direction=(0, 0, 1),
                side=(1, 0, 0),
                gap_mm=vessel_gap_mm,
            )
        )
    if duct_gap_mm is not None:
        tubes.append(
            TubeSpec(
                name="bile_duct",
                radius_mm=2.0,
                direction=(0, 0, 1),
                side=(0, 1, 0),
                gap_mm=duct_gap_mm,
            )
        )
    return build_phantom(
        PhantomSpec(
            spacing_mm=(spacing,) * 3,
            fov_mm=(220.0, 170.0, 110.0),
            tumours=[TumourSpec(id="T1", centre_lps_mm=(-45.0, 0.0, 0.0), diameter_mm=diameter_mm)],
            tubes=tubes,
            margin_mm=margin_mm,
        )
    )


def main() -> None:
    from hepablate.optimize import IrePlanOptions, plan_ire

    for diam, margin, vgap, dgap in SUITE:
        case = case_for(diam, margin, vgap, dgap)
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
                    "nonlinear_solves": p.metrics.extra.get("nonlinear_solves"),
                    "status_reason": p.status_reason,
                }
            ),
            flush=True,
        )
    print(json.dumps({"machine": platform.processor() or platform.machine(), "cases": len(SUITE)}))


if __name__ == "__main__":
    main()
