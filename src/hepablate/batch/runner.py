"""Run checked batch tasks on Dask distributed: a LocalCluster by default (worker processes on
127.0.0.1, no dashboard), or the scheduler of a real cluster.

- Resumable: a task whose key already has a ``done`` record in the output folder is not
  submitted (hepablate.batch.keys, hepablate.batch.store).
- Each record is written by this process as its task ends, so a lost worker, an interrupted
  run or a failing task loses no finished result.
- A worker that dies (killed, out of memory, its machine gone) takes its running task with
  it; the scheduler runs the task again elsewhere, up to `retries` times
  (``distributed.scheduler.allowed-failures``), then the task is recorded as failed.
- Threads: each worker runs `threads` tasks at a time; BLAS pools are pinned to one thread and
  numba's pool gets the machine's cores divided by the worker's thread count
  (hepablate.batch.worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hepablate.batch.store import ResultStore, results_frame, write_table
from hepablate.batch.table import Task
from hepablate.batch.worker import execute, one_line, thread_env
from hepablate.core.progress import NullProgress, Progress
from hepablate.errors import InputError


@dataclass
class BatchReport:
    out: Path
    total: int
    reused: int = 0
    done: int = 0
    failed: int = 0
    wall_s: float = 0.0
    files: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(row id, one-line reason) of each failed task."""

    def summary(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "rows": self.total,
            "reused": self.reused,
            "done": self.done,
            "failed": self.failed,
            "wall_s": round(self.wall_s, 2),
            "failures": [{"id": i, "error": e} for i, e in self.failures],
            "files": [str(p) for p in self.files],
        }


def _local_cluster(workers: int, threads: int, numba_threads: int | None, retries: int) -> Any:
    import os

    import dask
    from distributed import LocalCluster

    cores = os.cpu_count() or 1
    nb = numba_threads or max(1, cores // max(1, workers * threads)) * threads
    with dask.config.set(
        {
            "distributed.scheduler.allowed-failures": retries,
            "distributed.worker.daemon": False,
            # The statistical profiler samples every task thread's stack every 10 ms: with
            # the planners' deep Python stacks it slowed each plan about threefold.
            "distributed.worker.profile.enabled": False,
        }
    ):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=None,
            # No dashboard; the scheduler's small HTTP server (health, metrics) on a free
            # port of the loopback, not on 8787 of every interface.
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            env=thread_env(nb),
            silence_logs=50,
        )


def connect(
    scheduler: str | None,
    *,
    workers: int = 2,
    threads: int = 1,
    numba_threads: int | None = None,
    retries: int = 3,
    timeout_s: float = 10.0,
) -> tuple[Any, Any]:
    """A Dask client and the LocalCluster it owns (None for a scheduler address). An
    unreachable scheduler is an InputError naming ``--scheduler``."""
    from distributed import Client

    if scheduler is None:
        if workers < 1 or threads < 1:
            raise InputError("workers and threads must be >= 1", field="--workers")
        cluster = _local_cluster(workers, threads, numba_threads, retries)
        return Client(cluster, set_as_default=False), cluster
    if "://" not in scheduler:
        scheduler = f"tcp://{scheduler}"
    try:
        client = Client(scheduler, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {scheduler} within {timeout_s:g} s "
            f"({one_line(exc)}); start it with `dask scheduler` (docs/batch.md)",
            field="--scheduler",
        ) from None
    return client, None


def run_tasks(
    tasks: list[Task],
    out_dir: str | Path,
    client: Any,
    *,
    retries: int = 3,
    progress: Progress | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> BatchReport:
    """Run on `client` the tasks that have no finished result in `out_dir`; write each record
    as it arrives. Returns the counts (no table or figures: see `run_batch`)."""
    from distributed import as_completed

    t0 = time.perf_counter()
    store = ResultStore(out_dir)
    report = BatchReport(out=Path(out_dir), total=len(tasks))
    todo: dict[str, Task] = {}
    for t in tasks:
        if store.is_done(t.key):
            report.reused += 1
        elif t.key not in todo:
            todo[t.key] = t
    progress = progress or NullProgress()
    progress.start(f"batch: {len(todo)} to run, {report.reused} reused", total=len(todo))
    futures = {
        client.submit(execute, t, key=f"hepablate-batch-{k}", pure=False, retries=retries): t
        for k, t in todo.items()
    }
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            task = futures[fut]
            try:
                record = fut.result()
            except Exception as exc:  # KilledWorker after `retries` losses, a broken worker
                record = {
                    "key": task.key,
                    "row": task.row,
                    "id": task.id,
                    "state": "failed",
                    "error": f"worker lost or failed: {one_line(exc)}",
                    "plan": None,
                    "summary": None,
                }
            store.put(record)
            if on_record is not None:
                on_record(record)
            progress.advance()
    finally:
        progress.finish()
        for fut in futures:
            fut.release()
    for t in tasks:
        rec = store.get(t.key)
        if rec is not None and rec.get("state") == "done":
            report.done += 1
        else:
            report.failed += 1
            report.failures.append((t.id, (rec or {}).get("error") or "not run"))
    report.done -= report.reused
    report.wall_s = time.perf_counter() - t0
    return report


def run_batch(
    tasks: list[Task],
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    client: Any = None,
    workers: int = 2,
    threads: int = 1,
    numba_threads: int | None = None,
    retries: int = 3,
    progress: Progress | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    figures: bool = True,
) -> BatchReport:
    """Run `tasks` (hepablate.batch.table.load_tasks) into `out_dir`: the records, the
    results table (Parquet and CSV) and, with `figures`, the summary figures. Uses `client`
    if given, else connects to `scheduler`, else starts a LocalCluster of `workers` processes
    of `threads` threads (closed at the end)."""
    own = None
    cluster = None
    store = ResultStore(out_dir)
    if client is None and all(store.is_done(t.key) for t in tasks):
        # Nothing to compute: no cluster is started (nor a scheduler reached).
        report = BatchReport(out=Path(out_dir), total=len(tasks), reused=len(tasks))
    elif client is None:
        client, cluster = connect(
            scheduler,
            workers=workers,
            threads=threads,
            numba_threads=numba_threads,
            retries=retries,
        )
        own = client
    if client is not None:
        try:
            report = run_tasks(
                tasks, out_dir, client, retries=retries, progress=progress, on_record=on_record
            )
        finally:
            if own is not None:
                own.close()
            if cluster is not None:
                cluster.close()
    frame = results_frame(tasks, store)
    report.files = write_table(frame, out_dir)
    if figures:
        from hepablate.batch.figures import write_figures

        report.files += write_figures(frame, Path(out_dir) / "figures")
    return report
