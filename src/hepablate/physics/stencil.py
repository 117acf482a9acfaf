"""Symmetric 7-point stencil systems on a 3D grid (array order k, j, i) and their
Jacobi-preconditioned conjugate-gradient solve, matrix-free in fused numba kernels.

`A x = diag * x - sum over the 6 neighbours of face * x_neighbour`, with one face array per
axis (`fx` between i and i + 1, etc.); a zero face decouples two cells. Used by the laser
light-diffusion model and by the Pennes bioheat step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba as nb
import numpy as np

from hepablate.physics.kernels import _variant, use_parallel


def _matvec_dot_py(x, diag, fx, fy, fz, y):
    """y = A x; returns x . y."""
    nk, nj, ni = x.shape
    acc = np.zeros(nk)
    for k in nb.prange(nk):
        s = 0.0
        for j in range(nj):
            for i in range(ni):
                v = diag[k, j, i] * x[k, j, i]
                if i > 0:
                    v -= fx[k, j, i - 1] * x[k, j, i - 1]
                if i < ni - 1:
                    v -= fx[k, j, i] * x[k, j, i + 1]
                if j > 0:
                    v -= fy[k, j - 1, i] * x[k, j - 1, i]
                if j < nj - 1:
                    v -= fy[k, j, i] * x[k, j + 1, i]
                if k > 0:
                    v -= fz[k - 1, j, i] * x[k - 1, j, i]
                if k < nk - 1:
                    v -= fz[k, j, i] * x[k + 1, j, i]
                y[k, j, i] = v
                s += v * x[k, j, i]
        acc[k] = s
    return acc.sum()


def _update_py(x, r, z, p, q, inv_diag, alpha):
    """x += alpha p; r -= alpha q; z = r / diag; returns (r . z, r . r)."""
    nk, nj, ni = x.shape
    acc_rz = np.zeros(nk)
    acc_rr = np.zeros(nk)
    for k in nb.prange(nk):
        s1 = 0.0
        s2 = 0.0
        for j in range(nj):
            for i in range(ni):
                x[k, j, i] += alpha * p[k, j, i]
                rv = r[k, j, i] - alpha * q[k, j, i]
                r[k, j, i] = rv
                zv = rv * inv_diag[k, j, i]
                z[k, j, i] = zv
                s1 += rv * zv
                s2 += rv * rv
        acc_rz[k] = s1
        acc_rr[k] = s2
    return acc_rz.sum(), acc_rr.sum()


def _direction_py(p, z, beta):
    nk, nj, ni = p.shape
    for k in nb.prange(nk):
        for j in range(nj):
            for i in range(ni):
                p[k, j, i] = z[k, j, i] + beta * p[k, j, i]


_KERNELS = {
    par: tuple(
        nb.njit(parallel=par, cache=True)(_variant(f, "_par" if par else "_ser"))
        for f in (_matvec_dot_py, _update_py, _direction_py)
    )
    for par in (False, True)
}


@dataclass
class StencilSystem:
    """A symmetric positive definite 7-point stencil system (see the module docstring)."""

    diag: np.ndarray
    fx: np.ndarray
    fy: np.ndarray
    fz: np.ndarray

    #: Named in the non-convergence error.
    solver_name: ClassVar[str] = "stencil"

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = np.empty_like(x)
        _KERNELS[use_parallel(x.size)][0](x, self.diag, self.fx, self.fy, self.fz, y)
        return y

    def solve(
        self,
        rhs: np.ndarray,
        x0: np.ndarray | None = None,
        rtol: float = 1e-6,
        max_iter: int = 5000,
        min_parallel: int | None = None,
    ) -> tuple[np.ndarray, int]:
        """Solve A x = rhs by Jacobi-preconditioned CG, stopped when ||r|| <= rtol ||rhs||;
        returns (x, iterations). Raises RuntimeError if it does not converge in `max_iter`."""
        x = np.zeros_like(rhs) if x0 is None else np.array(x0, dtype=rhs.dtype, copy=True)
        par = (
            use_parallel(rhs.size) if min_parallel is None else use_parallel(rhs.size, min_parallel)
        )
        _matvec_dot, _update, _direction = _KERNELS[par]
        inv_diag = 1.0 / self.diag
        q = np.empty_like(x)
        _matvec_dot(x, self.diag, self.fx, self.fy, self.fz, q)
        r = rhs - q
        z = r * inv_diag
        p = z.copy()
        rz = float(np.vdot(r, z))
        bnorm = float(np.sqrt(np.vdot(rhs, rhs))) or 1.0
        if np.sqrt(np.vdot(r, r)) <= rtol * bnorm:
            return x, 0
        for it in range(1, max_iter + 1):
            pq = _matvec_dot(p, self.diag, self.fx, self.fy, self.fz, q)
            alpha = rz / pq
            rz_new, rr = _update(x, r, z, p, q, inv_diag, alpha)
            if np.sqrt(rr) <= rtol * bnorm:
                return x, it
            _direction(p, z, rz_new / rz)
            rz = rz_new
        raise RuntimeError(f"{self.solver_name} solver did not converge in {max_iter} iterations")
