"""Benchmark: complete, confirmed IRE plans vs tumour size (issue 4).

A tumour of diameter D cm with a 5 mm margin next to a portal-vein branch (gap 1 mm, radius
5 mm), planned on a G mm grid with the real engine (constant-model search + nonlinear
confirmation + Monte Carlo robustness). Prints one JSON object per size, then a summary.

    .venv/bin/python benchmarks/bench_ire_plan.py --sizes 1 2 3 4 5 --grid 1.0
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--grid", type=float, default=1.0)
    ap.add_argument("--mc", type=int, default=64)
    args = ap.parse_args()

    from hepablate.optimize import IrePlanOptions, plan_ire
    from hepablate.phantoms import PhantomSpec, TubeSpec, TumourSpec, build_phantom

    rows = []
    for size_cm in args.sizes:
        d = 10.0 * size_cm
        spec = PhantomSpec(
            case_id=f"bench-{size_cm:g}cm",
            spacing_mm=(1.0, 1.0, 1.0),
            tumours=[TumourSpec(id="T1", centre_lps_mm=(-45.0, 0.0, 0.0), diameter_mm=d)],
            tubes=[
                TubeSpec(
                    name="portal_vein",
                    radius_mm=5.0,
                    direction=(0, 0, 1),
                    side=(1, 0, 0),
                    gap_mm=1.0,
                )
            ],
            margin_mm=5.0,
        )
        case = build_phantom(spec)
        t0 = time.perf_counter()
        res = plan_ire(case, IrePlanOptions(grid_spacing_mm=args.grid, monte_carlo_samples=args.mc))
        wall = time.perf_counter() - t0
        m = res.plan.metrics
        row = {
            "tumour_diameter_cm": size_cm,
            "grid_mm": args.grid,
            "wall_s": round(wall, 2),
            "status": res.plan.status,
            "status_reason": res.plan.status_reason,
            "probes": len({p.id for p in res.plan.probes}),
            "cycles": len({p.cycle for p in res.plan.probes}),
            "pairs": len(res.plan.pairs),
            "target_coverage": m.target_coverage,
            "tumour_coverage": m.tumour_coverage,
            "min_margin_mm": m.min_margin_mm,
            "coverage_probability": m.coverage_probability,
            # Peak resident memory of the process so far (cumulative over the sizes run).
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "max_current_a": max(
                (p.predicted_current_a or 0 for p in res.plan.pairs), default=None
            ),
            "stats": {
                k: v
                for k, v in (res.plan.planning.stats if res.plan.planning else {}).items()
                if k
                in (
                    "engine_layouts_evaluated",
                    "nonlinear_solves",
                    "repairs",
                    "fast_choice_confirmed",
                    "search_attempts",
                    "split_train_trials",
                    "raises_refused_thermal",
                    "large_target",
                )
            },
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "python": platform.python_version(),
                "results": len(rows),
            }
        )
    )


if __name__ == "__main__":
    main()
