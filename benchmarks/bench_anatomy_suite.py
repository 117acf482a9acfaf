"""Benchmark: the anatomical planning suite (issue 12), whatever planner is installed.

Plans every case of `src/hepablate/data/anatomy_suite.yaml` (torso phantom and real CT, IRE and
laser; `hepablate.phantoms.suite`) with `hepablate.plan` at the chosen planning grid and
prints one JSON document: per case the status, target and tumour coverage, minimum margin,
probes or fibres, cycles, whether the needles are angled (not all parallel), the planner's
minimum path clearance, the blocking structures named by an infeasible plan's reason (and
what it says would open a path, if it does), the build and plan time; then a summary (plan
time median and percentiles, feasible / infeasible / error counts) and the machine.

    .venv/bin/python benchmarks/bench_anatomy_suite.py --grid 2 [--cases id,id] [--workers 2]

Progress goes to stderr, one line per case. With --workers N the cases run in N processes
(each plan single-process; numba's threads are divided among the workers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from _machine import cpu_model as _cpu


def _mem_gib() -> float | None:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _angle_deg(a: Any, b: Any) -> float:
    import numpy as np

    u, v = np.asarray(a, float), np.asarray(b, float)
    c = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def run_case(case_id: str, grid_mm: float, mc_samples: int | None) -> dict[str, Any]:
    """Build and plan one suite case; never raises (an exception is a recorded error)."""
    import hepablate
    from hepablate.phantoms.suite import (
        blocking_structures,
        build_suite_case,
        opening_hints,
        suite_case,
        suite_plan_options,
    )

    entry = suite_case(case_id)
    row: dict[str, Any] = {
        "id": entry.id,
        "phantom": entry.phantom,
        "position": entry.position,
        "diameter_mm": entry.diameter_mm,
        "kind": entry.kind,
        "voxel_mm": list(entry.voxel_mm),
        "modality": entry.modality,
    }
    t0 = time.perf_counter()
    try:
        case = build_suite_case(entry)
        row["build_s"] = round(time.perf_counter() - t0, 2)
        extra = {} if mc_samples is None else {"monte_carlo_samples": mc_samples}
        t1 = time.perf_counter()
        ev = hepablate.plan(case, entry.modality, **suite_plan_options(entry, grid_mm, **extra))
        row["plan_s"] = round(time.perf_counter() - t1, 2)
    except Exception as exc:  # a crash is a result of the suite, not of the benchmark
        row.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}"[:500],
            plan_s=round(time.perf_counter() - t0, 2),
        )
        return row
    p = ev.plan
    m = ev.metrics
    needles = list(p.probes) if entry.modality == "ire" else list(p.fibres)
    dirs = [n.direction_lps for n in needles]
    spread = max((_angle_deg(a, b) for a in dirs for b in dirs), default=0.0)
    row.update(
        status=ev.status,
        target_coverage=m.target_coverage,
        tumour_coverage=m.tumour_coverage,
        min_margin_mm=m.min_margin_mm,
        needles=len({n.id for n in needles}),
        # IRE: placement cycles; laser: illumination steps (pull-backs + 1).
        cycles=len({n.cycle for n in p.probes})
        if entry.modality == "ire"
        else len({il.step for il in p.illuminations}),
        pairs=len(p.pairs) if entry.modality == "ire" else None,
        illuminations=len(p.illuminations) if entry.modality == "laser" else None,
        angled=spread > 1.0,
        max_needle_angle_deg=round(spread, 1),
        min_path_clearance_mm=m.extra.get("min_path_clearance_mm"),
        target_ml=m.extra.get("target_volume_ml"),
        warnings=sorted({w.code for w in p.warnings if w.level in ("error", "warning")}),
    )
    if ev.status != "feasible":
        row["blocking_structures"] = blocking_structures(p.status_reason)
        row["opening_hints"] = opening_hints(p.status_reason)
        row["status_reason"] = (p.status_reason or "")[:800]
    return row


def _pct(vals: list[float], q: float) -> float | None:
    import numpy as np

    return round(float(np.percentile(vals, q)), 1) if vals else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    times = [r["plan_s"] for r in rows if r.get("status") != "error"]
    by = {s: sum(r.get("status") == s for r in rows) for s in ("feasible", "infeasible", "error")}
    out: dict[str, Any] = {
        "cases": len(rows),
        **by,
        "plan_s_median": _pct(times, 50),
        "plan_s_p10": _pct(times, 10),
        "plan_s_p90": _pct(times, 90),
        "plan_s_max": round(max(times), 1) if times else None,
        "plan_s_total": round(sum(times), 1),
    }
    for mod in ("ire", "laser"):
        sub = [r for r in rows if r["modality"] == mod]
        out[f"{mod}_feasible"] = sum(r.get("status") == "feasible" for r in sub)
        out[f"{mod}_cases"] = len(sub)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=float, default=2.0, help="planning grid spacing (mm)")
    ap.add_argument("--cases", default=None, help="comma-separated suite case ids (all)")
    ap.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    ap.add_argument(
        "--mc-samples", type=int, default=None, help="Monte Carlo samples (planner default)"
    )
    args = ap.parse_args()
    from hepablate.phantoms.suite import select_cases

    ids = [c.id for c in select_cases(args.cases)]
    load0 = os.getloadavg()[0]
    commit = _commit()  # at the start: the code the run imports (the tree may move meanwhile)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []

    def note(r: dict[str, Any]) -> None:
        print(
            f"{r['id']}: {r.get('status')} {r.get('plan_s')} s "
            f"{r.get('blocking_structures') or ''}",
            file=sys.stderr,
            flush=True,
        )

    if args.workers <= 1:
        for i in ids:
            rows.append(run_case(i, args.grid, args.mc_samples))
            note(rows[-1])
    else:
        os.environ.setdefault(
            "NUMBA_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.workers))
        )
        with ProcessPoolExecutor(args.workers) as pool:
            futs = [pool.submit(run_case, i, args.grid, args.mc_samples) for i in ids]
            for f in as_completed(futs):
                rows.append(f.result())
                note(rows[-1])
        order = {i: n for n, i in enumerate(ids)}
        rows.sort(key=lambda r: order[r["id"]])
    doc = {
        "benchmark": "anatomy_suite",
        "commit": commit,
        "grid_mm": args.grid,
        "workers": args.workers,
        "mc_samples": args.mc_samples,
        "wall_s": round(time.perf_counter() - t0, 1),
        "summary": summarise(rows),
        "cases": rows,
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "mem_gib": _mem_gib(),
        "load_avg_1min_start": round(load0, 2),
        "load_avg_1min_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
