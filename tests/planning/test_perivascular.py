"""Perivascular and tumour-first planning logic (issue #4): fast, with the stand-in engine or
no engine at all. The real-engine cases are in test_plan_engine.py (slow)."""

from dataclasses import replace

import numpy as np

from hepablate.evaluation import load_planning_defaults
from hepablate.optimize import IrePlanOptions, plan_ire
from hepablate.optimize.ire import (
    IrePlanner,
    SearchState,
    _fit_layout,
    describe_shortfall,
    limits_from,
    shortfall_groups,
)
from hepablate.optimize.ire.layouts import axial_cycles
from hepablate.optimize.ire.probes import make_probes, paths_ok
from hepablate.optimize.ire.voltages import bordering_pairs, confirm, covered, fast_voltages, repair
from hepablate.placement.geometry import perpendicular_basis, segments_distance
from hepablate.placement.paths import PathMap

from .test_planner import _case, check_plan


def _planner(case, engine, **opts):
    from hepablate.devices.catalog import load_device_table

    o = IrePlanOptions(monte_carlo_samples=0, **opts)
    lim = limits_from(load_device_table(), 600.0, o)
    return IrePlanner(case, engine, lim, load_planning_defaults(), o)


# ---- per-pair voltage boost in the repair ---------------------------------------------------


def test_repair_raises_only_the_pairs_that_border_the_shortfall(fake_problem_factory):
    # A weak stand-in engine leaves part of a 2 cm tumour + 10 mm margin uncovered with a
    # 2 x 3 layout: the repair raises only the pairs whose field dominates the shortfall
    # (within 3000 V), not every pair.
    from hepablate.optimize.ire import CycleLayout
    from hepablate.placement.geometry import Layout2D, neighbour_pairs

    case = _case(20.0, 10.0)
    pl = _planner(case, fake_problem_factory(case, nonlinear_gain=1.0, amps_per_v_mm=0.0002))
    d = np.array([0.0, 1.0, 0.0])
    u, v = perpendicular_basis(d)
    c = pl.region_pts.mean(axis=0)
    lay = Layout2D(6, 12.0, 0.0, (float(c @ u) - 4.0, float(c @ v)))  # off-centre on purpose
    t = pl.region_pts @ d
    state = SearchState.initial(pl.lim)
    probes = make_probes(pl, state, 1, d, lay, float(t.max()), 25.0, u, v)
    pairs = neighbour_pairs(lay.points(), 20.0)
    cyc = CycleLayout(1, d, lay, float(t.max()), 25.0, probes, pairs, pl.region)
    fast, _, fields = fast_voltages(pl, [cyc], 0.995)
    conf = confirm(pl, probes, fast)
    assert not covered(conf, 0.99)
    caps = [min(p.voltage_v * 1.12, 3000.0) for p in conf.pairs]
    border = bordering_pairs(pl, conf, caps, fields)
    assert border and len(border) < len(conf.pairs)
    assert bordering_pairs(pl, conf, caps, {}) is None  # fields unknown: every pair counts
    fixed = repair(pl, conf, 0.99, fields)
    raised = {
        i
        for i, (a, b) in enumerate(zip(conf.pairs, fixed.pairs, strict=True))
        if b.voltage_v > a.voltage_v
    }
    assert raised and len(raised) < len(conf.pairs)
    assert border <= raised | {i for i, p in enumerate(conf.pairs) if p.voltage_v >= 3000.0}
    assert all(p.voltage_v <= 3000.0 for p in fixed.pairs)
    assert fixed.metrics.target_coverage > conf.metrics.target_coverage
    assert pl.stats["pair_boosts"] >= 1


# ---- tumour-first layout fit ----------------------------------------------------------------


def _disc(r, step=1.0, centre=(0.0, 0.0)):
    g = np.arange(-r, r + 1e-9, step)
    pts = np.array([(x, y) for x in g for y in g if x * x + y * y <= r * r])
    return pts + np.asarray(centre)


def test_tumour_weight_puts_energised_pairs_through_the_tumour():
    region = _disc(14.0)
    tumour = _disc(4.0)
    n, s = 4, 16.0
    f1, lay1 = _fit_layout(region, n, s, 0.0, 20.0, tumour, 1.0)
    f4, lay4 = _fit_layout(region, n, s, 0.0, 20.0, tumour, 4.0)

    def tumour_dist(lay):
        q = lay.points()
        segs = [(q[i], q[j]) for i, j in ((0, 1), (1, 2), (2, 3), (3, 0))]
        return float(segments_distance(tumour, segs).max())

    # Plain fit: the small central tumour sits in the middle of the square cell.
    assert tumour_dist(lay1) > 0.4 * s
    # Weighted: a side of the square runs through the tumour.
    assert tumour_dist(lay4) <= 4.0 + 1e-6
    # Weight 1 is the plain fit (the tumour is part of the region).
    f0, lay0 = _fit_layout(region, n, s, 0.0, 20.0)
    assert f0 == f1 and lay0.centre_uv_mm == lay1.centre_uv_mm


# ---- probes next to a vessel beyond the tips ------------------------------------------------


