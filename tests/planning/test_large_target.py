"""Targets larger than one placement covers (issue 4): repositioning cycles, or a statement of
how much is left uncovered and why, never a bare "no layout"."""

import re

import numpy as np

from hepablate.optimize import IrePlanOptions, plan_ire
from hepablate.optimize.ire import energised_pairs
from hepablate.placement.geometry import template_2d

from .test_planner import _case, check_plan


def test_large_target_gets_repositioning_cycles_or_a_quantified_statement(fake_problem_factory):
    # A 3 cm tumour with a 5 mm margin next to a portal vein branch (4 cm region) and at most
    # three probes: no single placement covers it (the planner said "no layout" before).
    case = _case(30.0, 5.0, 1.0, spacing=3.0)
    fake = fake_problem_factory(case)
    res = plan_ire(case, IrePlanOptions(max_probes=3, monte_carlo_samples=4), engine=fake)
    plan = res.plan
    check_plan(case, res, fake)
    assert plan.probes and fake.simulate_calls >= 1  # confirmed by the engine
    cycles = {p.cycle for p in plan.probes}
    assert len(cycles) > 1
    # Repositioned, not only pulled back: two cycles' probes differ across the needles.
    d = np.asarray(plan.probes[0].direction_lps)
    across = {
        c: np.round(
            sorted(
                tuple(np.asarray(p.tip_lps_mm) - (np.asarray(p.tip_lps_mm) @ d) * d)
                for p in plan.probes
                if p.cycle == c
            ),
            0,
        ).tobytes()
        for c in cycles
    }
    assert len(set(across.values())) > 1
    if plan.status == "feasible":
        assert plan.metrics.target_coverage >= 0.99
    else:
        reason = plan.status_reason
        assert "no layout" not in reason
        m = re.search(r"covers ([\d.]+) % of tumour plus margin", reason)
        assert m and abs(float(m.group(1)) - 100 * plan.metrics.target_coverage) < 0.06
        assert re.search(r"[\d.]+ ml uncovered", reason)
        assert f"the plan uses {len(cycles)} cycle(s)" in reason
        assert "V/cm threshold" in reason  # where and with which field


def test_no_layout_statement_has_numbers(fake_problem_factory):
    # Paths blocked everywhere (no probe may come within 60 mm of the vessel): the statement
    # says that the whole target is uncovered, how much that is, and what stopped the layouts.
    case = _case(12.0, 5.0, 3.0)
    res = plan_ire(
        case,
        IrePlanOptions(safety_distance_mm=60.0, max_probes=3, monte_carlo_samples=4),
        engine=fake_problem_factory(case),
    )
    plan = res.plan
    assert plan.status == "infeasible" and not plan.probes
    reason = plan.status_reason
    assert "whole target is left uncovered" in reason
    assert re.search(r"\(([\d.]+) ml of tumour plus margin, ([\d.]+) ml of it tumour", reason)
    assert "the device allows 25 mm" in reason  # why the layout spacing stops at 20 mm


def test_cell_diagonals_only_across_open_cells():
    # 2 x 3 rectangle at 17 mm: the four cell diagonals (24 mm) join the perimeter pairs when
    # pairs up to 25 mm are allowed; the 34 mm diagonals never.
    pts = template_2d(6, 17.0)
    rule = energised_pairs(pts, 20.0)
    wide = energised_pairs(pts, 20.0, 25.0)
    assert len(rule) == 7 and len(wide) == 11 and set(rule) < set(wide)
    assert max(np.linalg.norm(pts[i] - pts[j]) for i, j in wide) < 25.0
    # 5 probes (square with a central probe): the square's diagonals run through the central
    # probe and stay off.
    pts5 = template_2d(5, 17.0)
    assert set(energised_pairs(pts5, 20.0, 25.0)) == set(energised_pairs(pts5, 20.0))


def test_search_state_is_explicit_and_single_placement_reported(fake_problem_factory):
    # The search state is a frozen value the loop renews; `candidate_layouts` says whether a
    # single placement fits (the planner keeps no such flag).
    from dataclasses import FrozenInstanceError, replace

    import pytest

    from hepablate.devices.catalog import load_device_table
    from hepablate.evaluation import load_planning_defaults
    from hepablate.optimize.ire import IrePlanner, SearchState, limits_from
    from hepablate.optimize.ire.layouts import candidate_layouts

    def planner(case, **kw):
        o = IrePlanOptions(monte_carlo_samples=0, **kw)
        lim = limits_from(load_device_table(), 600.0, o)
        return IrePlanner(case, fake_problem_factory(case), lim, load_planning_defaults(), o)

    big = planner(_case(30.0, 5.0, 1.0, spacing=3.0), max_probes=3)
    st = SearchState.initial(big.lim)
    assert st.pair_max_mm == big.lim.spacing_max_mm and st.tumour_weight == 1.0
    with pytest.raises(FrozenInstanceError):
        st.tumour_weight = 2.0  # type: ignore[misc]
    _, single = candidate_layouts(big, st, set())
    assert not single  # three probes cannot cover a 4 cm region in one placement
    small = planner(_case(15.0))
    cands, single = candidate_layouts(small, SearchState.initial(small.lim), set())
    assert single and cands
    # A tighter reach estimate is a new state; the old one is unchanged.
    tight = replace(st, reach_factor=0.1)
    assert st.reach_factor == 0.45 and tight.reach_factor == 0.1
    assert not candidate_layouts(small, replace(tight, pair_max_mm=20.0), set())[1]
