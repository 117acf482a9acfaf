"""Shared discretisation and solvers for the voxel-grid field problems.

`FvOperator` assembles the 7-point cell-centred finite-volume operator
``(A u)_c = sum_faces G_f (u_c - u_n)`` over the active cells of a grid, with face
conductances ``G_f = h * 2 s_c s_n / (s_c + s_n)`` (harmonic mean of the cell coefficients,
units of s times metres) and zero flux across the grid boundary and into inactive cells.
The sparsity pattern is built once; `matrix(coeff)` only refills values, so the nonlinear
iterations do not rebuild index structures.

`SpdSolver` is conjugate gradients preconditioned by a pyamg smoothed-aggregation V-cycle.
The AMG hierarchy is built once and reused as the preconditioner for later matrices with
the same pattern (different conductivities), which keeps the setup cost out of the loop.
"""

from __future__ import annotations

import time

import numpy as np
import pyamg
import scipy.sparse as sp
from scipy.sparse.linalg import cg


class FvOperator:
    """Finite-volume diffusion operator on the active cells of a 3D grid (array order k, j, i).

    `h_m` is the (isotropic) cell size in metres.
    """

    def __init__(self, active: np.ndarray, h_m: float) -> None:
        self.shape = active.shape
        self.active = active
        self.h_m = float(h_m)
        self.index = np.full(active.shape, -1, dtype=np.int64)
        flat = np.flatnonzero(active.ravel())
        self.cells = flat
        self.n = int(flat.size)
        self.index.ravel()[flat] = np.arange(self.n)
        lo, hi = [], []
        for axis in range(3):
            a = _shift_pair(self.index, axis)
            lo.append(a[0])
            hi.append(a[1])
        self.face_lo = np.concatenate(lo)
        self.face_hi = np.concatenate(hi)
        nf = self.face_lo.size
        rows = np.concatenate([self.face_lo, self.face_hi, np.arange(self.n)])
        cols = np.concatenate([self.face_hi, self.face_lo, np.arange(self.n)])
        marker = np.arange(2 * nf + self.n, dtype=np.float64)
        m = sp.csr_matrix((marker + 1.0, (rows, cols)), shape=(self.n, self.n))
        m.sort_indices()
        self._perm = (m.data - 1.0).astype(np.int64)
        self._pattern = m
        self._nf = nf

    def face_conductance(self, coeff: np.ndarray) -> np.ndarray:
        a = coeff[self.face_lo]
        b = coeff[self.face_hi]
        return self.h_m * 2.0 * a * b / np.maximum(a + b, 1e-300)

    def matrix(self, coeff: np.ndarray, diag_extra: np.ndarray | None = None) -> sp.csr_matrix:
        """Operator for per-cell coefficient `coeff` (e.g. S/m), plus an optional diagonal."""
        g = self.face_conductance(coeff)
        diag = np.bincount(self.face_lo, g, self.n) + np.bincount(self.face_hi, g, self.n)
        if diag_extra is not None:
            diag = diag + diag_extra
        vals = np.concatenate([-g, -g, diag])
        m = self._pattern.copy()
        m.data = vals[self._perm]
        return m

    def to_grid(self, values: np.ndarray, fill: float = 0.0, dtype=None) -> np.ndarray:
        out = np.full(self.shape, fill, dtype=dtype or values.dtype)
        out.ravel()[self.cells] = values
        return out

    def gradient(self, u: np.ndarray) -> np.ndarray:
        """Cell-centred gradient of active-cell values `u` (per metre), shape (3, n) in
        (i, j, k) axis order: central differences, one-sided next to inactive cells."""
        full = self.to_grid(u.astype(np.float64))
        act = self.active
        out = np.empty((3, self.n))
        for comp, axis in enumerate((2, 1, 0)):
            g = np.zeros(self.shape)
            cnt = np.zeros(self.shape)
            sl_hi = [slice(None)] * 3
            sl_lo = [slice(None)] * 3
            sl_hi[axis] = slice(1, None)
            sl_lo[axis] = slice(None, -1)
            th, tl = tuple(sl_hi), tuple(sl_lo)
            ok = act[th] & act[tl]
            d = np.where(ok, full[th] - full[tl], 0.0)
            g[tl] += d
            cnt[tl] += ok
            g[th] += d
            cnt[th] += ok
            out[comp] = (
                g.ravel()[self.cells] / np.maximum(cnt.ravel()[self.cells], 1.0)
            ) / self.h_m
        return out


def _shift_pair(index: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    sl_a = [slice(None)] * 3
    sl_b = [slice(None)] * 3
    sl_a[axis] = slice(None, -1)
    sl_b[axis] = slice(1, None)
    a = index[tuple(sl_a)].ravel()
    b = index[tuple(sl_b)].ravel()
    ok = (a >= 0) & (b >= 0)
    return a[ok], b[ok]


class SpdSolver:
    """AMG-preconditioned CG whose hierarchy is built on the first matrix and then reused."""

    def __init__(self, matrix: sp.csr_matrix) -> None:
        self.ml = pyamg.smoothed_aggregation_solver(
            matrix,
            symmetry="hermitian",
            max_coarse=500,
            presmoother=("block_gauss_seidel", {"sweep": "symmetric"}),
            postsmoother=("block_gauss_seidel", {"sweep": "symmetric"}),
        )
        self.precond = self.ml.aspreconditioner(cycle="V")
        self.iterations: list[int] = []
        self.solve_seconds: list[float] = []

    def solve(
        self,
        matrix: sp.csr_matrix,
        rhs: np.ndarray,
        x0: np.ndarray | None = None,
        rtol: float = 1e-8,
        maxiter: int = 400,
    ) -> np.ndarray:
        count = [0]

        def cb(_x: np.ndarray) -> None:
            count[0] += 1

        t0 = time.perf_counter()
        x, info = cg(matrix, rhs, x0=x0, rtol=rtol, maxiter=maxiter, M=self.precond, callback=cb)
        self.solve_seconds.append(time.perf_counter() - t0)
        self.iterations.append(count[0])
        if info < 0:
            raise RuntimeError("CG breakdown")
        return x
