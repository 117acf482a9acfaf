"""IRE engine benchmark: 4 probes, 6 pairs, nonlinear conductivity, heterogeneous tissue
(the sample IRE phantom: liver, tumour, portal vein, bile duct, hepatic vein) on a 100 mm
cube planning grid. Prints one JSON object per grid size to stdout.

    .venv/bin/python benchmarks/bench_ire_engine.py                 # 1 mm, ~1 M voxels
    .venv/bin/python benchmarks/bench_ire_engine.py --spacing 1.6 1.0 0.8 --no-thermal
    .venv/bin/python benchmarks/bench_ire_engine.py --profile       # cProfile top entries
    .venv/bin/python benchmarks/bench_ire_engine.py --repeat 2      # + a second, warm solve

`simulate_s` is the first forward solve in a fresh process (it includes loading the compiled
numba kernels from their on-disk cache); with --repeat, `simulate_repeat_s` lists later solves
of the same problem (the optimiser's situation). The very first run after installing compiles
the kernels (about 20 s) and should be discarded.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import platform
import pstats
import resource
import time

import numpy as np

from hepablate.phantoms import build_phantom, ire_example_spec
from hepablate.physics.ire import IreProblem
from hepablate.plans.model import IrePair, IreSimulationSettings, Probe


def layout(centre: np.ndarray) -> tuple[list[Probe], list[IrePair]]:
    offs = [(-7.5, -7.5), (7.5, -7.5), (7.5, 7.5), (-7.5, 7.5)]
    probes = [
        Probe(
            id=f"P{i + 1}",
            tip_lps_mm=(centre[0] + dx, centre[1] + dy, centre[2] + 10.0),
            direction_lps=(0.0, 0.0, 1.0),
            exposure_mm=20.0,
        )
        for i, (dx, dy) in enumerate(offs)
    ]
    # Sides at 1500 V/cm x 1.5 cm, diagonals (2.12 cm) at 3000 V (generator limit).
    sides = [("P1", "P2"), ("P2", "P3"), ("P3", "P4"), ("P4", "P1")]
    pairs = [IrePair(anode=a, cathode=c, voltage_v=2250.0) for a, c in sides]
    pairs += [
        IrePair(anode="P1", cathode="P3", voltage_v=3000.0),
        IrePair(anode="P2", cathode="P4", voltage_v=3000.0),
    ]
    return probes, pairs


def run(spacing_mm: float, model: str, thermal: bool, profile: bool, repeat: int = 1) -> dict:
    case = build_phantom(ire_example_spec())
    centre = np.array([-40.0, 0.0, 0.0])
    probes, pairs = layout(centre)
    settings = IreSimulationSettings(
        conductivity_model=model, thermal=thermal, grid_spacing_mm=spacing_mm
    )
    t0 = time.perf_counter()
    prob = IreProblem.from_case(
        case, settings=settings, roi_centre_lps_mm=centre, roi_half_size_mm=50.0
    )
    t1 = time.perf_counter()
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    res = prob.simulate(probes, pairs)
    t2 = time.perf_counter()
    if prof:
        prof.disable()
    solver_times = list(getattr(prob, "last_solver_times", []) or [])
    solver_its = list(getattr(prob, "last_solver_iterations", []) or [])
    again = []
    for _ in range(repeat - 1):
        t3 = time.perf_counter()
        prob.simulate(probes, pairs)
        again.append(round(time.perf_counter() - t3, 3))
    out = {
        "benchmark": "ire_engine",
        "spacing_mm": spacing_mm,
        "voxels": int(prob.grid.array.size),
        "tissue_voxels": int(prob.op.n),
        "conductivity_model": model,
        "thermal": thermal,
        "problem_setup_s": round(t1 - t0, 3),
        "simulate_s": round(t2 - t1, 3),
        "timings_s": {k: round(v, 3) for k, v in res.timings_s.items()},
        "linear_solves": res.linear_solves,
        "nonlinear_iterations": [r.nonlinear_iterations for r in res.pair_results],
        "currents_a": [round(r.current_a, 2) for r in res.pair_results],
        "zone_volume_ml": round(res.zone_volume_ml, 2),
        "simulate_repeat_s": again,
        "max_temperature_c": (
            None if res.temperature_max_c is None else round(float(res.temperature_max_c.max()), 2)
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": platform.processor() or platform.machine(),
    }
    if solver_times:
        out["linear_solve_s_mean"] = round(float(np.mean(solver_times)), 3)
        out["cg_iterations_mean"] = round(float(np.mean(solver_its)), 1)
        out["cg_iterations_total"] = int(np.sum(solver_its))
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        out["profile_top"] = s.getvalue().splitlines()[:40]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, nargs="+", default=[1.0])
    ap.add_argument("--model", default="nonlinear", choices=["nonlinear", "constant"])
    ap.add_argument("--no-thermal", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    for h in a.spacing:
        print(json.dumps(run(h, a.model, not a.no_thermal, a.profile, a.repeat)), flush=True)


if __name__ == "__main__":
    main()
