"""Pennes bioheat on a voxel grid (implicit Euler), shared by the thermal models.

``rho c dT/dt = div(k grad T) - w_b rho_b c_b (T - T_b) + q``, temperatures in degC, SI units
otherwise (Pennes 1948). Metabolic heat is taken to balance perfusion at the baseline T_b, so
only the added source q appears. Cells in `fixed` (large vessels) are held at T_b: they act
as heat sinks (PARAMETERS.md: vessel wall at blood temperature). Zero flux across the grid
boundary. Finite volumes with harmonic-mean face conductances; implicit Euler is
unconditionally stable and first order in time (verified in tests/physics against the
analytic Gaussian solution with perfusion).
"""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp

from hepablate.physics.kernels import _variant, use_parallel
from hepablate.physics.solvers import FvOperator


# ---- Jacobi-preconditioned CG on the CSR system, fused kernels (numba) --------------------
def _matvec_dot_py(indptr, indices, data, x, y):
    """y = A x; returns x . y."""
    s = 0.0
    for i in nb.prange(x.size):
        v = 0.0
        for jj in range(indptr[i], indptr[i + 1]):
            v += data[jj] * x[indices[jj]]
        y[i] = v
        s += v * x[i]
    return s


def _update_py(x, r, z, p, q, inv_diag, alpha):
    """x += alpha p; r -= alpha q; z = r / diag; returns (r . z, r . r)."""
    s1 = 0.0
    s2 = 0.0
    for i in nb.prange(x.size):
        x[i] += alpha * p[i]
        rv = r[i] - alpha * q[i]
        r[i] = rv
        zv = rv * inv_diag[i]
        z[i] = zv
        s1 += rv * zv
        s2 += rv * rv
    return s1, s2


def _direction_py(p, z, beta):
    for i in nb.prange(p.size):
        p[i] = z[i] + beta * p[i]


_KERNELS = {
    par: tuple(
        nb.njit(parallel=par, cache=True)(_variant(f, "_par" if par else "_ser"))
        for f in (_matvec_dot_py, _update_py, _direction_py)
    )
    for par in (False, True)
}

#: Systems with fewer cells use the serial kernels.
PARALLEL_MIN_CELLS = 32768


def pcg_csr(
    m: sp.csr_matrix,
    inv_diag: np.ndarray,
    rhs: np.ndarray,
    x0: np.ndarray,
    rtol: float,
    max_iter: int,
) -> tuple[np.ndarray, int]:
    """Jacobi-preconditioned CG for the symmetric positive definite CSR matrix `m`, stopped
    when ||r|| <= rtol ||rhs|| (the criterion of `scipy.sparse.linalg.cg`); returns
    (x, iterations). Raises RuntimeError if it does not converge in `max_iter`."""
    matvec_dot, update, direction = _KERNELS[use_parallel(rhs.size, PARALLEL_MIN_CELLS)]
    indptr, indices, data = m.indptr, m.indices, m.data
    x = np.array(x0, dtype=np.float64, copy=True)
    q = np.empty_like(x)
    matvec_dot(indptr, indices, data, x, q)
    r = rhs - q
    z = r * inv_diag
    p = z.copy()
    rz = float(np.dot(r, z))
    tol = rtol * (float(np.sqrt(np.dot(rhs, rhs))) or 1.0)
    if np.sqrt(np.dot(r, r)) <= tol:
        return x, 0
    for it in range(1, max_iter + 1):
        pq = matvec_dot(indptr, indices, data, p, q)
        alpha = rz / pq
        rz_new, rr = update(x, r, z, p, q, inv_diag, alpha)
        if np.sqrt(rr) <= tol:
            return x, it
        direction(p, z, rz_new / rz)
        rz = rz_new
    raise RuntimeError(f"Pennes solver did not converge in {max_iter} iterations")


class PennesSolver:
    """Implicit-Euler time stepping of the Pennes equation on `active` cells (k, j, i)."""

    def __init__(
        self,
        active: np.ndarray,
        h_m: float,
        k_w_per_m_k: np.ndarray,
        rho_c_j_per_m3_k: np.ndarray,
        perfusion_w_per_m3_k: np.ndarray,
        t_blood_c: float,
        fixed: np.ndarray | None = None,
    ) -> None:
        """Per-cell arrays are given on the active cells (length = active.sum())."""
        self.op = FvOperator(active, h_m)
        vol = h_m**3
        self.cap = rho_c_j_per_m3_k * vol
        self.perf = perfusion_w_per_m3_k * vol
        self.fixed = np.zeros(self.op.n, bool) if fixed is None else fixed
        self.t_blood_c = float(t_blood_c)
        self.vol = vol
        self._k = self.op.matrix(k_w_per_m_k)
        self._cache: dict[float, tuple[sp.csr_matrix, np.ndarray]] = {}
        self.iterations: list[int] = []
        self._coupling: np.ndarray | None = None

    def _system(self, dt_s: float) -> tuple[sp.csr_matrix, np.ndarray]:
        if dt_s not in self._cache:
            diag = self.cap / dt_s + self.perf
            m = (self._k + sp.diags(diag)).tocsr()
            # Fixed cells: identity rows, decoupled (their neighbours see T_b through the rhs).
            if self.fixed.any():
                keep = sp.diags((~self.fixed).astype(float))
                m = (keep @ m @ keep + sp.diags(self.fixed.astype(float))).tocsr()
            m.sort_indices()
            self._cache[dt_s] = (m, 1.0 / m.diagonal())
        return self._cache[dt_s]

    def step(
        self,
        t_c: np.ndarray,
        q_w_per_m3: np.ndarray | None,
        dt_s: float,
        guess: np.ndarray | None = None,
    ) -> np.ndarray:
        """Advance temperature `t_c` by `dt_s` with source `q_w_per_m3` (constant in the step).
        `guess` (optional) starts the iterative solve (default: `t_c`)."""
        m, inv_diag = self._system(dt_s)
        rhs = self.cap / dt_s * t_c + self.perf * self.t_blood_c
        if q_w_per_m3 is not None:
            rhs = rhs + q_w_per_m3 * self.vol
        if self.fixed.any():
            # Couplings of free cells to fixed cells move to the right-hand side.
            if self._coupling is None:
                self._coupling = self._k @ np.where(self.fixed, self.t_blood_c, 0.0)
            rhs = np.where(self.fixed, self.t_blood_c, rhs - self._coupling)
        x0 = t_c if guess is None else guess
        x, its = pcg_csr(m, inv_diag, rhs, x0, rtol=1e-8, max_iter=500)
        self.iterations.append(its)
        return x
