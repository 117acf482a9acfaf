"""The geometric multigrid solver against direct solves and its own required properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from hepablate.physics.ire.nonlinear import field_magnitude, relax_sigma
from hepablate.physics.ire.params import sigma_log_slope, sigma_of_field
from hepablate.physics.multigrid import GridMultigrid
from hepablate.physics.solvers import FvOperator, SpdSolver


def _problem(shape=(23, 30, 27), h_m=1e-3, seed=0, n_nodes=12):
    """Irregular body (a ball cut by a plane), blood-like inclusions, and electrode nodes
    whose kernels are small normalised blobs, as in `electrodes.py`."""
    rng = np.random.default_rng(seed)
    k, j, i = np.indices(shape)
    c = (np.array(shape) - 1) / 2
    r2 = ((k - c[0]) / c[0]) ** 2 + ((j - c[1]) / c[1]) ** 2 + ((i - c[2]) / c[2]) ** 2
    active = (r2 < 1.1) & (i > 2)
    op = FvOperator(active, h_m)
    sigma = np.full(op.n, 0.08)
    vessel = (((j - c[1]) ** 2 + (k - c[0] - 3) ** 2) < 6).ravel()[op.cells]
    sigma[vessel] = 0.7
    sigma *= np.exp(0.3 * rng.standard_normal(op.n))  # nonlinear-like variation
    centres = np.argwhere(active & (r2 < 0.4))
    rows, cols, vals = [], [], []
    for node in range(n_nodes):
        ck = centres[rng.integers(len(centres))]
        d2 = ((k - ck[0]) ** 2 + (j - ck[1]) ** 2 + (i - ck[2]) ** 2).ravel()[op.cells]
        near = np.flatnonzero(d2 <= 4)
        w = np.exp(-d2[near] / 2.0)
        rows.append(near)
        cols.append(np.full(near.size, node))
        vals.append(w / w.sum())
    w = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(op.n, n_nodes),
    )
    wi = 4e-4 * (1 + rng.random(n_nodes))
    a = (op.matrix(sigma) + w @ sp.diags(wi) @ w.T).tocsr()
    rhs = np.asarray(w @ (wi * rng.standard_normal(n_nodes)))
    return active, op, sigma, w, wi, a, rhs


def test_solution_matches_direct_solve():
    active, op, sigma, w, wi, a, rhs = _problem()
    mg = GridMultigrid(active, op.h_m, w)
    mg.update(sigma, wi)
    x = mg.solve(rhs, rtol=1e-9)
    ref = spla.spsolve(a.tocsc(), rhs)
    assert np.linalg.norm(x - ref) / np.linalg.norm(ref) < 1e-6
    assert np.linalg.norm(rhs - a @ x) / np.linalg.norm(rhs) < 1e-8
    # Agrees with the algebraic multigrid reference too.
    amg = SpdSolver(a).solve(a, rhs, rtol=1e-10)
    assert np.linalg.norm(x - amg) / np.linalg.norm(amg) < 1e-6


def test_matrix_free_operator_equals_assembled_matrix():
    active, op, sigma, w, wi, a, _ = _problem(seed=3)
    mg = GridMultigrid(active, op.h_m, w)
    mg.update(sigma, wi)
    u = np.random.default_rng(1).standard_normal(op.n)
    grid = op.to_grid(u)
    au = mg.apply(grid).ravel()[op.cells]
    np.testing.assert_allclose(au, a @ u, rtol=1e-5, atol=1e-6 * np.abs(a @ u).max())


def test_vcycle_is_symmetric_positive_definite():
    """CG needs a symmetric positive definite preconditioner (float32 rounding aside)."""
    active, op, sigma, w, wi, _, _ = _problem(seed=1)
    mg = GridMultigrid(active, op.h_m, w)
    mg.update(sigma, wi)
    rng = np.random.default_rng(2)
    x = op.to_grid(rng.standard_normal(op.n))
    y = op.to_grid(rng.standard_normal(op.n))
    mx = mg.precondition(x)
    my = mg.precondition(y)
    assert abs(np.vdot(mx, y) - np.vdot(x, my)) < 1e-5 * abs(np.vdot(mx, y))
    for _ in range(5):
        z = op.to_grid(rng.standard_normal(op.n))
        assert np.vdot(z, mg.precondition(z)) > 0


def test_iterations_do_not_grow_with_refinement():
    """Multigrid's defining property: the CG iteration count stays bounded as h halves."""
    its = []
    for n, h in ((16, 2e-3), (32, 1e-3), (64, 0.5e-3)):
        active, op, sigma, w, wi, _, rhs = _problem(shape=(n, n, n), h_m=h, seed=4)
        mg = GridMultigrid(active, op.h_m, w)
        mg.update(sigma, wi)
        mg.solve(rhs, rtol=1e-8)
        its.append(mg.iterations[-1])
    assert max(its) <= 25
    assert its[2] <= its[0] + 6, its


