"""Registry CSV import throughput: a synthetic registry (default 10,000 patients) written as
CSV, then imported (validated, bulk-inserted with one audit row per record, one transaction)
into a fresh SQLite database, and PostgreSQL when HEPABLATE_TEST_PG_URL is set.
Prints JSON to stdout.

    .venv/bin/python benchmarks/bench_registry_import.py [--patients 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path


def _write_csvs(records: dict, out: Path) -> None:  # type: ignore[type-arg]
    from hepablate.registry.csvio import _write_csv, csv_columns

    for table, rows in records.items():
        _write_csv(out / f"{table}.csv", csv_columns(table, for_export=False), rows)


def _run(url: str, directory: Path, n_records: int) -> dict:  # type: ignore[type-arg]
    from hepablate.registry import audit, csvio, db

    db.migrate(url)
    engine = db.connect(url)
    t0, c0 = time.perf_counter(), time.process_time()
    res = csvio.import_dir(engine, directory, "bench")
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    ver = audit.verify(engine)
    dv = time.perf_counter() - t1
    assert res.total == n_records and ver.ok
    return {
        "backend": engine.dialect.name,
        "records": res.total,
        "audit_rows": res.audit_rows,
        "seconds": round(dt, 2),
        "records_per_s": round(res.total / dt),
        "client_cpu_seconds": round(cpu, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "verify_seconds": round(dv, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from hepablate.registry import db
    from hepablate.registry.synthetic import synthetic_records

    t0 = time.perf_counter()
    recs = synthetic_records(args.patients, args.seed)
    gen_s = time.perf_counter() - t0
    n = sum(len(v) for v in recs.values())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "csv"
        d.mkdir()
        _write_csvs(recs, d)
        results.append(_run(f"sqlite:///{tmp}/bench.db", d, n))
        pg = os.environ.get("HEPABLATE_TEST_PG_URL")
        if pg:
            name = f"hb_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            url = make_url(pg).set(database=name).render_as_string(hide_password=False)
            try:
                results.append(_run(url, d, n))
            finally:
                db.dispose(url)
                with admin.connect() as c:
                    c.execute(text(f'DROP DATABASE "{name}"'))
    print(
        json.dumps(
            {
                "benchmark": "registry_import",
                "patients": args.patients,
                "counts": {k: len(v) for k, v in recs.items()},
                "records": n,
                "generate_seconds": round(gen_s, 2),
                "results": results,
                "cpu": _cpu(),
                "cores": os.cpu_count(),
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
