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

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import cg

from hepablate.physics.solvers import FvOperator


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

    def _system(self, dt_s: float) -> tuple[sp.csr_matrix, np.ndarray]:
        if dt_s not in self._cache:
            diag = self.cap / dt_s + self.perf
            m = (self._k + sp.diags(diag)).tocsr()
            # Fixed cells: identity rows, decoupled (their neighbours see T_b through the rhs).
            if self.fixed.any():
                keep = sp.diags((~self.fixed).astype(float))
                m = (keep @ m @ keep + sp.diags(self.fixed.astype(float))).tocsr()
            self._cache[dt_s] = (m, 1.0 / m.diagonal())
        return self._cache[dt_s]

    def step(self, t_c: np.ndarray, q_w_per_m3: np.ndarray | None, dt_s: float) -> np.ndarray:
        """Advance temperature `t_c` by `dt_s` with source `q_w_per_m3` (constant in the step)."""
        m, inv_diag = self._system(dt_s)
        rhs = self.cap / dt_s * t_c + self.perf * self.t_blood_c
        if q_w_per_m3 is not None:
            rhs = rhs + q_w_per_m3 * self.vol
        if self.fixed.any():
            # Couplings of free cells to fixed cells move to the right-hand side.
            coupling = self._k @ np.where(self.fixed, self.t_blood_c, 0.0)
            rhs = np.where(self.fixed, self.t_blood_c, rhs - coupling)
        count = [0]

        def cb(_x: np.ndarray) -> None:
            count[0] += 1

        x, _ = cg(m, rhs, x0=t_c, rtol=1e-8, maxiter=500, M=sp.diags(inv_diag), callback=cb)
        self.iterations.append(count[0])
        return x
