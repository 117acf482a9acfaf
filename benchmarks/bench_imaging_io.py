"""Imaging I/O timings: write and read back a phantom case in the per-structure formats.

Run: .venv/bin/python benchmarks/bench_imaging_io.py [--spacing 1.0]
Prints one JSON document: per format the write time (`write_case`), the read time
(`load_case`), the bytes on disk and the largest per-structure voxel mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from hepablate.case import load_case
from hepablate.case.writer import write_case
from hepablate.phantoms import build_phantom, ire_example_spec


def _machine() -> dict[str, object]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(ln.split()[1])
        for ln in Path("/proc/meminfo").read_text().splitlines()
        if ln.startswith("MemTotal")
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem_kb / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=1.0, help="isotropic voxel size (mm)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    spec = ire_example_spec().model_copy(update={"spacing_mm": (args.spacing,) * 3})
    case = build_phantom(spec)
    results = {}
    for fmt in ("nifti", "slicer_seg", "dicom", "rtstruct"):
        writes, reads = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                write_case(case, d, fmt)
                t1 = time.perf_counter()
                back = load_case(d)
                t2 = time.perf_counter()
                size = sum(p.stat().st_size for p in Path(d).rglob("*") if p.is_file())
            writes.append(t1 - t0)
            reads.append(t2 - t1)
        mismatch = max(
            int(np.count_nonzero(back.structures[k] != m)) for k, m in case.structures.items()
        )
        results[fmt] = {
            "write_s": round(min(writes), 3),
            "read_s": round(min(reads), 3),
            "bytes": size,
            "max_mismatch_voxels": mismatch,
        }
    print(
        json.dumps(
            {
                "benchmark": "imaging_io",
                "case": spec.case_id,
                "grid_ijk": list(case.grid.shape_ijk),
                "spacing_mm": list(case.grid.spacing_mm),
                "structures": list(case.structures),
                "formats": results,
                "machine": _machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
