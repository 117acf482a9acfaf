"""Planner logic on small phantoms with the stand-in engine (conftest.FakeIreProblem)."""

import numpy as np
import pytest

from hepablate.errors import InputError
from hepablate.evaluation import load_planning_defaults
from hepablate.optimize import IrePlanOptions, plan_ire
from hepablate.phantoms import build_phantom, ire_suite_spec
from hepablate.placement.geometry import probe_spacing_mm
from hepablate.placement.paths import PathMap


def _case(diameter_mm, margin_mm=5.0, vessel_gap_mm=None, duct_gap_mm=None, spacing=2.0):
    return build_phantom(
        ire_suite_spec(diameter_mm, margin_mm, vessel_gap_mm, duct_gap_mm, spacing)
    )


def check_plan(case, res, fake):
    plan = res.plan
    d = load_planning_defaults()
    if plan.probes:  # every plan with a placement carries its robustness
        assert plan.metrics.coverage_probability is not None
        assert 0.0 <= plan.metrics.coverage_probability <= 1.0
    if plan.status == "feasible":
        assert plan.metrics.target_coverage >= 0.99
        pm = PathMap(case, float(d.path_safety_distance_mm.value))
        for p in plan.probes:
            chk = pm.check_path(np.asarray(p.tip_lps_mm), np.asarray(p.direction_lps))
            assert chk.ok, (p, chk)
            assert p.entry_lps_mm is not None and p.depth_mm > 0
        per_pair: dict[tuple, int] = {}
        for pr in plan.pairs:
            assert pr.predicted_current_a is not None and pr.predicted_current_a <= 50.0
            assert pr.voltage_v <= 3000.0
            assert pr.pulse_width_us == 90.0
            key = (pr.cycle, pr.anode, pr.cathode)
            per_pair[key] = per_pair.get(key, 0) + pr.pulses
        # 90 pulses per pair, in one train or two (split against heating at vessels/ducts).
        assert set(per_pair.values()) == {90}
        by = {(p.cycle, p.id): p for p in plan.probes}
        for pr in plan.pairs:
            s = probe_spacing_mm(by[(pr.cycle, pr.anode)], by[(pr.cycle, pr.cathode)])
            assert 10.0 - 1e-6 <= s <= 25.0 + 1e-6
        # Parallel probes.
        dirs = np.array([p.direction_lps for p in plan.probes])
        assert np.allclose(dirs, dirs[0], atol=1e-5)
        assert 2 <= len({p.id for p in plan.probes}) <= 6
    else:
        assert plan.status_reason


@pytest.mark.parametrize(
    "diam,margin,vgap,dgap",
    [
        (15.0, 5.0, None, None),
        (12.0, 5.0, 3.0, None),
    ],
)
def test_plan_small_phantoms_fake_engine(fake_problem_factory, diam, margin, vgap, dgap):
    case = _case(diam, margin, vgap, dgap)
    fake = fake_problem_factory(case)
    res = plan_ire(case, IrePlanOptions(monte_carlo_samples=16), engine=fake)
    assert res.plan.status == "feasible", res.plan.status_reason
    check_plan(case, res, fake)
    m = res.plan.metrics
    assert m.tumour_coverage == 1.0 and m.min_margin_mm > 0
    # The search did use the fast model, and the final answer is a confirmed (simulated) one.
    assert res.plan.planning.stats["engine_layouts_evaluated"] >= 1 and fake.simulate_calls >= 1
    prov = res.plan.provenance
    names = {p.name for p in prov.parameters}
    assert "device.ire.max_current_a" in names and "planning.path_safety_distance_mm" in names
    assert all(p.source for p in prov.parameters)


@pytest.mark.slow
@pytest.mark.parametrize("diam", [10.0, 20.0, 30.0, 35.0])
@pytest.mark.parametrize("margin", [5.0, 10.0])
@pytest.mark.parametrize("near", [True, False])
def test_plan_suite_fake_engine(fake_problem_factory, diam, margin, near):
    case = _case(diam, margin, 0.0 if near else None, 2.0 if near else None)
    res = plan_ire(case, IrePlanOptions(monte_carlo_samples=8), engine=fake_problem_factory(case))
    check_plan(case, res, None)


def test_too_large_target_is_labelled_infeasible(fake_problem_factory):
    case = _case(60.0, 10.0)
    res = plan_ire(
        case,
        IrePlanOptions(max_cycles=1, monte_carlo_samples=4, max_probes=3),
        engine=fake_problem_factory(case),
    )
    assert res.plan.status == "infeasible"
    assert "uncovered" in res.plan.status_reason or "no layout" in res.plan.status_reason


def test_impossible_constraints_are_errors():
    with pytest.raises(ValueError, match="below min spacing"):
        IrePlanOptions(min_spacing_mm=20.0, max_spacing_mm=12.0)
    with pytest.raises(ValueError):
        IrePlanOptions(min_probes=5, max_probes=3)


def test_min_spacing_beyond_generator_is_error(fake_problem_factory):
    case = _case(15.0)
    with pytest.raises(InputError, match="needs more than the generator"):
        plan_ire(
            case,
            IrePlanOptions(min_spacing_mm=24.0, max_spacing_mm=25.0),
            engine=fake_problem_factory(case),
        )


def test_empty_target_is_error(fake_problem_factory):
    case = _case(15.0)
    case.structures["tumour:T1"] = np.zeros_like(case.structures["tumour:T1"])
    with pytest.raises(InputError, match="empty"):
        plan_ire(case, IrePlanOptions(), engine=object())


def test_robust_option_grows_the_zone(fake_problem_factory):
    case = _case(15.0)
    a = plan_ire(case, IrePlanOptions(monte_carlo_samples=16), engine=fake_problem_factory(case))
    b = plan_ire(
        case, IrePlanOptions(monte_carlo_samples=16, robust=True), engine=fake_problem_factory(case)
    )
    assert b.plan.status == "feasible"
    assert b.plan.metrics.coverage_probability >= a.plan.metrics.coverage_probability
    assert b.plan.metrics.min_margin_mm >= a.plan.metrics.min_margin_mm
    # The zone must grow where the plain plan is not already robust to the placement error
    # (with the skin-sampled approaches of issue 12 the plain plan of this case keeps 99 %
    # coverage in every simulated placement, so the robust one need not be larger).
    if a.plan.metrics.coverage_probability < 0.95:
        assert b.plan.metrics.ablation_volume_ml >= a.plan.metrics.ablation_volume_ml


def test_entry_region_is_respected(fake_problem_factory):
    case = _case(12.0)
    centre = (-45.0, -75.0, 0.0)  # anterior skin above the tumour
    res = plan_ire(
        case,
        IrePlanOptions(entry={"centre_lps_mm": centre, "radius_mm": 30.0}, monte_carlo_samples=4),
        engine=fake_problem_factory(case),
    )
    assert res.plan.status == "feasible", res.plan.status_reason
    for p in res.plan.probes:
        assert np.linalg.norm(np.asarray(p.entry_lps_mm) - centre) <= 30.0 + 1e-6
        assert p.direction_lps[1] > 0.5  # advancing posterior from the anterior entry


def test_parameter_units_from_names():
    from hepablate.optimize.ire import unit_of

    assert unit_of("max_voltage_v") == "V" and unit_of("max_current_a") == "A"
    assert unit_of("voltage_per_cm_v") == "V/cm" and unit_of("ire_threshold_v_per_cm") == "V/cm"
    assert unit_of("sigma_baseline_s_per_m") == "S/m" and unit_of("pulses") == ""
