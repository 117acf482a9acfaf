"""Angled (non-parallel) IRE probes, `--allow-angled`: fast, with the stand-in engine."""

import numpy as np

from hepablate.evaluation import load_planning_defaults
from hepablate.optimize import IrePlanOptions, plan_ire
from hepablate.optimize.ire import IrePlanner, SearchState, limits_from
from hepablate.optimize.ire.probes import make_probes, paths_ok
from hepablate.phantoms import PhantomSpec, TubeSpec, TumourSpec, build_phantom
from hepablate.placement.geometry import (
    Layout2D,
    angle_deg,
    exposure_spacing_mm,
    neighbour_pairs,
    perpendicular_basis,
    segment_distance,
    tilted_directions,
    unit,
)
from hepablate.placement.paths import EntryRegion, PathMap

from .test_planner import _case, check_plan

WINDOW = (-45.0, -75.0, 0.0)  # anterior skin above the tumour of `_case`


def check_angled_plan(case, plan, entry=None):
    """Every needle path clear of no-go structures (and entering through `entry`), every
    probe within the angle limit of its cycle's common direction, needles apart, and every
    energised pair's spacing along the exposure within the limits."""
    d = load_planning_defaults()
    pm = PathMap(case, float(d.path_safety_distance_mm.value))
    max_deg = float(d.max_probe_angle_deg.value)
    for p in plan.probes:
        chk = pm.check_path(np.asarray(p.tip_lps_mm), np.asarray(p.direction_lps), entry)
        assert chk.ok, (p, chk)
        assert p.entry_lps_mm is not None
    for c in sorted({p.cycle for p in plan.probes}):
        ps = [p for p in plan.probes if p.cycle == c]
        mean = unit(np.sum([unit(np.asarray(p.direction_lps)) for p in ps], axis=0))
        for p in ps:
            assert angle_deg(p.direction_lps, mean) <= max_deg + 1e-6
        for i, p in enumerate(ps):
            for q in ps[:i]:
                g = segment_distance(p.entry_lps_mm, p.tip_lps_mm, q.entry_lps_mm, q.tip_lps_mm)
                assert g >= float(d.min_needle_gap_mm.value) - 1e-6
    by = {(p.cycle, p.id): p for p in plan.probes}
    for pr in plan.pairs:
        lo, hi = exposure_spacing_mm(by[(pr.cycle, pr.anode)], by[(pr.cycle, pr.cathode)])
        assert lo >= 10.0 - 1e-6 and hi <= 20.0 * 1.01 + 1e-6, (pr, lo, hi)
        assert pr.voltage_v <= 3000.0
        assert pr.predicted_current_a is not None and pr.predicted_current_a <= 50.0


def test_narrow_entry_window_goes_angled_without_the_flag(fake_problem_factory):
    """Issue 12: angled probes are tried automatically once parallel paths are blocked (here:
    a 6 mm skin window, e.g. between ribs, that parallel probes spaced 10-20 mm cannot all
    enter through); the plan says which it used and why."""
    case = _case(12.0)
    entry = {"centre_lps_mm": WINDOW, "radius_mm": 6.0}
    par = plan_ire(
        case, IrePlanOptions(entry=entry, monte_carlo_samples=4), engine=fake_problem_factory(case)
    )
    plan = par.plan
    assert plan.status == "feasible", plan.status_reason
    check_angled_plan(case, plan, EntryRegion(WINDOW, 6.0))
    assert plan.planning.stats["angled_after_blocked"] == 1
    note = next(n for n in plan.planning.notes if n.code == "angled_probes")
    assert note.level == "info" and "outside entry region" in note.message
    assert "requested" not in note.message


