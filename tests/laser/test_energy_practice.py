"""Laser energy per fibre and step against the practice range (issue 13): above it a
warning, below it a note, inside it nothing; through `hepablate.evaluate` too."""

from __future__ import annotations

import hepablate
from hepablate.devices import load_device_table
from hepablate.modalities.laser import energy_warnings

from ._helpers import small_case, two_fibre_plan


def _codes(plan):
    return {w.code: w for w in energy_warnings(plan, load_device_table())}


def test_energy_levels_against_the_practice_range():
    lo, hi = load_device_table().laser.energy_j.range
    assert (lo, hi) == (1200.0, 1800.0)
    inside = two_fibre_plan(power_w=3.0, duration_s=500.0)  # 1500 J
    assert _codes(inside) == {}
    above = two_fibre_plan(power_w=3.0, duration_s=700.0)  # 2100 J
    w = _codes(above)["energy_above_practice"]
    assert w.level == "warning" and "2100 J" in w.message and "1200 to 1800 J" in w.message
    below = two_fibre_plan(power_w=3.0, duration_s=200.0)  # 600 J
    n = _codes(below)["energy_below_practice"]
    assert n.level == "info" and "600 J" in n.message
    # At the edges of the range: inside.
    assert _codes(two_fibre_plan(power_w=3.0, duration_s=600.0)) == {}  # 1800 J


def test_evaluate_reports_energy_above_practice():
    case = small_case()
    plan = two_fibre_plan(power_w=5.0, duration_s=400.0)  # 2000 J per fibre
    ev = hepablate.evaluate(case, plan)
    codes = {w.code: w.level for w in ev.plan.warnings}
    assert codes.get("energy_above_practice") == "warning"
