"""Benchmark: N small laser plans (the laser phantom at 3 mm, a power sweep) run one after
another in a fresh Python process (imports and numba's cache loads included, as a user's
script pays them), then as a batch on a 2-worker LocalCluster (worker processes, one thread
each, numba pinned to one thread per worker; cluster start-up included). The batch must be
no slower, with identical results (every plan's JSON but its run time and creation time).
Prints JSON.

    .venv/bin/python benchmarks/bench_batch.py [--n 12]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _machine import cpu_model as _cpu

OPTIONS = {
    "grid_spacing_mm": 3.0,
    "monte_carlo_samples": 4,
    "max_coarse_runs": 2,
    "max_confirmations": 1,
    "sensitivity": False,
}


def _comparable(plan_json: str) -> dict:
    plan = json.loads(plan_json)
    plan.pop("runtime_s", None)
    (plan.get("provenance") or {}).pop("created_utc", None)
    return plan


def _sequential(table: str, out: str) -> None:
    """Run the table's plans one after another in this (fresh) process; write the records."""
    t0 = time.perf_counter()
    from hepablate.batch import load_tasks
    from hepablate.batch.worker import execute

    records = [execute(t) for t in load_tasks(table, "plan")]
    Path(out).write_text(json.dumps({"wall_s": time.perf_counter() - t0, "records": records}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=12, help="number of plans")
    ap.add_argument(
        "--sequential-numba-threads",
        type=int,
        default=1,
        help="NUMBA_NUM_THREADS of the sequential run (default 1, as each batch worker)",
    )
    ap.add_argument("--sequential", nargs=2, metavar=("TABLE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sequential:
        _sequential(*args.sequential)
        return
    import subprocess
    import sys

    from hepablate.batch import load_tasks, run_batch
    from hepablate.batch.store import ResultStore
    from hepablate.batch.worker import execute
    from hepablate.case.writer import write_case
    from hepablate.phantoms import build_phantom, laser_example_spec

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = laser_example_spec().model_copy(update={"spacing_mm": (3.0, 3.0, 3.0)})
        write_case(build_phantom(spec), root / "case")
        powers = [round(2.5 + 2.5 * i / max(1, args.n - 1), 3) for i in range(args.n)]
        cols = ",".join(OPTIONS)
        vals = ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in OPTIONS.values())
        lines = [f"id,case,modality,power_w,{cols}"]
        lines += [f"p{p},{root}/case,laser,{p},{vals}" for p in powers]
        (root / "t.csv").write_text("\n".join(lines) + "\n")
        tasks = load_tasks(root / "t.csv", "plan")

        # Warm numba's on-disk cache (both runs then load compiled code, none compiles).
        execute(tasks[0])
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--sequential", str(root / "t.csv"), str(root / "s.json")],
            check=True,
            env={**os.environ, "NUMBA_NUM_THREADS": str(args.sequential_numba_threads)},
        )
        seq_s = time.perf_counter() - t0
        seq = json.loads((root / "s.json").read_text())
        sequential = seq["records"]

        t0 = time.perf_counter()
        report = run_batch(
            tasks, root / "out", workers=2, threads=1, numba_threads=1, figures=False
        )
        batch_s = time.perf_counter() - t0
        store = ResultStore(root / "out")
        batched = [store.get(t.key) for t in tasks]

    assert all(r["state"] == "done" for r in sequential), [r["error"] for r in sequential]
    identical = all(
        b is not None and b["state"] == "done" and _comparable(a["plan"]) == _comparable(b["plan"])
        for a, b in zip(sequential, batched, strict=True)
    )
    print(
        json.dumps(
            {
                "benchmark": f"batch_{args.n}_small_laser_plans_2_workers",
                "plans": args.n,
                "sequential_s": round(seq_s, 2),
                "sequential_in_process_s": round(seq["wall_s"], 2),
                "batch_s": round(batch_s, 2),
                "batch_tasks_s": round(report.wall_s, 2),
                "speedup": round(seq_s / batch_s, 2),
                "no_slower": batch_s <= seq_s,
                "identical_results": identical,
                "batch_done": report.done,
                "batch_failed": report.failed,
                "sequential_numba_threads": args.sequential_numba_threads,
                "mean_task_s_sequential": round(sum(r["wall_s"] for r in sequential) / args.n, 2),
                "mean_task_s_batch": round(sum(b["wall_s"] for b in batched if b) / args.n, 2),
                "cpu": _cpu(),
                "cpu_count": os.cpu_count(),
                "load_avg_1min": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
