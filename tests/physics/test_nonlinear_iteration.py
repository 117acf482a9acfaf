"""The per-cell Picard relaxation on the model problem where it can cycle."""

from __future__ import annotations

import numpy as np

from hepablate.physics.ire.nonlinear import relax_sigma
from hepablate.physics.ire.params import sigma_of_field

S0, S1, E_REV, E_IRR = 0.08, 0.32, 460.0, 700.0


def _iterate(current_density: float, adaptive_from: int, steps: int = 80) -> list[float]:
    """A cell whose current density is fixed (E = J / sigma, as next to a needle)."""
    sig = np.array([S0])
    damp, last = np.ones(1), np.zeros(1)
    arrays = [np.array([v]) for v in (S0, S1, E_REV, E_IRR)]
    out = []
    for it in range(steps):
        e = np.array([current_density / sig[0]])
        relax_sigma(e, sig, *arrays, 1.0, 1.0, damp, last, adaptive=it >= adaptive_from)
        out.append(float(sig[0]))
    return out


def test_plain_relaxation_can_cycle_and_adaptive_damping_converges_to_the_fixed_point():
    j = 60.0  # sigma(E) passes the ramp: the Newton weight at the end points is 1
    plain = _iterate(j, adaptive_from=10**6)
    assert abs(plain[-1] - plain[-2]) > 0.1  # period-2 cycle between sigma0 and sigma1
    damped = _iterate(j, adaptive_from=3)
    sig = damped[-1]
    assert abs(damped[-1] - damped[-2]) < 1e-12
    fixed = sigma_of_field(np.array([j / sig]), S0, S1, E_REV, E_IRR)[0]
    assert abs(sig - fixed) < 1e-9
    assert S0 < sig < S1


def test_adaptive_damping_leaves_a_monotone_iteration_alone():
    """Without sign changes the damping factor stays 1 (the plain relaxation)."""
    sig = np.array([0.1, 0.2])
    damp, last = np.ones(2), np.zeros(2)
    arrays = [np.full(2, v) for v in (S0, S1, E_REV, E_IRR)]
    for _ in range(5):
        relax_sigma(np.array([300.0, 900.0]), sig, *arrays, 1.0, 1.0, damp, last, adaptive=True)
    np.testing.assert_allclose(sig, [S0, S1])
    np.testing.assert_allclose(damp, 1.0)
