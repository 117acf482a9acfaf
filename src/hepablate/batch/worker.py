"""What one Dask worker does with one task: pin its threads, load the case and tables, plan
or evaluate, and return a result record (plain JSON-able data). A task that fails (a bad case
file, an infeasible request, a bug) returns a failed record with a one-line reason instead of
raising, so the rest of the batch goes on.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from hepablate.batch.table import Task, device_table_for, tissue_table_for

#: Environment of a worker process: BLAS pools of one thread (the planners' parallel loops
#: are numba's); numba's pool is sized per worker by `thread_env`.
BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def thread_env(numba_threads: int) -> dict[str, str]:
    """Environment variables for a worker process: numba's pool of `numba_threads`, BLAS 1."""
    env = {v: "1" for v in BLAS_VARS}
    env["NUMBA_NUM_THREADS"] = str(max(1, numba_threads))
    return env


def _numba_threads_for_task() -> int:
    """Numba threads one task may use: the machine's cores shared by the worker's concurrent
    tasks (its nthreads), never more than numba's pool (NUMBA_NUM_THREADS)."""
    import numba

    try:
        from distributed import get_worker

        nthreads = int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        nthreads = 1
    cores = os.cpu_count() or 1
    pool = int(getattr(numba.config, "NUMBA_NUM_THREADS", cores))
    return max(1, min(pool, cores // max(1, nthreads)))


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    from hepablate.errors import HepablateError

    return text if isinstance(exc, HepablateError) else f"{type(exc).__name__}: {text}"


def _run(task: Task) -> Any:
    import hepablate
    from hepablate.evaluation.criteria import load_criteria

    case = hepablate.load_case(task.case)
    tissues = tissue_table_for(task.tissues, task.tissue_values)
    devices = device_table_for(task.devices, task.device_values)
    command = f"hepablate batch {task.mode} (row {task.row}: {task.id})"
    if task.mode == "evaluate":
        assert task.plan is not None
        plan = hepablate.read_plan(task.plan)
        return hepablate.evaluate(
            case,
            plan,
            tissues=tissues,
            devices=devices,
            criteria=load_criteria(task.criteria),
            command=command,
            source=task.plan,
        )
    ev = hepablate.plan(
        case,
        task.modality,
        tissues=tissues,
        devices=devices,
        command=command,
        **task.options,
    )
    if task.criteria:
        # The planner's own search uses the packaged criteria; the row's table judges the plan.
        ev = hepablate.evaluate(
            case,
            ev.plan,
            tissues=tissues,
            devices=devices,
            criteria=load_criteria(task.criteria),
            command=command,
        )
    return ev


def execute(task: Task) -> dict[str, Any]:
    """Run `task` and return its result record: ``state`` is ``done`` (with ``plan``, the plan
    file's JSON, and ``summary``) or ``failed`` (with ``error``, one line)."""
    from threadpoolctl import threadpool_limits

    started = time.time()
    record: dict[str, Any] = {
        "key": task.key,
        "row": task.row,
        "id": task.id,
        "host": platform.node(),
        "pid": os.getpid(),
    }
    try:
        import numba

        numba.set_num_threads(_numba_threads_for_task())
        with threadpool_limits(limits=1, user_api="blas"):
            ev = _run(task)
        record.update(
            state="done",
            error=None,
            plan=ev.plan.model_dump_json(),
            summary=ev.summary(),
        )
    except Exception as exc:  # recorded, the batch goes on
        record.update(state="failed", error=one_line(exc), plan=None, summary=None)
    record["wall_s"] = round(time.time() - started, 3)
    return record
