"""Steady-state light transport by the diffusion approximation (1064 nm).

    -div(D grad Phi) + mu_a Phi = S,    D = 1 / (3 (mu_a + mu_s'))

Units: lengths in mm, mu_a and mu_s' in 1/mm, fluence rate Phi in W/mm^2, source S in W/mm^3.
Discretisation: cell-centred finite volumes on an isotropic grid (7-point stencil), face
diffusion coefficient the harmonic mean of the two cells. Voxels outside `inside` (air, or
outside the cropped light domain) and the ghost cells beyond the grid edge hold Phi = 0 (a
zero-fluence boundary; the domain is cropped far enough from the sources that this does not
matter, see docs/physics-laser.md). The fibres' sources (forward-peaked bare tips, line-source
diffusers) are built in emission.py; `point_source` is the isotropic point of the analytic
verification.

Because the equation is linear, `unit_fluence` solves one system per fibre for 1 W; callers
scale by the fibre power and add fibres. Solver: preconditioned conjugate gradients (Jacobi),
matrix-free with numba kernels; the absorption term bounds the condition number independently
of the grid size, so the iteration count stays around 100 at 1 mm.

Reference: Jacques and Pogue 2008, J Biomed Opt 13:041302 (diffusion theory for tissue optics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hepablate.physics.stencil import StencilSystem


@dataclass
class DiffusionOperator(StencilSystem):
    """The assembled (matrix-free) diffusion operator on one grid."""

    spacing_mm: float
    solver_name: ClassVar[str] = "light"

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


def point_source(
    shape: tuple[int, int, int], ijk: np.ndarray, power_w: float, spacing_mm: float
) -> np.ndarray:
    """Source density S (W/mm^3) of an isotropic point source at continuous index `ijk`
    (i, j, k), spread over the 8 surrounding voxels with trilinear weights (the verification
    source; plans use `emission.emission_points`)."""
    from hepablate.physics.laser.emission import source_density

    return source_density(shape, np.asarray(ijk, float), np.ones(1), power_w, spacing_mm**3)


def analytic_point_fluence(
    r_mm: np.ndarray, power_w: float, mu_a_per_mm: float, mu_s_reduced_per_mm: float
) -> np.ndarray:
    """Phi(r) = P exp(-mu_eff r) / (4 pi D r) in an infinite homogeneous medium (W/mm^2)."""
    d = 1.0 / (3.0 * (mu_a_per_mm + mu_s_reduced_per_mm))
    mu_eff = np.sqrt(mu_a_per_mm / d)
    return power_w * np.exp(-mu_eff * r_mm) / (4.0 * np.pi * d * r_mm)
