"""IreProblem behaviour: nonlinear vs constant, symmetry, floating probes, cycles, warnings.
Small 2 mm blocks keep these fast; accuracy is tested in test_two_cylinder.py."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.devices import load_device_table
from hepablate.plans.model import IrePair, Probe

from .helpers import block_problem, parallel_probes

SHAPE = (25, 31, 31)  # k, j, i at 2 mm: 62 x 62 x 50 mm


def _pair(a="P1", c="P2", v=2250.0, cycle=1) -> IrePair:
    return IrePair(anode=a, cathode=c, voltage_v=v, cycle=cycle)


@pytest.fixture(scope="module")
def results():
    probes = parallel_probes(15, 10, 20)
    out = {}
    for model in ("constant", "nonlinear"):
        prob = block_problem(SHAPE, 2.0, model=model)
        out[model] = (prob, prob.simulate(probes, [_pair()]))
    return out


def test_nonlinear_raises_current_within_conductivity_ratio(results):
    prob, const = results["constant"]
    _, nl = results["nonlinear"]
    liver = prob.tissues.tissues["liver"].electrical
    ratio_max = liver.sigma_electroporated_s_per_m.value / liver.sigma_baseline_s_per_m.value
    i_c, i_n = const.pair_results[0].current_a, nl.pair_results[0].current_a
    print(
        f"current constant {i_c:.2f} A, nonlinear {i_n:.2f} A, ratio {i_n / i_c:.2f} "
        f"(bounds 1 to {ratio_max:g}); zone {const.zone_volume_ml:.2f} -> "
        f"{nl.zone_volume_ml:.2f} ml; iterations {nl.pair_results[0].nonlinear_iterations}"
    )
    assert 1.0 < i_n / i_c <= ratio_max
    assert nl.zone_volume_ml > const.zone_volume_ml
    assert nl.pair_results[0].converged
    assert nl.pair_results[0].nonlinear_iterations >= 2
    # The field inside the zone cannot rise above what sigma ratio allows either.
    assert nl.field_max_v_per_cm.max() < ratio_max * const.field_max_v_per_cm.max()


def test_constant_model_nonlinear_bounds_bracket_current(results):
    """With sigma between sigma0 and sigma1 everywhere, the current lies between the
    constant-model currents at sigma0 and at sigma1 (monotone in conductivity)."""
    prob, const = results["constant"]
    _, nl = results["nonlinear"]
    liver = prob.tissues.tissues["liver"].electrical
    upper = const.pair_results[0].current_a * (
        liver.sigma_electroporated_s_per_m.value / liver.sigma_baseline_s_per_m.value
    )
    assert const.pair_results[0].current_a < nl.pair_results[0].current_a < upper


@pytest.mark.parametrize("model", ["constant", "nonlinear"])
def test_swapping_anode_and_cathode_keeps_field(model):
    prob = block_problem(SHAPE, 2.0, model=model)
    probes = parallel_probes(15, 10, 20, n=3)
    a = prob.simulate(probes, [_pair("P1", "P2")])
    b = prob.simulate(probes, [_pair("P2", "P1")])
    scale = a.field_max_v_per_cm.max()
    # Exact for the linear model; the nonlinear runs agree to the Picard tolerance (0.2 % in
    # current, 1 % in the field's L2 change per iteration).
    tol = 1e-4 if model == "constant" else 5e-3
    assert np.abs(a.field_max_v_per_cm - b.field_max_v_per_cm).max() < tol * scale
    assert a.pair_results[0].current_a == pytest.approx(b.pair_results[0].current_a, rel=tol)


@pytest.mark.parametrize("model", ["constant", "nonlinear"])
def test_symmetric_layout_gives_symmetric_field(model):
    prob = block_problem(SHAPE, 2.0, model=model)
    res = prob.simulate(parallel_probes(14, 10, 20), [_pair()])
    f = res.field_max_v_per_cm
    assert np.abs(f - f[:, :, ::-1]).max() < 2e-3 * f.max()  # mirror x -> -x
    assert np.abs(f - f[:, ::-1, :]).max() < 2e-3 * f.max()  # mirror y -> -y


def test_floating_probe_carries_no_net_current():
    from hepablate.physics.ire.problem import BASIS_RTOL

    prob = block_problem(SHAPE, 2.0, model="nonlinear")
    probes = parallel_probes(12, 10, 20, n=3)
    # Conservation to 1e-6 needs the basis solved to 1e-6 (a nonlinear problem's default is
    # the looser tolerance its nonlinear solve starts from).
    basis = prob.unit_basis(probes, rtol=BASIS_RTOL)
    g = basis.conductance_matrix_s
    assert np.allclose(g, g.T, rtol=1e-6)
    assert np.abs(g.sum(axis=1)).max() < 1e-6 * np.abs(g).max()
    v = basis.pair_potentials("P1", "P3", 2000.0)
    assert 0.0 < v[1] < 2000.0
    assert abs((g @ v)[1]) < 1e-9 * abs((g @ v)[0])
    f, sig, v_nl, ip, its, ok, _ = prob._solve_pair(basis, _pair("P1", "P3", 2000.0))
    assert ok and abs(ip[1]) < 0.01 * abs(ip[0])
    assert abs(ip[0] + ip[2]) < 0.01 * abs(ip[0])  # what enters at the anode leaves at the cathode


def test_floating_conductor_differs_from_absent_probe():
    """A floating needle across potential levels (off the mid-plane, oblique) shorts part of
    the path: the pair draws more current than without it. (On the symmetry plane of a
    parallel pair a line conductor sits on an equipotential and changes nothing.)"""
    prob = block_problem(SHAPE, 2.0)
    pair = parallel_probes(16, 10, 20)
    d = np.array([1.0, 0.0, 1.0]) / np.sqrt(2.0)
    floating = Probe(id="F", tip_lps_mm=(5.0, 0.0, 8.0), direction_lps=tuple(d), exposure_mm=14)
    two = prob.unit_basis(pair)
    three = prob.unit_basis(pair + [floating])
    i_two = prob.pair_current_constant(two, "P1", "P2", 2000.0)
    i_three = prob.pair_current_constant(three, "P1", "P2", 2000.0)
    print(f"current without {i_two:.4f} A, with a floating needle {i_three:.4f} A")
    assert i_three > i_two * 1.01


def test_cycles_combine_as_union_and_survival_product():
    prob = block_problem(SHAPE, 2.0)
    c1 = parallel_probes(12, 10, 20, x0_mm=-8)
    c2 = [p.model_copy(update={"cycle": 2}) for p in parallel_probes(12, 10, 20, x0_mm=8)]
    r1 = prob.simulate(c1, [_pair(v=1800)])
    r2 = prob.simulate(c2, [_pair(v=1800, cycle=2)])
    both = prob.simulate(c1 + c2, [_pair(v=1800), _pair(v=1800, cycle=2)])
    assert np.array_equal(both.zone, r1.zone | r2.zone)
    assert np.allclose(
        both.field_max_v_per_cm, np.maximum(r1.field_max_v_per_cm, r2.field_max_v_per_cm), rtol=1e-5
    )
    assert np.allclose(both.survival, r1.survival * r2.survival, rtol=1e-4, atol=1e-6)
    assert len(both.pair_results) == 2


def test_current_limit_warning():
    devices = load_device_table()
    devices.ire.max_current_a.value = 1.0
    prob = block_problem(SHAPE, 2.0)
    prob.devices = devices
    res = prob.simulate(parallel_probes(15, 10, 20), [_pair()])
    assert res.pair_results[0].over_limit
    assert any(w.code == "current_over_limit" for w in res.warnings)


def test_joule_heating_near_probes():
    prob = block_problem(SHAPE, 2.0, model="nonlinear", thermal=True)
    res = prob.simulate(parallel_probes(15, 10, 20), [_pair(v=3000.0)])
    assert res.temperature_max_c is not None and res.thermal_omega is not None
    t = res.temperature_max_c
    # Hottest next to a needle, baseline far away.
    k, j, i = np.unravel_index(np.argmax(t), t.shape)
    xyz = prob.grid.index_to_lps(np.array([i, j, k]))
    assert min(abs(xyz[0] - 7.5), abs(xyz[0] + 7.5)) <= 2.0
    assert t.max() > 40.0
    assert t[0, 0, 0] == pytest.approx(37.0, abs=0.05)


def test_oblique_probes_run():
    prob = block_problem(SHAPE, 2.0)
    d = np.array([0.3, 0.0, 1.0]) / np.linalg.norm([0.3, 0.0, 1.0])
    probes = [
        Probe(id="P1", tip_lps_mm=(-7.0, 0.0, 10.0), direction_lps=tuple(d), exposure_mm=20),
        Probe(id="P2", tip_lps_mm=(8.0, 0.0, 10.0), direction_lps=(0, 0, 1), exposure_mm=20),
    ]
    res = prob.simulate(probes, [_pair(v=2000.0)])
    assert res.pair_results[0].current_a > 0
    assert res.zone.any()


def test_joule_source_conserves_electrical_power():
    prob = block_problem(SHAPE, 2.0, model="nonlinear", thermal=True)
    probes = parallel_probes(12, 10, 20, n=3)
    basis = prob.unit_basis(probes)
    f, sig, v, ip, _, _, _ = prob._solve_pair(basis, _pair("P1", "P3", 2000.0))
    emag = np.sqrt((f**2).sum(axis=0)) / 100.0
    q = prob._joule_source(basis, sig, emag, v, ip)
    total_w = q.sum() * (2e-3) ** 3
    assert total_w == pytest.approx(float(np.dot(v, ip)), rel=1e-6)
    assert float(np.dot(v, ip)) == pytest.approx(2000.0 * ip[0], rel=0.01)


def test_temperature_dependence_raises_end_of_train_current():
    prob = block_problem(SHAPE, 2.0, model="nonlinear", thermal=True, temperature_dependence=True)
    res = prob.simulate(parallel_probes(15, 10, 20), [_pair(v=3000.0)])
    r = res.pair_results[0]
    assert r.current_end_of_train_a is not None
    # Heated tissue conducts better (+1.5 %/degC): the current rises during the train.
    assert r.current_end_of_train_a > r.current_a * 1.005


def test_remembered_pair_solutions_give_the_same_result():
    """A pair solved before (same cycle geometry and voltage) is not solved again: with the
    trains split in two, and with one pair raised, the unchanged pairs (and the cycle's unit
    basis) come from memory and the result equals a fresh problem's."""
    probes = parallel_probes(12, 10, 20, n=3)
    pairs = [_pair("P1", "P2", 1800.0), _pair("P2", "P3", 1800.0)]
    prob = block_problem(SHAPE, 2.0, model="nonlinear", thermal=True)
    first = prob.simulate(probes, pairs)
    assert prob.pair_memo_hits == 0 and first.linear_solves > 0
    split = [p.model_copy(update={"pulses": 45}) for p in pairs] * 2
    again = prob.simulate(probes, split)
    assert prob.pair_memo_hits == 4 and again.linear_solves == 0
    np.testing.assert_array_equal(again.field_max_v_per_cm, first.field_max_v_per_cm)
    assert [r.current_a for r in again.pair_results] == 2 * [
        r.current_a for r in first.pair_results
    ]
    # Shorter trains with pauses between them heat less.
    assert again.temperature_max_c.max() < first.temperature_max_c.max()
    raised = [pairs[0], pairs[1].model_copy(update={"voltage_v": 2200.0})]
    res = prob.simulate(probes, raised)
    assert prob.pair_memo_hits == 5
    assert prob.basis_cache_hits == 1  # the raised pair's cycle basis was remembered too
    fresh = block_problem(SHAPE, 2.0, model="nonlinear", thermal=True).simulate(probes, raised)
    np.testing.assert_array_equal(res.field_max_v_per_cm, fresh.field_max_v_per_cm)
    np.testing.assert_array_equal(res.temperature_max_c, fresh.temperature_max_c)
    assert [r.current_a for r in res.pair_results] == [r.current_a for r in fresh.pair_results]


