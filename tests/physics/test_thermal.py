"""Pennes solver vs the analytic solution for a Gaussian temperature pulse with perfusion in
an infinite medium: theta(r, t) = theta0 (s0^2 / s^2)^(3/2) exp(-r^2 / (2 s^2)) exp(-w t),
s^2 = s0^2 + 2 alpha t, w = perfusion * rho_b c_b / (rho c)."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.physics.thermal import PennesSolver


@pytest.mark.parametrize("perfusion_per_s", [0.0, 0.01])
def test_gaussian_pulse_matches_analytic(perfusion_per_s):
    h_mm, n = 1.0, 41
    k, rho, c = 0.52, 1079.0, 3540.0
    rho_b, c_b = 1050.0, 3617.0
    alpha_mm2 = k / (rho * c) * 1e6
    w = perfusion_per_s * rho_b * c_b / (rho * c)
    active = np.ones((n, n, n), bool)
    m = active.sum()
    solver = PennesSolver(
        active,
        h_mm * 1e-3,
        np.full(m, k),
        np.full(m, rho * c),
        np.full(m, perfusion_per_s * rho_b * c_b),
        t_blood_c=37.0,
    )
    x = (np.arange(n) - n // 2) * h_mm
    zz, yy, xx = np.meshgrid(x, x, x, indexing="ij")
    r2 = (xx**2 + yy**2 + zz**2).ravel()
    s0, theta0 = 3.0, 20.0
    temp = 37.0 + theta0 * np.exp(-r2 / (2 * s0**2))
    t_end, dt = 20.0, 0.25
    for _ in range(int(t_end / dt)):
        temp = solver.step(temp, None, dt)
    s2 = s0**2 + 2 * alpha_mm2 * t_end
    analytic = 37.0 + theta0 * (s0**2 / s2) ** 1.5 * np.exp(-r2 / (2 * s2)) * np.exp(-w * t_end)
    rise_num, rise_ana = temp - 37.0, analytic - 37.0
    peak = rise_ana.max()
    print(
        f"perfusion {perfusion_per_s}: peak rise {rise_num.max():.4f} vs {peak:.4f} degC, "
        f"max abs error {np.abs(rise_num - rise_ana).max() / peak:.2%} of the peak"
    )
    assert rise_num.max() == pytest.approx(peak, rel=0.02)
    assert np.abs(rise_num - rise_ana).max() < 0.02 * peak


def test_fixed_cells_stay_at_blood_temperature():
    n = 11
    active = np.ones((n, n, n), bool)
    m = active.sum()
    fixed = np.zeros(m, bool)
    fixed[: n * n] = True  # one face layer is a vessel
    solver = PennesSolver(
        active, 1e-3, np.full(m, 0.5), np.full(m, 3.8e6), np.zeros(m), 37.0, fixed=fixed
    )
    temp = np.full(m, 37.0)
    for _ in range(10):
        temp = solver.step(temp, np.full(m, 1e6), 5.0)
    assert np.allclose(temp[fixed], 37.0)
    assert temp[~fixed].min() > 37.0
    # Heat flows into the sink: cells next to it are cooler than the far face.
    t3 = temp.reshape(n, n, n)
    assert t3[1].mean() < t3[-1].mean()


@pytest.mark.parametrize("n", [12, 33])  # serial and parallel kernels
def test_step_matches_direct_solve_of_assembled_system(n):
    """The matrix-free step solves the finite-volume system assembled independently as a
    sparse matrix (`FvOperator`; heterogeneous conductivity with a steel-like needle line,
    fixed vessel cells, inactive cells), to the CG tolerance."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    from hepablate.physics.solvers import FvOperator

    rng = np.random.default_rng(0)
    active = np.ones((n, n, n), bool)
    active[:, :2, :3] = False
    m = int(active.sum())
    k = rng.uniform(0.4, 0.6, m)
    k[:n] = 16.0
    fixed = np.zeros(m, bool)
    fixed[n : n + 30] = True
    cap = rng.uniform(3.5e6, 3.9e6, m)
    perf = np.full(m, 3e4)
    t_b, dt, h = 37.0, 5.0, 1e-3
    s = PennesSolver(active, h, k, cap, perf, t_b, fixed)
    t0 = t_b + rng.uniform(0, 5, m)
    q = rng.uniform(0, 1e6, m)
    t1 = s.step(t0, q, dt)
    assert 0 < s.iterations[-1] < 500

    op = FvOperator(active, h)
    kmat = op.matrix(k)
    a = kmat + sp.diags(cap * h**3 / dt + perf * h**3)
    free = sp.diags((~fixed).astype(float))
    a = (free @ a @ free + sp.diags(fixed.astype(float))).tocsc()
    rhs = cap * h**3 / dt * t0 + perf * h**3 * t_b + q * h**3
    rhs -= kmat @ np.where(fixed, t_b, 0.0)  # couplings to fixed cells
    rhs[fixed] = t_b
    exact = spsolve(a, rhs)
    np.testing.assert_allclose(t1[fixed], t_b)
    np.testing.assert_allclose(t1, exact, rtol=0, atol=1e-3)  # degC
    assert np.abs(t1 - t0).max() > 0.1  # the step does change the temperature
