"""`hepablate.evaluate`: the one evaluation. Re-evaluating gives identical numbers; edits move
every metric the right way; the plan records its grid; one status rule and one criteria
table for both modalities; `hepablate simulate` reports what a fresh evaluation does."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hepablate
from hepablate.evaluation import load_criteria
from hepablate.phantoms import build_phantom, ire_example_spec
from hepablate.plans.model import (
    EvaluationSettings,
    IrePair,
    IreSimulationSettings,
    Plan,
    PlanningRecord,
    Probe,
    plan_fingerprint,
)

FAST_SETTINGS = EvaluationSettings(monte_carlo_samples=8)


@pytest.fixture(scope="module")
def case():
    spec = ire_example_spec().model_copy(update={"spacing_mm": (2.0, 2.0, 2.0)})
    return build_phantom(spec)


def _hand_plan(case, voltage_v: float = 2400.0, dx_mm: float = 0.0) -> Plan:
    """Four parallel probes around the target centre (a 15 mm square), 20 mm exposure."""
    c = case.grid.with_array(case.target_mask).bounding_box_lps_mm()
    ctr = 0.5 * (c[0] + c[1])
    tip_z = float(ctr[2]) + 10.0
    probes = [
        Probe(
            id=f"P{i + 1}",
            tip_lps_mm=(float(ctr[0]) + x + (dx_mm if i == 0 else 0.0), float(ctr[1]) + y, tip_z),
            direction_lps=(0.0, 0.0, 1.0),
            exposure_mm=20.0,
        )
        for i, (x, y) in enumerate([(-7.5, -7.5), (7.5, -7.5), (7.5, 7.5), (-7.5, 7.5)])
    ]
    pairs = [
        IrePair(anode=a, cathode=b, voltage_v=voltage_v)
        for a, b in [("P1", "P2"), ("P2", "P3"), ("P3", "P4"), ("P4", "P1")]
    ]
    return Plan(
        modality="ire",
        probes=probes,
        pairs=pairs,
        ire_simulation=IreSimulationSettings(grid_spacing_mm=2.0, roi_padding_mm=15.0),
        evaluation=FAST_SETTINGS,
    )


@pytest.fixture(scope="module")
def base(case):
    return hepablate.evaluate(case, _hand_plan(case))


def test_evaluating_the_written_plan_again_is_identical(case, base):
    again = hepablate.evaluate(case, base.plan)
    a = base.plan.model_dump(exclude={"provenance", "runtime_s"})
    b = again.plan.model_dump(exclude={"provenance", "runtime_s"})
    assert a == b
    assert np.array_equal(base.zone, again.zone)
    assert base.plan.grid is not None and again.grid.same_geometry(base.grid)


def test_every_metric_is_recomputed(base):
    m = base.plan.metrics
    for name in (
        "target_coverage",
        "tumour_coverage",
        "min_margin_mm",
        "ablation_volume_ml",
        "non_target_liver_ml",
        "coverage_probability",
    ):
        assert getattr(m, name) is not None, name
    for name in ("max_current_a", "temperature_max_c"):
        assert name in m.extra, name
    assert all(p.predicted_current_a and p.spacing_mm == 15.0 for p in base.plan.pairs)
    codes = {r.code for r in base.plan.criteria}
    assert {"coverage_below_required", "tumour_not_covered", "current_over_limit"} <= codes
    assert base.plan.provenance is not None and base.plan.provenance.parameters


def test_lower_voltages_shrink_the_zone_and_move_every_metric(case, base):
    low = base.plan.model_copy(deep=True)
    for p in low.pairs:
        p.voltage_v = round(0.6 * p.voltage_v)
    ev = hepablate.evaluate(case, low)
    m0, m1 = base.plan.metrics, ev.plan.metrics
    assert m1.ablation_volume_ml < 0.8 * m0.ablation_volume_ml
    assert m1.target_coverage < m0.target_coverage
    assert m1.min_margin_mm < m0.min_margin_mm
    assert m1.extra["max_current_a"] < m0.extra["max_current_a"]
    assert m1.extra["temperature_max_c"] < m0.extra["temperature_max_c"]
    assert ev.plan.status == "infeasible"
    failed = {r.code for r in ev.plan.criteria if not r.passed}
    assert "coverage_below_required" in failed
    assert "coverage_below_required" in {w.code for w in ev.plan.warnings}
    assert "zone covers" in ev.plan.status_reason


def test_moving_a_probe_away_lowers_coverage(case, base):
    moved = hepablate.evaluate(case, _hand_plan(case, dx_mm=-8.0))
    assert moved.plan.metrics.target_coverage < base.plan.metrics.target_coverage
    assert moved.plan.pairs[0].spacing_mm > base.plan.pairs[0].spacing_mm


def test_status_rule_is_the_criteria_table(case, base):
    """A relaxed criteria table (required coverage 50 %) makes the same plan feasible; the
    packaged one (99 %) does not."""
    assert base.plan.status == "infeasible"
    relaxed = load_criteria().model_copy(deep=True)
    relaxed.required_coverage.value = 0.5
    for c in relaxed.criteria:
        if c.code == "tumour_not_covered":
            c.min = 0.5
    # The evaluated plan recorded 0.99; a plan that leaves it to the table gets the table's.
    plan = base.plan.model_copy(update={"evaluation": FAST_SETTINGS})
    ev = hepablate.evaluate(case, plan, criteria=relaxed)
    assert 0.5 < ev.plan.metrics.target_coverage < 0.99
    assert ev.plan.status == "feasible", ev.plan.status_reason
    assert ev.plan.evaluation.required_coverage == 0.5


def test_a_probe_moved_beyond_the_recorded_grid_rebuilds_it(case, base):
    far = base.plan.model_copy(deep=True)
    g = base.plan.grid
    x_edge = g.origin_lps_mm[0] + (g.shape_ijk[0] - 1) * g.spacing_mm[0]
    tip = far.probes[1].tip_lps_mm
    far.probes[1].tip_lps_mm = (x_edge - 2.0, tip[1], tip[2])
    ev = hepablate.evaluate(case, far)
    assert "grid_rebuilt" in {w.code for w in ev.plan.warnings}
    assert not ev.grid.same_geometry(base.grid)


def test_a_plan_without_a_grid_still_evaluates_and_records_one(case, base):
    old = base.plan.model_copy(update={"grid": None})
    ev = hepablate.evaluate(case, old)
    assert ev.plan.grid is not None
    assert ev.plan.metrics.target_coverage == pytest.approx(
        base.plan.metrics.target_coverage, abs=0.02
    )


def test_planning_record_kept_until_the_plan_changes(case, base):
    rec = PlanningRecord(planner="test planner", fingerprint=plan_fingerprint(base.plan))
    same = hepablate.evaluate(case, base.plan.model_copy(update={"planning": rec}))
    assert same.plan.planning == rec
    edited = same.plan.model_copy(deep=True)
    edited.pairs[0].voltage_v -= 100.0
    ev = hepablate.evaluate(case, edited)
    assert ev.plan.planning is None
    assert "planning_record_dropped" in {w.code for w in ev.plan.warnings}


def test_needle_through_a_vessel_is_an_error(case, base):
    """A probe whose path crosses the portal vein fails the path-clearance criterion."""
    pv = np.argwhere(case.structures["portal_vein"])
    centre = case.grid.index_to_lps(pv.mean(axis=0)[::-1])
    plan = base.plan.model_copy(deep=True)
    tip = plan.probes[0].tip_lps_mm
    # Aim P1 so that its line passes through the vessel centre on its way to the tip.
    d = np.asarray(tip) - centre
    d /= np.linalg.norm(d)
    plan.probes[0].direction_lps = tuple(float(x) for x in d)
    ev = hepablate.evaluate(case, plan)
    rows = {r.code: r for r in ev.plan.criteria}
    assert not rows["needle_path_clearance"].passed
    assert "needle_path_unsafe" in {w.code for w in ev.plan.warnings}
    assert ev.plan.metrics.extra["min_path_clearance_mm"] == 0.0
    assert ev.plan.status == "infeasible"


def test_vertical_probes_have_no_skin_entry_on_the_grid_face(base):
    """The hand plan's probes run along z; the phantom's body is cut by the bottom of the grid,
    which is not skin (issue 12): the paths are reported as unchecked, with no clearance."""
    codes = [w for w in base.plan.warnings if w.code == "needle_path_unchecked"]
    assert codes and "grid face" in codes[0].message
    assert "min_path_clearance_mm" not in base.plan.metrics.extra


def test_simulate_cli_reports_what_a_fresh_evaluation_does(run_cli, case, base, tmp_path):
    """Edit plan.json by hand, run `hepablate simulate`: the output carries the new numbers,
    not the input's stale ones."""
    from hepablate.case.writer import write_case

    case_dir = tmp_path / "case"
    write_case(case, case_dir)
    raw = json.loads(base.plan.model_dump_json())
    for p in raw["pairs"]:
        p["voltage_v"] = round(0.6 * p["voltage_v"])
    src = tmp_path / "edited.json"
    src.write_text(json.dumps(raw))
    out = tmp_path / "out"
    r = run_cli("simulate", case_dir, "--plan", src, "--out", out, "--no-report", "--json")
    assert r.code == 0, r.err
    got = json.loads((out / "plan.json").read_text())
    fresh = hepablate.evaluate(hepablate.load_case(case_dir), hepablate.read_plan(src))
    assert got["metrics"] == json.loads(fresh.plan.metrics.model_dump_json())
    assert got["metrics"]["target_coverage"] < base.plan.metrics.target_coverage
    assert [w["code"] for w in got["warnings"]] == [w.code for w in fresh.plan.warnings]
    assert got["status"] == fresh.plan.status
    assert json.loads(r.out)["status"] == got["status"]