def test_serial_and_parallel_kernels_agree(monkeypatch):
    """Whether the kernels run in parallel depends on the grid size and the machine's load;
    the answer must not (fixed-chunk reductions): same zone, currents to 1e-9, temperatures
    (stored in float32) to 1e-4 degC."""
    import hepablate.optimize.surrogate
    import hepablate.physics.ire.nonlinear
    import hepablate.physics.multigrid
    import hepablate.physics.stencil

    modules = (
        hepablate.physics.multigrid,
        hepablate.physics.ire.nonlinear,
        hepablate.physics.stencil,
        hepablate.optimize.surrogate,
    )
    probes = parallel_probes(14, 10, 20, n=3)
    pairs = [_pair("P1", "P2", 2000.0), _pair("P2", "P3", 2400.0)]
    out = []
    for par in (False, True):
        for m in modules:
            monkeypatch.setattr(m, "use_parallel", lambda n, min_voxels=0, par=par: par)
        prob = block_problem((44, 44, 44), 1.0, model="nonlinear", thermal=True)
        out.append(prob.simulate(probes, pairs))
    a, b = out
    np.testing.assert_array_equal(a.zone, b.zone)
    np.testing.assert_allclose(a.field_max_v_per_cm, b.field_max_v_per_cm, rtol=1e-5)
    np.testing.assert_allclose(a.temperature_max_c, b.temperature_max_c, rtol=0, atol=1e-4)
    for ra, rb in zip(a.pair_results, b.pair_results, strict=True):
        assert ra.current_a == pytest.approx(rb.current_a, rel=1e-9)