def test_narrow_entry_window_needs_angled_probes(fake_problem_factory):
    # A 6 mm skin window (e.g. between ribs): parallel probes spaced 10-20 mm cannot all enter
    # through it; converging probes can (from the start with allow_angled).
    case = _case(12.0)
    entry = {"centre_lps_mm": WINDOW, "radius_mm": 6.0}
    res = plan_ire(
        case,
        IrePlanOptions(entry=entry, monte_carlo_samples=4, allow_angled=True),
        engine=fake_problem_factory(case),
    )
    plan = res.plan
    assert plan.status == "feasible", plan.status_reason
    assert plan.metrics.target_coverage >= 0.99 and plan.metrics.tumour_coverage == 1.0
    check_angled_plan(case, plan, EntryRegion(WINDOW, 6.0))
    for p in plan.probes:
        assert np.linalg.norm(np.asarray(p.entry_lps_mm) - WINDOW) <= 6.0 + 1e-6
    dirs = np.array([p.direction_lps for p in plan.probes])
    assert not np.allclose(dirs, dirs[0], atol=1e-5)  # really angled
    assert plan.planning.stats["angled_probes"] >= 2
    assert 0 < plan.planning.stats["max_angle_between_probes_deg"] <= 30.0
    note = next(n for n in plan.planning.notes if n.code == "angled_probes")
    assert "requested" in note.message and "angled_after_blocked" not in plan.planning.stats


def test_default_stays_parallel_and_unchanged(fake_problem_factory):
    # Where parallel paths are clear, --allow-angled changes nothing.
    case = _case(15.0)
    a = plan_ire(case, IrePlanOptions(monte_carlo_samples=4), engine=fake_problem_factory(case))
    b = plan_ire(
        case,
        IrePlanOptions(monte_carlo_samples=4, allow_angled=True),
        engine=fake_problem_factory(case),
    )
    check_plan(case, a, None)  # asserts parallel probes
    check_plan(case, b, None)
    assert [p.model_dump() for p in a.plan.probes] == [p.model_dump() for p in b.plan.probes]
    assert [p.voltage_v for p in a.plan.pairs] == [p.voltage_v for p in b.plan.pairs]
    assert not IrePlanOptions().allow_angled


def _blocked_case():
    # A hepatic vein branch (r 2 mm) crossing anterior to the tumour, along z, straight above
    # the tumour centre: an anterior needle through the tumour centre would hit it.
    return build_phantom(
        PhantomSpec(
            spacing_mm=(2.0,) * 3,
            fov_mm=(220.0, 170.0, 110.0),
            tumours=[TumourSpec(id="T1", centre_lps_mm=(-45.0, 0.0, 0.0), diameter_mm=12.0)],
            tubes=[
                TubeSpec(
                    name="hepatic_vein",
                    radius_mm=2.0,
                    direction=(0, 0, 1),
                    side=(0, -1, 0),
                    gap_mm=14.0,
                )
            ],
            margin_mm=5.0,
        )
    )


def test_blocked_probe_is_tilted_past_the_structure(fake_problem_factory):
    case = _blocked_case()
    d = np.array([0.0, 1.0, 0.0])  # anterior entry, advancing posterior
    u, v = perpendicular_basis(d)
    centre = np.array([-45.0, 0.0, 0.0])
    # Two probes 12 mm apart, the first straight through the tumour centre.
    c0 = centre + np.array([0.0, 0.0, 0.0])
    lay = Layout2D(2, 12.0, 0.0, (float(c0 @ u) + 6.0, float(c0 @ v)))
    pts = lay.points()
    assert min(np.abs(pts[:, 0] - c0 @ u)) < 1e-6  # one probe on the vein's line
    tip_t = float(centre @ d) + 10.0

    def planner(allow):
        from hepablate.devices.catalog import load_device_table

        o = IrePlanOptions(monte_carlo_samples=0, allow_angled=allow)
        lim = limits_from(load_device_table(), 600.0, o)
        return IrePlanner(case, fake_problem_factory(case), lim, load_planning_defaults(), o)

    par = planner(False)
    st = SearchState.initial(par.lim)
    assert not paths_ok(par, st, make_probes(par, st, 1, d, lay, tip_t, 20.0, u, v))[0]
    ang = planner(True)
    st = SearchState.initial(ang.lim, angled=True)  # what allow_angled starts the search with
    probes = make_probes(ang, st, 1, d, lay, tip_t, 20.0, u, v)
    pairs = neighbour_pairs(pts, 20.0)
    assert paths_ok(ang, st, probes, pairs)[0]
    # The probe on the vein's line is tilted (its neighbour may follow to keep the spacing),
    # by at most 15 deg, and keeps its active centre where the layout put it.
    on_line = [k for k, q in enumerate(pts) if abs(q[0] - c0 @ u) < 1e-6][0]
    t = probes[on_line]
    assert 1e-3 < angle_deg(t.direction_lps, d) <= 15.0 + 1e-6
    assert all(angle_deg(p.direction_lps, d) <= 15.0 + 1e-6 for p in probes)
    mid = np.asarray(t.tip_lps_mm) - 0.5 * t.exposure_mm * np.asarray(t.direction_lps)
    want = pts[on_line]
    assert np.linalg.norm(mid - (want[0] * u + want[1] * v + (tip_t - 10.0) * d)) < 0.1
    lo, hi = exposure_spacing_mm(probes[0], probes[1])
    assert 10.0 - 1e-6 <= lo and hi <= 20.0 * 1.01
    # The pull-back cycle withdraws each probe along its own line (the angled one too; it is
    # not reinserted along the layout's direction), to the next cycle's depth.
    back = make_probes(ang, st, 2, d, lay, tip_t - 8.0, 20.0, u, v, prev=probes)
    for p, q in zip(probes, back, strict=True):
        assert np.allclose(p.direction_lps, q.direction_lps)
        off = np.asarray(p.tip_lps_mm) - np.asarray(q.tip_lps_mm)
        assert np.linalg.norm(np.cross(off, np.asarray(p.direction_lps))) < 0.05  # same line
        # At the cycle's depth along d (the angled probe's own tip lay off it).
        assert abs(float(np.asarray(q.tip_lps_mm) @ d) - (tip_t - 8.0)) < 0.05
        assert float(off @ np.asarray(p.direction_lps)) > 7.0
    assert paths_ok(ang, st, back, pairs)[0]


