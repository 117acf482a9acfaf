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

from hepablate.core.cache import ByteBudgetCache
from hepablate.physics.stencil import StencilSystem

#: Boxes with fewer cells use the serial kernels.
PARALLEL_MIN_CELLS = 32768


class _PennesSystem(StencilSystem):
    solver_name = "Pennes"


class PennesSolver:
    """Implicit-Euler time stepping of the Pennes equation on `active` cells (k, j, i).

    Each step solves the finite-volume system matrix-free on the grid (`StencilSystem`:
    Jacobi-preconditioned CG in fused numba kernels, stopped at a residual of 1e-8 of the
    right-hand side). Fixed cells are decoupled: their neighbours see T_b through the
    right-hand side."""

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
        self.cells = np.flatnonzero(active.ravel())
        vol = h_m**3
        self.cap = rho_c_j_per_m3_k * vol
        self.perf = perfusion_w_per_m3_k * vol
        self.fixed = np.zeros(self.cells.size, bool) if fixed is None else fixed
        self.t_blood_c = float(t_blood_c)
        self.vol = vol
        self.shape = active.shape
        cells = self.cells
        kg = np.zeros(self.shape)
        kg.ravel()[cells] = k_w_per_m_k
        fixed_g = np.zeros(self.shape, bool)
        fixed_g.ravel()[cells] = self.fixed
        ksum = np.zeros(self.shape)
        coupling = np.zeros(self.shape)
        faces = []
        for ax in (2, 1, 0):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[ax] = slice(None, -1)
            hi[ax] = slice(1, None)
            lo_, hi_ = tuple(lo), tuple(hi)
            a, b = kg[lo_], kg[hi_]
            # Harmonic-mean face conductance (W/K), as `solvers.FvOperator.face_conductance`; zero
            # where either side is outside the active cells.
            g = h_m * 2.0 * a * b / np.maximum(a + b, 1e-300)
            ksum[lo_] += g
            ksum[hi_] += g
            coupling[lo_] += g * fixed_g[hi_]
            coupling[hi_] += g * fixed_g[lo_]
            faces.append(g * ~(fixed_g[lo_] | fixed_g[hi_]))
        self._faces = tuple(faces)  # fx, fy, fz
        self._ksum = ksum.ravel()[cells]
        self._coupling = coupling.ravel()[cells] * self.t_blood_c
        # One system matrix per time step (a run uses a few step lengths).
        self._cache: ByteBudgetCache[float, _PennesSystem] = ByteBudgetCache()
        self.iterations: list[int] = []

    def _system(self, dt_s: float) -> _PennesSystem:
        system = self._cache.get(dt_s)
        if system is None:
            diag = np.ones(self.shape)
            d = self._ksum + self.cap / dt_s + self.perf
            diag.ravel()[self.cells] = np.where(self.fixed, 1.0, d)
            system = _PennesSystem(diag, *self._faces)
            self._cache.put(dt_s, system)
        return system

    def step(
        self,
        t_c: np.ndarray,
        q_w_per_m3: np.ndarray | None,
        dt_s: float,
        guess: np.ndarray | None = None,
    ) -> np.ndarray:
        """Advance temperature `t_c` by `dt_s` with source `q_w_per_m3` (constant in the step).
        `guess` (optional) starts the iterative solve (default: `t_c`)."""
        system = self._system(dt_s)
        rhs = self.cap / dt_s * t_c + self.perf * self.t_blood_c
        if q_w_per_m3 is not None:
            rhs = rhs + q_w_per_m3 * self.vol
        rhs = np.where(self.fixed, self.t_blood_c, rhs + self._coupling)
        cells = self.cells
        rhs_g = np.zeros(self.shape)
        rhs_g.ravel()[cells] = rhs
        x0 = np.zeros(self.shape)
        x0.ravel()[cells] = t_c if guess is None else guess
        x, its = system.solve(rhs_g, x0, rtol=1e-8, max_iter=500, min_parallel=PARALLEL_MIN_CELLS)
        self.iterations.append(its)
        return x.ravel()[cells]
