"""Light diffusion solver against the analytic point-source solution in an infinite medium."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.anatomy.tissues import load_tissue_table
from hepablate.physics.laser.light import (
    DiffusionOperator,
    analytic_point_fluence,
    point_source,
)


def _liver_optics() -> tuple[float, float]:
    o = load_tissue_table().tissues["liver"].optical_1064nm
    return 0.1 * float(o.mu_a_per_cm.value), 0.1 * float(o.mu_s_reduced_per_cm.value)


def _solve(h: float, size_mm: float, power_w: float = 2.0):
    mu_a, mu_s = _liver_optics()
    n = int(round(size_mm / h)) | 1
    shape = (n, n, n)
    op = DiffusionOperator.build(
        np.full(shape, mu_a), np.full(shape, mu_s), np.ones(shape, bool), h
    )
    c = (n - 1) // 2
    phi, iters = op.solve(point_source(shape, np.array([c, c, c], float), power_w, h))
    return phi, c, mu_a, mu_s, iters


def _rel_error(phi, c, h, mu_a, mu_s, radii_mm, power_w=2.0):
    idx = np.rint(np.asarray(radii_mm) / h).astype(int)
    num = phi[c, c, c + idx]
    ana = analytic_point_fluence(idx * h, power_w, mu_a, mu_s)
    return np.abs(num / ana - 1)


def test_point_source_matches_analytic_within_2_percent():
    h = 0.5
    phi, c, mu_a, mu_s, _ = _solve(h, 50.0)
    radii = np.arange(4.0, 15.01, 1.0)
    err = _rel_error(phi, c, h, mu_a, mu_s, radii)
    assert err.max() < 0.02, err
    # The same along a diagonal (tests isotropy of the 7-point stencil).
    k = np.arange(6, 17)
    r = np.sqrt(3) * k * h
    diag = phi[c + k, c + k, c + k]
    assert np.max(np.abs(diag / analytic_point_fluence(r, 2.0, mu_a, mu_s) - 1)) < 0.03


def test_all_light_is_absorbed_in_a_large_medium():
    h = 1.0
    phi, _, mu_a, _, _ = _solve(h, 61.0)
    absorbed_w = float((mu_a * phi).sum()) * h**3
    assert absorbed_w == pytest.approx(2.0, rel=1e-3)


def test_grid_convergence_second_order():
    radii = np.array([6.0, 8.0, 10.0, 12.0])
    errs = []
    for h in (1.0, 0.5):
        phi, c, mu_a, mu_s, _ = _solve(h, 50.0)
        errs.append(_rel_error(phi, c, h, mu_a, mu_s, radii).max())
    assert errs[1] < errs[0] / 3.0, errs  # second order would give a factor 4


def test_fluence_is_linear_in_power_and_sources_add():
    h = 1.0
    mu_a, mu_s = _liver_optics()
    shape = (31, 31, 31)
    op = DiffusionOperator.build(
        np.full(shape, mu_a), np.full(shape, mu_s), np.ones(shape, bool), h
    )
    a = op.solve(point_source(shape, np.array([10.0, 15, 15]), 1.0, h), rtol=1e-10)[0]
    b = op.solve(point_source(shape, np.array([20.3, 15, 15.5]), 1.0, h), rtol=1e-10)[0]
    both = op.solve(
        point_source(shape, np.array([10.0, 15, 15]), 3.0, h)
        + point_source(shape, np.array([20.3, 15, 15.5]), 2.0, h),
        rtol=1e-10,
    )[0]
    np.testing.assert_allclose(both, 3 * a + 2 * b, rtol=1e-6, atol=1e-12)


def test_stronger_absorption_shortens_penetration():
    h = 1.0
    mu_a, mu_s = _liver_optics()
    shape = (41, 41, 41)
    src = point_source(shape, np.array([20.0, 20, 20]), 1.0, h)
    out = []
    for f in (1.0, 2.0):
        op = DiffusionOperator.build(
            np.full(shape, f * mu_a), np.full(shape, mu_s), np.ones(shape, bool), h
        )
        phi = op.solve(src)[0]
        out.append(phi[20, 20, 30] / phi[20, 20, 22])
    assert out[1] < out[0]


def test_outside_voxels_hold_zero_fluence():
    h = 1.0
    mu_a, mu_s = _liver_optics()
    shape = (21, 21, 21)
    inside = np.ones(shape, bool)
    inside[:, :, 15:] = False
    op = DiffusionOperator.build(np.full(shape, mu_a), np.full(shape, mu_s), inside, h)
    phi = op.solve(point_source(shape, np.array([10.0, 10, 10]), 1.0, h))[0]
    assert np.all(phi[:, :, 15:] == 0)
    assert phi[10, 10, 14] > 0
