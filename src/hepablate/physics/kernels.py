"""Helpers for the numba kernels of the grid solvers: when to run them in parallel, and
separate cache entries for the serial and parallel compilations of one kernel."""

from __future__ import annotations

import os
import time
import types
from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController

PARALLEL_MIN_VOXELS = 200_000


_CPUS = os.cpu_count() or 1


def _own_running_threads() -> int:
    n = 0
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/stat") as f:
                # State follows the command name, which is in parentheses.
                if f.read().rsplit(")", 1)[1].split()[0] == "R":
                    n += 1
    except OSError:
        return 0
    return n


def _others_running() -> float:
    """Threads of other processes ready to run now: the kernel's instantaneous count
    (/proc/loadavg) less this process's own; elsewhere the 1-minute load average."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        return max(running - _own_running_threads(), 0)
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0


#: How long (s) a decision about the machine's load is kept (it is asked for every kernel call).
_LOAD_TTL_S = 0.5
_load_state = [-1.0, 0.0]  # time of the last look, others running then


def use_parallel(n_voxels: int, min_voxels: int = PARALLEL_MIN_VOXELS) -> bool:
    """Parallel kernels only on large grids and when the cores are not already busy: with
    the machine oversubscribed, the threads of a parallel kernel wait at its barriers and a
    step costs several times the serial one (measured on the shared 2-core machine:
    25 s instead of 7.5 s for the 1 M-voxel benchmark at load average 7). Busy means more
    than half the cores taken by other processes' threads; this process's own threads do not
    count (with the 1-minute load average they did: a run alone on 2 cores pushed it to 2.5
    and switched itself to the serial kernels)."""
    if n_voxels < min_voxels:
        return False
    now = time.monotonic()
    if now - _load_state[0] > _LOAD_TTL_S:
        _load_state[0], _load_state[1] = now, _others_running()
    return _load_state[1] <= _CPUS / 2


def _variant(f, suffix: str):
    """A copy of `f` under another name, so that numba's on-disk cache keeps the serial and
    the parallel compilations apart (its index is keyed by the function's qualified name)."""
    g = types.FunctionType(
        f.__code__, f.__globals__, f.__name__ + suffix, f.__defaults__, f.__closure__
    )
    g.__qualname__ = f.__qualname__ + suffix
    return g


_CONTROLLER: ThreadpoolController | None = None


def blas_single_thread() -> AbstractContextManager:
    """Context in which BLAS (OpenBLAS under numpy and scipy) runs on one thread.

    The grid solvers' numba kernels use OpenMP threads on all cores; OpenBLAS's own threads
    then spin against them: the 1 M-voxel IRE benchmark took 36.8 s with both pools and
    10.1 s with BLAS on one thread (2-core machine). The vector work done by BLAS between
    kernels is small, so nothing is lost.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