def test_conductivity_update_reuses_the_hierarchy():
    active, op, sigma, w, wi, _, rhs = _problem(seed=5)
    mg = GridMultigrid(active, op.h_m, w)
    mg.update(sigma, wi)
    x1 = mg.solve(rhs, rtol=1e-9)
    sigma2 = sigma * np.where(np.arange(op.n) % 3 == 0, 4.0, 1.0)
    mg.update(sigma2, 2 * wi)
    a2 = (op.matrix(sigma2) + w @ sp.diags(2 * wi) @ w.T).tocsr()
    x2 = mg.solve(rhs, x0=x1, rtol=1e-9)
    assert np.linalg.norm(rhs - a2 @ x2) / np.linalg.norm(rhs) < 1e-8


def test_gradient_matches_the_finite_volume_operator():
    active, op, sigma, w, wi, _, rhs = _problem(seed=6)
    mg = GridMultigrid(active, op.h_m, w)
    u = np.random.default_rng(0).standard_normal(op.n)
    np.testing.assert_allclose(mg.gradient(u), op.gradient(u), rtol=1e-12, atol=1e-9)


def test_zero_rhs_gives_zero():
    active, op, sigma, w, wi, _, _ = _problem(seed=7)
    mg = GridMultigrid(active, op.h_m, w)
    mg.update(sigma, wi)
    assert not mg.solve(np.zeros(op.n)).any()


@pytest.mark.parametrize("tf", [1.0, "array"])
def test_fused_picard_kernels_match_the_reference_formulas(tf):
    rng = np.random.default_rng(0)
    n = 5000
    e = rng.uniform(0, 1500, n)
    s0 = np.full(n, 0.08)
    s1 = np.full(n, 0.32)
    er = np.full(n, 460.0)
    ei = np.full(n, 700.0)
    factor = rng.uniform(1.0, 1.2, n) if tf == "array" else 1.0
    sig = rng.uniform(0.08, 0.32, n)
    expected = sig + np.minimum(0.9, 1 / (1 + sigma_log_slope(e, s0, s1, er, ei))) * (
        sigma_of_field(e, s0, s1, er, ei) * factor - sig
    )
    relax_sigma(e, sig, s0, s1, er, ei, factor, 0.9)
    np.testing.assert_allclose(sig, expected, rtol=1e-12)
    f = rng.standard_normal((3, n)) * 1e4
    out = np.empty(n)
    prev = rng.uniform(0, 100, n)
    diff, norm = field_magnitude(f, prev, out)
    mag = np.sqrt((f**2).sum(axis=0)) / 100
    np.testing.assert_allclose(out, mag, rtol=1e-12)
    assert diff == pytest.approx(np.linalg.norm(mag - prev), rel=1e-10)
    assert norm == pytest.approx(np.linalg.norm(mag), rel=1e-10)
