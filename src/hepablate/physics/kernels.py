"""Helpers for the numba kernels of the grid solvers: when to run them in parallel, and
separate cache entries for the serial and parallel compilations of one kernel."""

from __future__ import annotations

import os
import types
from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController

PARALLEL_MIN_VOXELS = 200_000


_CPUS = os.cpu_count() or 1


def use_parallel(n_voxels: int, min_voxels: int = PARALLEL_MIN_VOXELS) -> bool:
    """Parallel kernels only on large grids and when the cores are not already busy: with
    the machine oversubscribed, the threads of a parallel kernel wait at its barriers and a
    step costs several times the serial one (measured on the shared 2-core machine:
    25 s instead of 7.5 s for the 1 M-voxel benchmark at load average 7)."""
    if n_voxels < min_voxels:
        return False
    try:
        load = os.getloadavg()[0]
    except OSError:
        return True
    return load < _CPUS + 0.5


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
