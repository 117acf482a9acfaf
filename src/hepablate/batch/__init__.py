"""Batch planning on Dask distributed: a table of cases x options (a cohort, protocol and
tissue-parameter sweeps, robustness studies) planned or evaluated on a LocalCluster or a real
cluster, resumably, into a results table and summary figures (docs/batch.md).

    from hepablate.batch import load_tasks, run_batch
    tasks = load_tasks("sweep.yaml", "plan", sweep=True)   # checked before any work starts
    report = run_batch(tasks, "out/sweep", workers=2)      # or scheduler="tcp://host:8786"
    print(report.summary())                                # out/sweep/results.parquet, .csv
"""

from __future__ import annotations

from hepablate.batch.runner import BatchReport, connect, run_batch, run_tasks
from hepablate.batch.table import Task, load_tasks, read_sweep, read_table, validate_rows

__all__ = [
    "BatchReport",
    "Task",
    "connect",
    "load_tasks",
    "read_sweep",
    "read_table",
    "run_batch",
    "run_tasks",
    "validate_rows",
]
