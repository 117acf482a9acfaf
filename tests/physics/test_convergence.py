"""Grid convergence (2, 1, 0.5 mm) of the two-cylinder problem: current per unit length and
midpoint field, errors against the analytic solution and the observed order from the three
grids (Richardson). The block is 80 mm wide and 6 mm thick with insulated faces: the same
physical domain on every grid, so its truncation error (about -1.5 % in current here, see
test_two_cylinder.py for a 200 mm block) is common to all three and cancels in the observed
order. The kernel radius is held at 6 mm on all grids (the default, max(3 h, 3 mm), is 6, 3
and 3 mm on these grids, which is not one refinement sequence); the test also prints the
default-radius results."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.physics.ire import electrodes

from .helpers import block_problem, parallel_probes

A_MM, SEP_MM, U_V, HALF_MM, THICK_MM = 0.535, 15.0, 2250.0, 40.0, 6.0


def _solve(h: float) -> tuple[float, float]:
    """Current per metre and midpoint field (V/cm) on grid spacing h."""
    n = int(round(2 * HALF_MM / h)) + 1
    nz = int(round(THICK_MM / h))
    prob = block_problem((nz, n, n), h)
    probes = parallel_probes(SEP_MM, tip_z_mm=THICK_MM / 2, exposure_mm=THICK_MM)
    basis = prob.unit_basis(probes)
    i_per_m = prob.pair_current_constant(basis, "P1", "P2", U_V) / (THICK_MM * 1e-3)
    f = prob.pair_field_constant(basis, "P1", "P2", U_V)
    mid = float(f[nz // 2, n // 2, n // 2])
    return i_per_m, mid


@pytest.mark.slow
def test_grid_convergence_order(monkeypatch):
    sigma = 0.08
    hh, a = SEP_MM / 2 * 1e-3, A_MM * 1e-3
    c = np.sqrt(hh * hh - a * a)
    i_ana = np.pi * sigma * U_V / np.arccosh(hh / a)
    e_ana = U_V / (c * np.arccosh(hh / a)) / 100.0
    default = {h: _solve(h) for h in (2.0, 1.0, 0.5)}
    for h, (i, e) in default.items():
        print(
            f"default kernel, h = {h} mm: current {i:.3f} A/m ({i / i_ana - 1:+.3%}), "
            f"midpoint {e:.2f} V/cm ({e / e_ana - 1:+.3%})"
        )
    monkeypatch.setattr(electrodes, "KERNEL_RADIUS_MIN_MM", 6.0)
    res = {h: _solve(h) for h in (2.0, 1.0, 0.5)}
    for h, (i, e) in res.items():
        print(
            f"h = {h} mm: current {i:.3f} A/m ({i / i_ana - 1:+.3%}), midpoint "
            f"{e:.2f} V/cm ({e / e_ana - 1:+.3%})"
        )
    orders = {}
    for k, name in ((0, "current"), (1, "midpoint field")):
        q2, q1, q05 = (res[h][k] for h in (2.0, 1.0, 0.5))
        p = np.log2(abs(q2 - q1) / abs(q1 - q05))
        orders[name] = p
        print(f"observed order ({name}): {p:.2f}")
        ext = q05 + (q05 - q1) / (2**p - 1)
        ana = i_ana if k == 0 else e_ana
        print(f"  Richardson limit {ext:.3f} vs analytic {ana:.3f} ({ext / ana - 1:+.3%})")
    assert orders["current"] > 1.5
    assert orders["midpoint field"] > 1.0
    # Errors shrink with h, and what remains at 0.5 mm is the domain truncation (< 3 %).
    errs = [abs(res[h][0] / i_ana - 1) for h in (2.0, 1.0, 0.5)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.03