def test_pull_back_drops_angled_pairs_that_leave_the_spacing_range(fake_problem_factory):
    """Converging angled probes come closer as they are pulled back: a pair whose spacing
    along the exposure leaves the device range is not energised in that cycle, as long as
    every probe keeps a pair (`layouts.in_range_pairs`)."""
    from hepablate.devices.catalog import load_device_table
    from hepablate.optimize.ire.layouts import in_range_pairs
    from hepablate.plans.model import Probe

    case = _blocked_case()
    o = IrePlanOptions(monte_carlo_samples=0, allow_angled=True)
    lim = limits_from(load_device_table(), 600.0, o)
    pl = IrePlanner(case, fake_problem_factory(case), lim, load_planning_defaults(), o)
    st = SearchState.initial(pl.lim, angled=True)

    def probe(i, tip, d):
        return Probe(
            id=f"P{i}", tip_lps_mm=tip, direction_lps=tuple(unit(np.asarray(d))), exposure_mm=20.0
        )

    th = np.radians(15.0)
    # P1 and P2 parallel 15 mm apart; P3 12 mm from P2 at the tips converges on it (6.8 mm at
    # the back of its exposure) but stays 16.5 to 19.2 mm from P1: pair (1, 2) leaves the
    # range, P3 keeps (0, 2).
    ps = [
        probe(1, (0.0, 0.0, 0.0), (0, 0, 1)),
        probe(2, (15.0, 0.0, 0.0), (0, 0, 1)),
        probe(3, (15.0, 12.0, 0.0), (0.0, np.sin(th), np.cos(th))),
    ]
    assert exposure_spacing_mm(ps[1], ps[2])[0] < 10.0
    keep = in_range_pairs(pl, st, ps, [(0, 1), (1, 2), (0, 2)])
    assert (1, 2) not in keep and (0, 1) in keep and (0, 2) in keep
    # Without (0, 2) P3 would be left without a pair: the cycle is lost.
    assert in_range_pairs(pl, st, ps, [(0, 1), (1, 2)]) == []


