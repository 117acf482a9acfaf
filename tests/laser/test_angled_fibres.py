"""Laser layouts (issue 12): a fibre whose parallel path is blocked is turned about the middle
of its illuminated range, within max_probe_angle_deg, keeping its gap to the other fibres;
the path of the turned fibre is checked again here with exact distances."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.anatomy.tissues import load_tissue_table
from hepablate.core.progress import NullProgress
from hepablate.devices.catalog import load_device_table
from hepablate.evaluation import load_planning_defaults
from hepablate.optimize import laser_layouts as layouts
from hepablate.optimize.laser import LaserPlanner, LaserPlanOptions
from hepablate.placement.geometry import segment_distance
from hepablate.placement.paths import PathMap, candidate_directions

from ._helpers import small_case


def _planner(case):
    return LaserPlanner(
        case,
        LaserPlanOptions(grid_spacing_mm=2.0, min_fibres=2, max_fibres=2),
        load_tissue_table(),
        load_device_table(),
        NullProgress(),
    )


@pytest.fixture(scope="module")
def blocked_case():
    """The small laser phantom with a 4 mm 'hepatic vein' ball on the second fibre's parallel
    path, 35 mm above its tip (between the skin and the tumour)."""
    case = small_case(diameter_mm=20.0)
    pl = _planner(case)
    pm = PathMap(case, pl.safety_mm)
    d = candidate_directions(pl.centre, pm, pl.max_tilt)[0]
    cand = next(c for c in pl.candidates(d) if c.n_fibres == 2)
    assert layouts.with_paths(pl, pm, cand) is not None  # clear before the vessel is added
    tip = np.asarray(cand.fibres[1].tip_lps_mm, float)
    ball_c = tip - 35.0 * d
    g = case.grid
    idx = np.argwhere(np.ones(g.array.shape, bool))
    pts = g.index_to_lps(idx[:, ::-1].astype(float))
    ball = (np.linalg.norm(pts - ball_c, axis=1) <= 4.0).reshape(g.array.shape)
    assert case.structures["body"][ball].all()
    case.structures["hepatic_vein"] = ball | case.structures.get("hepatic_vein", ball & False)
    return case, d, cand


def test_blocked_fibre_is_turned_within_the_limits(blocked_case):
    case, d, cand = blocked_case
    pl = _planner(case)
    pm = PathMap(case, pl.safety_mm)
    defaults = load_planning_defaults()
    parallel = pm.check_path(np.asarray(cand.fibres[1].tip_lps_mm), d)
    assert not parallel.ok and parallel.blocking == "hepatic_vein"
    got = layouts.with_paths(pl, pm, cand)
    assert got is not None
    assert got.angled == ["F2"]
    f1, f2 = got.fibres
    assert np.allclose(f1.direction_lps, d, atol=1e-5)  # the clear fibre stays parallel
    turn = np.degrees(np.arccos(np.clip(np.dot(f2.direction_lps, d), -1, 1)))
    assert 0.5 < turn <= defaults.max_probe_angle_deg.value + 0.01  # stored to 1e-6
    # Its path, checked again with exact distances, keeps the safety distance ...
    chk = pm.check_path(np.asarray(f2.tip_lps_mm), np.asarray(f2.direction_lps))
    assert chk.ok, chk.blocking
    assert f2.entry_lps_mm is not None and f1.entry_lps_mm is not None
    # ... and the two fibres keep the minimum gap from skin to tip.
    gap = segment_distance(
        np.asarray(f1.entry_lps_mm), np.asarray(f1.tip_lps_mm),
        np.asarray(f2.entry_lps_mm), np.asarray(f2.tip_lps_mm),
    )  # fmt: skip
    assert gap >= defaults.min_needle_gap_mm.value
    # The middle of the illuminated range stays where the layout put it.
    span = max(il.pullback_mm for il in cand.illuminations)
    mid_old = np.asarray(cand.fibres[1].tip_lps_mm) - 0.5 * span * d
    mid_new = np.asarray(f2.tip_lps_mm) - 0.5 * span * np.asarray(f2.direction_lps)
    assert np.linalg.norm(mid_new - mid_old) < 0.05


def test_no_turn_left_in_the_budget_means_blocked(blocked_case):
    case, _, cand = blocked_case
    pl = _planner(case)
    pm = PathMap(case, pl.safety_mm)
    pl.angled_checks = layouts.ANGLED_PATH_BUDGET
    assert layouts.with_paths(pl, pm, cand) is None
    assert pl.angled_budget_exhausted
    assert pl.blocked.get("hepatic_vein", 0) >= 1
