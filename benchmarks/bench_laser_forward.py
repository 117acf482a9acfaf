"""Benchmark: laser forward model, 4 fibres, 10 min illumination, 1 mm grid, ~1 M voxels.

Prints JSON: grid size, wall times (total, light, heat), light CG iterations, zone volume.
Usage: .venv/bin/python benchmarks/bench_laser_forward.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np

from hepablate.anatomy.tissues import load_tissue_table
from hepablate.devices import load_device_table
from hepablate.phantoms import BlockSpec, build_block
from hepablate.physics.laser.simulate import simulate_laser
from hepablate.plans.model import Fibre, Illumination, LaserSimulationSettings


def _cpu_s() -> float:
    """CPU seconds of this process (all threads): the work, independent of other load."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cooldown-s", type=float, default=0.0)
    args = ap.parse_args()
    case = build_block(BlockSpec(size_mm=(100.0, 100.0, 100.0), spacing_mm=(1.0, 1.0, 1.0)))
    s = 15.0
    fibres = [
        Fibre(id=f"F{n + 1}", tip_lps_mm=(x, 0.0, z), direction_lps=(0.0, 1.0, 0.0))
        for n, (x, z) in enumerate(
            [(-s / 2, -s / 2), (s / 2, -s / 2), (-s / 2, s / 2), (s / 2, s / 2)]
        )
    ]
    ills = [Illumination(step=1, fibre=f.id, power_w=3.0, duration_s=600.0) for f in fibres]
    settings = LaserSimulationSettings(
        grid_spacing_mm=1.0, roi_padding_mm=60.0, cooldown_s=args.cooldown_s
    )
    tissues, devices = load_tissue_table(), load_device_table()
    runs = []
    for _ in range(args.repeats + 1):  # the first run includes numba compilation/cache load
        t0 = time.perf_counter()
        c0 = _cpu_s()
        r = simulate_laser(case, fibres, ills, settings=settings, tissues=tissues, devices=devices)
        runs.append(
            {
                "total_s": round(time.perf_counter() - t0, 3),
                "cpu_s": round(_cpu_s() - c0, 3),
                **{k: round(v, 3) for k, v in r.timings_s.items()},
                "light_cg_iterations": r.light_iterations,
            }
        )
    best = min(runs[1:], key=lambda x: x["total_s"])
    print(
        json.dumps(
            {
                "benchmark": "laser_forward_4_fibres_10_min_1mm",
                "grid_voxels": int(r.grid.array.size),
                "grid_shape_kji": list(r.grid.array.shape),
                "simulated_s": 600.0 + args.cooldown_s,
                "zone_volume_ml": round(float(r.zone.sum()) * r.grid.voxel_volume_ml, 2),
                "tip_max_c": round(max(r.tip_max_c.values()), 1),
                "first_run": runs[0],
                "best": best,
                "runs": runs[1:],
                "cpu_count": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "load_avg_1min": round(os.getloadavg()[0], 2),
                "numpy": np.__version__,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