def test_exposure_spacing_and_tilts():
    from hepablate.plans.model import Probe

    def probe(tip, d):
        return Probe(id="P", tip_lps_mm=tip, direction_lps=d, exposure_mm=20.0)

    a = probe((0.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    b = probe((15.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    assert np.allclose(exposure_spacing_mm(a, b), (15.0, 15.0))
    # Tilted 10 deg, entries converging towards a: the tips stay 15 mm apart, the back ends
    # of the exposures come closer.
    th = np.radians(10.0)
    c = probe((15.0, 0.0, 0.0), (np.sin(th), 0.0, np.cos(th)))
    lo, hi = exposure_spacing_mm(a, c)
    assert abs(hi - 15.0) < 1e-6 and abs(lo - (15.0 - 20.0 * np.sin(th))) < 0.05
    dirs = tilted_directions(np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), 15.0)
    angles = [angle_deg(x, (0, 0, 1)) for x in dirs]
    assert min(angles) > 0 and max(angles) <= 15.0 + 1e-9
    assert angles == sorted(angles)
    assert dirs[0][0] > 0 and dirs[1][0] < 0  # along the radial vector, then against it


def test_cone_directions_are_clear_entries_within_the_angle_limit():
    """Entry-first placement (issue 12): from a point whose parallel path is blocked, the
    skin entries within the angle limit whose path screens clear, smallest deviation first
    among the surely clear; the exact check confirms them; an entry region restricts them."""
    from hepablate.placement.approach import accessible, cone_directions

    case = _blocked_case()
    pm = PathMap(case, 3.0)
    d = np.array([0.0, 1.0, 0.0])
    point = np.array([-45.0, 0.0, 0.0])  # behind the vein: the parallel path hits it
    assert not pm.check_path(point, d).ok
    dirs = cone_directions(pm, point, d, 15.0, "supine", limit=400)
    assert dirs
    for x in dirs:
        assert angle_deg(x, d) <= 15.0 + 1e-6
        assert accessible(-x, "supine")
    ok = [pm.check_path(point, x).ok for x in dirs]
    # Within 15 deg only a few paths pass the vein: the screen ranks them first.
    assert any(ok[:16]) and sum(ok[:16]) / 16 > sum(ok[16:]) / max(len(ok) - 16, 1), ok
    # Within 25 deg many are surely clear: those come first, the smallest deviation first.
    wide = cone_directions(pm, point, d, 25.0, "supine")
    assert len(wide) == 16 and all(pm.check_path(point, x).ok for x in wide[:8])
    first = [angle_deg(x, d) for x in wide[:4]]  # here 5 are surely clear
    assert first == sorted(first)
    # Nothing within 2 deg (the vein lies across the straight path) and nothing at all when
    # the entry region lies elsewhere on the skin.
    assert not cone_directions(pm, point, d, 2.0, "supine")
    far = pm.skin_entry(point, np.array([1.0, 0.0, 0.0]))  # right lateral skin
    assert far is not None
    assert not cone_directions(pm, point, d, 15.0, "supine", EntryRegion(tuple(far), 5.0))


def test_angled_probe_next_to_a_structure_beyond_its_tip_is_placed_shallower(
    fake_problem_factory,
):
    """A probe angled past a structure on its parallel path whose deep end would come within
    the safety distance of a second structure (beyond the tip) is placed shallower along its
    new line, as a parallel probe would be, instead of dropping the layout."""
    from hepablate.devices.catalog import load_device_table
    from hepablate.optimize.ire.probes import place_angled

    case = build_phantom(
        PhantomSpec(
            spacing_mm=(2.0,) * 3,
            fov_mm=(220.0, 170.0, 110.0),
            tumours=[TumourSpec(id="T1", centre_lps_mm=(-45.0, 0.0, 0.0), diameter_mm=12.0)],
            tubes=[
                TubeSpec(name="hepatic_vein", radius_mm=2.0, side=(0, -1, 0), gap_mm=14.0),
                TubeSpec(name="portal_vein", radius_mm=3.0, side=(0, 1, 0), gap_mm=2.0),
            ],
            margin_mm=5.0,
        )
    )
    o = IrePlanOptions(monte_carlo_samples=0, allow_angled=True)
    lim = limits_from(load_device_table(), 600.0, o)
    pl = IrePlanner(case, fake_problem_factory(case), lim, load_planning_defaults(), o)
    st = SearchState.initial(pl.lim, angled=True)
    d = np.array([0.0, 1.0, 0.0])
    centre = np.array([-45.0, 0.0, 0.0])
    exposure = 20.0  # the tip, 10 mm beyond the centre, would sit in the portal vein's wall
    assert not pl.paths.check_path(centre, d).ok
    got = place_angled(pl, st, centre, d, np.zeros(3), exposure, [], [], None, 0.0)
    assert got is not None
    tip, dd, chk = got
    assert chk.ok and pl.paths.check_path(tip, dd).ok  # exact, independent of the planner
    assert 1e-3 < angle_deg(dd, d) <= 15.0 + 1e-6
    depth_beyond_centre = float((tip - centre) @ dd)
    assert depth_beyond_centre < 0.5 * exposure - 1.0  # shallower than the layout's tip
    assert pl.record.stats["angled_cone_screens"] >= 1
