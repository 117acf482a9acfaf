"""Steady-state light transport by the diffusion approximation (1064 nm).

    -div(D grad Phi) + mu_a Phi = S,    D = 1 / (3 (mu_a + mu_s'))

Units: lengths in mm, mu_a and mu_s' in 1/mm, fluence rate Phi in W/mm^2, source S in W/mm^3.
Discretisation: cell-centred finite volumes on an isotropic grid (7-point stencil), face
diffusion coefficient the harmonic mean of the two cells. Voxels outside `inside` (air, or
outside the cropped light domain) and the ghost cells beyond the grid edge hold Phi = 0 (a
zero-fluence boundary; the domain is cropped far enough from the sources that this does not
matter, see docs/physics-laser.md). A bare fibre is an isotropic point source at the tip,
spread over the 8 voxels around the tip with trilinear weights (the injected power is exact).

Because the equation is linear, `unit_fluence` solves one system per fibre for 1 W; callers
scale by the fibre power and add fibres. Solver: preconditioned conjugate gradients (Jacobi),
matrix-free with numba kernels; the absorption term bounds the condition number independently
of the grid size, so the iteration count stays around 100 at 1 mm.

Reference: Jacques and Pogue 2008, J Biomed Opt 13:041302 (diffusion theory for tissue optics).
"""

from __future__ import annotations

from dataclasses import dataclass

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


#: Grids smaller than this (voxels) use the serial kernels: thread start-up and barriers cost
#: more than they save on small grids.
_KERNELS = {
    par: tuple(
        nb.njit(parallel=par, cache=True)(_variant(f, "_par" if par else "_ser"))
        for f in (_matvec_dot_py, _update_py, _direction_py)
    )
    for par in (False, True)
}


@dataclass
class DiffusionOperator:
    """The assembled (matrix-free) diffusion operator on one grid."""

    diag: np.ndarray
    fx: np.ndarray
    fy: np.ndarray
    fz: np.ndarray
    spacing_mm: float

    @classmethod
    def build(
        cls,
        mu_a_per_mm: np.ndarray,
        mu_s_reduced_per_mm: np.ndarray,
        inside: np.ndarray,
        spacing_mm: float,
    ) -> DiffusionOperator:
        h2 = spacing_mm**2
        d = np.where(inside, 1.0 / (3.0 * (mu_a_per_mm + mu_s_reduced_per_mm)), 0.0)

        def face(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            s = a + b
            return np.divide(2.0 * a * b, s, out=np.zeros_like(s), where=s > 0) / h2

        fx = face(d[:, :, :-1], d[:, :, 1:])
        fy = face(d[:, :-1, :], d[:, 1:, :])
        fz = face(d[:-1, :, :], d[1:, :, :])
        # Each cell loses D_p / h^2 through every face whose far side holds Phi = 0 (outside
        # cell or grid edge); faces between two inside cells contribute their harmonic value.
        diag = np.where(inside, mu_a_per_mm + 6.0 * d / h2, 1.0)
        ins = inside.astype(float)
        for f, ax in ((fx, 2), (fy, 1), (fz, 0)):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[ax] = slice(None, -1)
            hi[ax] = slice(1, None)
            both = ins[tuple(lo)] * ins[tuple(hi)]
            # replace the D_p/h^2 counted above by the harmonic face value on shared faces
            diag[tuple(lo)] += both * (f - d[tuple(lo)] / h2)
            diag[tuple(hi)] += both * (f - d[tuple(hi)] / h2)
            f *= both
        return cls(diag, fx, fy, fz, spacing_mm)

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
    ) -> tuple[np.ndarray, int]:
        """Solve A x = rhs by Jacobi-preconditioned CG; returns (x, iterations)."""
        x = np.zeros_like(rhs) if x0 is None else x0.copy()
        _matvec_dot, _update, _direction = _KERNELS[use_parallel(rhs.size)]
        inv_diag = 1.0 / self.diag
        r = rhs - self.apply(x)
        z = r * inv_diag
        p = z.copy()
        q = np.empty_like(x)
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
        raise RuntimeError(f"light solver did not converge in {max_iter} iterations")


def point_source(
    shape: tuple[int, int, int], ijk: np.ndarray, power_w: float, spacing_mm: float
) -> np.ndarray:
    """Source density S (W/mm^3) of an isotropic point source at continuous index `ijk`
    (i, j, k), spread over the 8 surrounding voxels with trilinear weights."""
    s = np.zeros(shape)
    base = np.floor(ijk).astype(int)
    frac = np.asarray(ijk, float) - base
    vol = spacing_mm**3
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                w = (
                    (frac[0] if di else 1 - frac[0])
                    * (frac[1] if dj else 1 - frac[1])
                    * (frac[2] if dk else 1 - frac[2])
                )
                i, j, k = base[0] + di, base[1] + dj, base[2] + dk
                if w > 0 and 0 <= i < shape[2] and 0 <= j < shape[1] and 0 <= k < shape[0]:
                    s[k, j, i] += power_w * w / vol
    return s


def analytic_point_fluence(
    r_mm: np.ndarray, power_w: float, mu_a_per_mm: float, mu_s_reduced_per_mm: float
) -> np.ndarray:
    """Phi(r) = P exp(-mu_eff r) / (4 pi D r) in an infinite homogeneous medium (W/mm^2)."""
    d = 1.0 / (3.0 * (mu_a_per_mm + mu_s_reduced_per_mm))
    mu_eff = np.sqrt(mu_a_per_mm / d)
    return power_w * np.exp(-mu_eff * r_mm) / (4.0 * np.pi * d * r_mm)
