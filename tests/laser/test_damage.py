"""Arrhenius and CEM43 against hand-computed isothermal cases, in the solver and the
reference functions."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.anatomy.tissues import load_tissue_table
from hepablate.physics.laser.damage import ArrheniusParams, arrhenius_omega, cem43_min
from hepablate.physics.laser.heat import ThermalModel, ThermalState, advance


def _isothermal(t_c: float, duration_s: float, dt_s: float):
    n = 5
    shape = (n, n, n)
    m = ThermalModel.build(
        conductivity_w_per_m_k=np.full(shape, 0.5),
        rho_c_j_per_m3_k=np.full(shape, 3.8e6),
        wcb_w_per_m3_k=np.zeros(shape),
        qmet_w_per_m3=np.zeros(shape),
        body=np.ones(shape, bool),
        heat_sink=np.zeros(shape, bool),
        spacing_mm=1.0,
        t_blood_c=37.0,
        edge="insulated",
    )
    st = ThermalState.initial(shape, t_c)
    p = ArrheniusParams.from_table(load_tissue_table())
    advance(
        m, st, np.zeros(shape), duration_s, dt_s, a_per_s=p.a_per_s, ea_j_per_mol=p.ea_j_per_mol
    )
    return st


def test_arrhenius_isothermal_hand_computed():
    # Tissue table: A = 7.39e39 /s, Ea = 2.577e5 J/mol; R = 8.314462618 J/(mol K).
    # At 60 degC: Ea / (R T) = 257700 / (8.314462618 * 333.15) = 93.03373; the rate is
    # 7.39e39 * exp(-93.03373) = 0.29148 /s, so 30 s give Omega = 8.7444 (hand calculation).
    st = _isothermal(60.0, 30.0, 0.5)
    assert st.omega[2, 2, 2] == pytest.approx(8.7444, rel=1e-4)
    expected = 7.39e39 * np.exp(-257700.0 / (8.314462618 * 333.15)) * 30.0
    assert st.omega[2, 2, 2] == pytest.approx(expected, rel=1e-9)
    p = ArrheniusParams.from_table(load_tissue_table())
    hist = np.full(60, 60.0)
    assert arrhenius_omega(hist, 0.5, p) == pytest.approx(expected, rel=1e-12)


def test_cem43_isothermal_hand_computed():
    # 45 degC for 10 min: R = 0.5, 0.5^(43 - 45) = 4 -> 40 min.
    assert _isothermal(45.0, 600.0, 1.0).cem43_min[2, 2, 2] == pytest.approx(40.0, rel=1e-9)
    # 41 degC for 10 min: R = 0.25, 0.25^2 = 1/16 -> 0.625 min.
    assert _isothermal(41.0, 600.0, 1.0).cem43_min[2, 2, 2] == pytest.approx(0.625, rel=1e-9)
    assert cem43_min(np.full(600, 45.0), 1.0) == pytest.approx(40.0)
    assert cem43_min(np.full(600, 41.0), 1.0) == pytest.approx(0.625)


def test_damage_floor_excludes_baseline_temperature():
    st = _isothermal(37.0, 600.0, 1.0)
    assert st.omega.max() == 0.0 and st.cem43_min.max() == 0.0