def test_laser_plan_follows_the_same_status_rule():
    """A laser plan that leaves part of the tumour outside the zone is infeasible, and the
    robustness and margin criteria apply to it as to IRE."""
    from tests.laser._helpers import small_case, two_fibre_plan

    case = small_case()
    plan = two_fibre_plan(duration_s=120.0)
    sim = plan.laser_simulation.model_copy(update={"optical_sensitivity": False})
    plan = plan.model_copy(
        update={"laser_simulation": sim, "evaluation": EvaluationSettings(monte_carlo_samples=8)}
    )
    ev = hepablate.evaluate(case, plan)
    m = ev.plan.metrics
    assert m.tumour_coverage < 1.0
    assert ev.plan.status == "infeasible"
    rows = {r.code: r for r in ev.plan.criteria}
    assert {"low_robustness", "margin_below_required", "tip_charring"} <= set(rows)
    assert not rows["tumour_not_covered"].passed
    assert not rows["margin_below_required"].passed
    assert rows["low_robustness"].value == m.coverage_probability
    again = hepablate.evaluate(case, ev.plan)
    assert again.plan.model_dump(exclude={"provenance", "runtime_s"}) == ev.plan.model_dump(
        exclude={"provenance", "runtime_s"}
    )


def test_wrong_placement_for_the_modality_is_refused(case, base):
    from hepablate.errors import InputError
    from hepablate.plans.model import Fibre, Illumination

    bad = base.plan.model_copy(
        update={
            "fibres": [Fibre(id="F1", tip_lps_mm=(0, 0, 0), direction_lps=(1, 0, 0))],
            "illuminations": [Illumination(fibre="F1", power_w=3.0, duration_s=300.0)],
        }
    )
    with pytest.raises(InputError, match="fibres"):
        hepablate.evaluate(case, bad)