def test_probe_aimed_at_an_abutting_vessel_may_stop_short_of_it(fake_problem_factory):
    # 1 cm tumour abutting a portal vein on its +x side; a probe through the tumour centre
    # advancing +x would run into the vessel. With half its exposure as the limit it cannot be
    # placed; with 90 % it stops short of the vessel, path clear by the safety distance.
    case = _case(10.0, 10.0, 0.0, None)
    pl = _planner(case, fake_problem_factory(case))
    from hepablate.placement.geometry import Layout2D

    d = np.array([1.0, 0.0, 0.0])
    u, v = perpendicular_basis(d)
    centre = np.array([-45.0, 0.0, 0.0])
    lay = Layout2D(2, 10.0, 0.0, (float(centre @ u), float(centre @ v)))
    tip_t = float(centre @ d) + 15.0  # beyond the vessel (its wall is 5 mm from the centre)
    half = SearchState.initial(pl.lim)
    assert half.max_back_fraction == 0.5
    assert not paths_ok(pl, half, make_probes(pl, half, 1, d, lay, tip_t, 16.0, u, v))[0]
    deep = replace(half, max_back_fraction=0.9)
    probes = make_probes(pl, deep, 1, d, lay, tip_t, 16.0, u, v)
    assert paths_ok(pl, deep, probes)[0]
    pm = PathMap(case, 3.0)
    for p in probes:
        chk = pm.check_path(np.asarray(p.tip_lps_mm), d)
        assert chk.ok and chk.clearance_mm >= 3.0
        assert p.tip_lps_mm[0] < -36.0 - 4.0  # short of the vessel (axis x = -36, r = 4)


# ---- pull-back cycles overlap ---------------------------------------------------------------


def test_pullback_cycles_overlap(fake_problem_factory):
    case = _case(15.0)
    pl = _planner(case, fake_problem_factory(case))
    ov = float(load_planning_defaults().pullback_overlap_mm.value)
    cyc = axial_cycles(pl, np.array([0.0, 40.0]), 0.0)
    assert len(cyc) == 2
    (t0, e0), (t1, e1) = cyc
    assert abs(t0 - 40.0) < 1e-9 and abs(t1 - e1) < 1e-9  # the cycles span [0, 40]
    assert e0 <= 25.0 and e1 <= 25.0
    assert abs((t0 - e0) - (t1 - ov)) < 1e-9  # the second ends `ov` beyond the first's start
    # A region shorter than the practice maximum needs a single cycle.
    assert len(axial_cycles(pl, np.array([0.0, 24.0]), 0.0)) == 1


# ---- where and why the target is left uncovered ---------------------------------------------


def _toy_structures():
    shape = (20, 20, 20)
    vessel = np.zeros(shape, bool)
    vessel[:, :, 14:16] = True  # a slab along the last axis (x)
    tumour = np.zeros(shape, bool)
    tumour[8:12, 8:12, 6:10] = True
    liver = ~vessel
    return {"liver": liver, "portal_vein": vessel, "tumour:T1": tumour}


def test_shortfall_groups_next_to_a_vessel_and_elsewhere():
    st = _toy_structures()
    region = np.zeros((20, 20, 20), bool)
    region[4:16, 4:16, 2:14] = True
    zone = region.copy()
    zone[8:10, 8:10, 12:14] = False  # 1-2 voxels (1 mm) from the vessel wall
    zone[8:10, 8:10, 2:4] = False  # far from it
    fmax = np.where(zone, 800.0, 520.0).astype(np.float32)
    groups = shortfall_groups(region, zone, fmax, st, "tumour:T1", (1.0, 1.0, 1.0))
    assert [g.structure for g in groups] == ["portal_vein", None]
    near, rest = groups
    assert abs(near.volume_ml - 8 * 0.001) < 1e-9 and abs(rest.volume_ml - 8 * 0.001) < 1e-9
    assert near.max_distance_mm <= 2.0 + 1e-9
    assert near.field_min_v_per_cm == 520.0
    msg = describe_shortfall(groups, 600.0, 3.0)
    assert "below the 600 V/cm threshold" in msg
    assert "0.01 ml within 2.0 mm of portal_vein" in msg and "blood" in msg and "shunts" in msg
    assert "away from vessels and ducts" in msg
    assert shortfall_groups(region, region, fmax, st, "tumour:T1", (1.0, 1.0, 1.0)) == []


def test_infeasible_plan_says_where_and_why(fake_problem_factory):
    # A weak stand-in engine cannot cover a 1 cm tumour with a 10 mm margin abutting a vessel:
    # the plan is written as infeasible, and its reason and warnings say where the shortfall
    # is (next to the portal vein, with the field there) and why.
    case = _case(10.0, 10.0, 0.0, None)
    res = plan_ire(
        case,
        IrePlanOptions(monte_carlo_samples=4),
        engine=fake_problem_factory(case, nonlinear_gain=0.9),
    )
    plan = res.plan
    assert plan.status == "infeasible"
    check_plan(case, res, None)
    assert "below the 600 V/cm threshold" in plan.status_reason
    near = [w for w in plan.warnings if w.code == "shortfall_near_structure"]
    assert near and any("portal_vein" in w.message and "V/cm" in w.message for w in near)
    assert res.plan.planning.stats.get("search_attempts", 0) >= 1
