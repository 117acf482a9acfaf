"""Linear solver comparison for the IRE field (the choice made in physics/multigrid.py).

One unit-potential solve (probe 1 at 1 V, the others at 0 V) of the 4-probe benchmark layout on
the sample phantom, constant conductivity, to a relative residual of 1e-6, with
- `gmg`: hepablate's geometric multigrid CG (numba; float32 V-cycle),
- `pyamg_sa`: CG preconditioned by pyamg smoothed aggregation (the previous solver).
Setup is the hierarchy construction for one conductivity; solve is the CG solve.
Prints one JSON object per grid spacing and solver.

    .venv/bin/python benchmarks/bench_linear_solvers.py --spacing 2.0 1.0
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from bench_ire_engine import layout  # the script directory is on sys.path

from hepablate.phantoms import build_phantom, ire_example_spec
from hepablate.physics.ire import IreProblem
from hepablate.physics.ire.electrodes import build_electrodes
from hepablate.physics.kernels import blas_single_thread
from hepablate.physics.multigrid import GridMultigrid
from hepablate.physics.solvers import SpdSolver
from hepablate.plans.model import IreSimulationSettings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, nargs="+", default=[2.0, 1.0])
    ap.add_argument("--rtol", type=float, default=1e-6)
    a = ap.parse_args()
    case = build_phantom(ire_example_spec())
    centre = np.array([-40.0, 0.0, 0.0])
    probes, _ = layout(centre)
    for h in a.spacing:
        prob = IreProblem.from_case(
            case,
            settings=IreSimulationSettings(grid_spacing_mm=h),
            roi_centre_lps_mm=centre,
            roi_half_size_mm=50.0,
        )
        el = build_electrodes(prob.grid, prob.op.index, prob._segments(probes))
        wi = el.well_index(prob.sigma0)
        rhs = el.rhs(wi, np.array([1.0, 0.0, 0.0, 0.0]))
        matrix = el.system(prob.op.matrix(prob.sigma0), wi)
        for name in ("gmg", "pyamg_sa"):
            with blas_single_thread():
                t0 = time.perf_counter()
                if name == "gmg":
                    solver = GridMultigrid(prob.active, prob.h_mm * 1e-3, el.w)
                    solver.update(prob.sigma0, wi)
                    solver.solve(rhs, rtol=1e-2)  # loads the compiled kernels once
                    t0b = time.perf_counter()
                    solver.update(prob.sigma0, wi)
                    setup = time.perf_counter() - t0b
                    t1 = time.perf_counter()
                    x = solver.solve(rhs, rtol=a.rtol)
                else:
                    amg = SpdSolver(matrix)
                    setup = time.perf_counter() - t0
                    t1 = time.perf_counter()
                    x = amg.solve(matrix, rhs, rtol=a.rtol)
                    solver = amg
                t2 = time.perf_counter()
            res = float(np.linalg.norm(rhs - matrix @ x) / np.linalg.norm(rhs))
            print(
                json.dumps(
                    {
                        "benchmark": "linear_solvers",
                        "solver": name,
                        "spacing_mm": h,
                        "cells": int(prob.op.n),
                        "setup_s": round(setup, 3),
                        "solve_s": round(t2 - t1, 3),
                        "iterations": int(solver.iterations[-1]),
                        "relative_residual": res,
                        "machine": platform.processor() or platform.machine(),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
