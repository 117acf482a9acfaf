"""Benchmark: `hepablate.evaluate` of a hand-made plan (what `simulate` and, later, the web
application run after every edit). Prints JSON.

IRE: four probes (15 mm square, 20 mm exposure, 2400 V, four pairs) around the target of the
bundled IRE phantom at a 1 mm grid, nonlinear with Joule heating: a cold evaluation (new
engine), the same plan again on the kept engine (`IreSession`: remembered solutions), and the
plan with one probe moved 2 mm (the cycle is solved again, the engine's grid and operators
kept). Laser: two fibres, 300 s at 3 W, on the laser phantom at 1 mm (no optical sensitivity).

    .venv/bin/python benchmarks/bench_evaluate.py
"""

from __future__ import annotations

import json
import os
import time

from _machine import cpu_model as _cpu


def main() -> None:
    import hepablate
    from hepablate.anatomy.tissues import load_tissue_table
    from hepablate.devices import load_device_table
    from hepablate.phantoms import build_phantom, ire_example_spec, laser_example_spec
    from hepablate.physics.ire.session import IreSession
    from hepablate.plans.model import (
        EvaluationSettings,
        Fibre,
        Illumination,
        IrePair,
        IreSimulationSettings,
        LaserSimulationSettings,
        Plan,
        Probe,
    )

    case = build_phantom(ire_example_spec())
    lo, hi = case.grid.with_array(case.target_mask).bounding_box_lps_mm()
    c = 0.5 * (lo + hi)
    probes = [
        Probe(
            id=f"P{i + 1}",
            tip_lps_mm=(float(c[0]) + x, float(c[1]) + y, float(c[2]) + 10.0),
            direction_lps=(0.0, 0.0, 1.0),
            exposure_mm=20.0,
        )
        for i, (x, y) in enumerate([(-7.5, -7.5), (7.5, -7.5), (7.5, 7.5), (-7.5, 7.5)])
    ]
    pairs = [
        IrePair(anode=a, cathode=b, voltage_v=2400.0)
        for a, b in [("P1", "P2"), ("P2", "P3"), ("P3", "P4"), ("P4", "P1")]
    ]
    plan = Plan(
        modality="ire",
        probes=probes,
        pairs=pairs,
        ire_simulation=IreSimulationSettings(grid_spacing_mm=1.0),
        evaluation=EvaluationSettings(monte_carlo_samples=64),
    )
    t0 = time.perf_counter()
    cold = hepablate.evaluate(case, plan)
    t_cold = time.perf_counter() - t0
    session = IreSession.for_grid(
        case,
        cold.grid,
        cold.plan.ire_simulation,
        load_tissue_table(),
        load_device_table(),
    )
    hepablate.evaluate(case, cold.plan, engine=session)
    t0 = time.perf_counter()
    hepablate.evaluate(case, cold.plan, engine=session)
    t_warm = time.perf_counter() - t0
    moved = cold.plan.model_copy(deep=True)
    tip = moved.probes[0].tip_lps_mm
    moved.probes[0].tip_lps_mm = (tip[0] + 2.0, tip[1], tip[2])
    t0 = time.perf_counter()
    ev_moved = hepablate.evaluate(case, moved, engine=session)
    t_moved = time.perf_counter() - t0

    lcase = build_phantom(laser_example_spec())
    lo, hi = lcase.grid.with_array(lcase.target_mask).bounding_box_lps_mm()
    c = 0.5 * (lo + hi)
    fibres = [
        Fibre(
            id="F1", tip_lps_mm=(float(c[0]) - 6, float(c[1]), float(c[2])), direction_lps=(1, 0, 0)
        ),
        Fibre(
            id="F2",
            tip_lps_mm=(float(c[0]) - 6, float(c[1]), float(c[2]) + 12),
            direction_lps=(1, 0, 0),
        ),
    ]
    lplan = Plan(
        modality="laser",
        fibres=fibres,
        illuminations=[Illumination(fibre=f.id, power_w=3.0, duration_s=300.0) for f in fibres],
        laser_simulation=LaserSimulationSettings(optical_sensitivity=False),
        evaluation=EvaluationSettings(monte_carlo_samples=64),
    )
    t0 = time.perf_counter()
    lev = hepablate.evaluate(lcase, lplan)
    t_laser = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "benchmark": "evaluate",
                "ire_grid_voxels": int(cold.grid.array.size),
                "ire_cold_s": round(t_cold, 2),
                "ire_same_plan_kept_engine_s": round(t_warm, 2),
                "ire_probe_moved_kept_engine_s": round(t_moved, 2),
                "ire_target_coverage": cold.metrics.target_coverage,
                "ire_target_coverage_moved": ev_moved.metrics.target_coverage,
                "laser_grid_voxels": int(lev.grid.array.size),
                "laser_s": round(t_laser, 2),
                "laser_target_coverage": lev.metrics.target_coverage,
                "cpu": _cpu(),
                "cpu_count": os.cpu_count(),
                "load_avg_1min": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
