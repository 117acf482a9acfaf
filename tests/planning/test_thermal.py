"""Predicted thermal damage at vessels and bile ducts is a planning constraint (issue 4): the
planner prefers split trains, other layouts and lower voltages to voltage raises that cause
it, keeps the engine's warnings, and says so when it cannot avoid it."""

import numpy as np
from scipy import ndimage

from hepablate.optimize import IrePlanOptions, plan_ire
from hepablate.optimize.ire.voltages import split_trains
from hepablate.placement.geometry import active_segment, probe_spacing_mm
from hepablate.plans.model import IrePair, PlanWarning

from .conftest import FakeIreProblem
from .test_planner import _case

#: Reach (mm) of the stand-in's Joule heating around a probe's exposure. It must reach past
#: the 3 mm path safety distance: the needle paths keep a true 3 mm from the portal vein's
#: voxel boxes (exact clearance, issue 12), so heating confined to 3 mm could never touch
#: the vessel wall and the thermal rules would go untested.
HEAT_REACH_MM = 4.0


class ThermalFakeProblem(FakeIreProblem):
    """The stand-in engine with a stand-in for Joule heating: a train of n pulses at E V/cm
    between two probes gives Omega = (E / hot)^20 * (n / 90)^2 within `HEAT_REACH_MM` of both
    probes
    (the maximum over trains: the probes cool between trains). Like the engine it warns
    `thermal_damage_vessel` when Omega >= 1 reaches the vessel's lumen or one-voxel wall."""

    def __init__(self, case, hot_v_per_cm: float, **kw):
        super().__init__(case, **kw)
        self.hot = hot_v_per_cm

    def simulate(self, probes, pairs, progress=None):
        res = super().simulate(probes, pairs, progress)
        by = {p.id: p for p in probes}
        shape = self.grid.array.shape
        near = {}
        for p in probes:
            s0, s1 = active_segment(p)
            d = (s1 - s0) / np.linalg.norm(s1 - s0)
            rel = self._pts - s0
            t = np.clip(rel @ d, 0.0, float(np.linalg.norm(s1 - s0)))
            near[p.id] = (np.linalg.norm(rel - t[:, None] * d, axis=1) <= HEAT_REACH_MM).reshape(
                shape
            )
        omega = np.zeros(shape, np.float32)
        for pr in pairs:
            e = pr.voltage_v / (probe_spacing_mm(by[pr.anode], by[pr.cathode]) / 10.0)
            om = (e / self.hot) ** 20 * (pr.pulses / 90.0) ** 2
            for pid in (pr.anode, pr.cathode):
                omega = np.maximum(omega, np.where(near[pid], om, 0.0).astype(np.float32))
        res.thermal_omega = omega
        res.temperature_max_c = (37.0 + 30.0 * np.minimum(omega, 5.0)).astype(np.float32)
        vessel = self.structures["portal_vein"]
        if ((omega >= 1.0) & ndimage.binary_dilation(vessel)).any():
            res.warnings = [
                PlanWarning(
                    level="warning",
                    code="thermal_damage_vessel",
                    message="predicted thermal damage (Omega >= 1) at the vessel 'portal_vein'",
                )
            ]
        return res


def _plan(hot_v_per_cm):
    # A 12 mm tumour 3 mm from a portal vein branch; the stand-in's nonlinear zone is 10 %
    # smaller than the constant model's, so the first voltages fall short and the repair
    # raises the pairs that border the shortfall.
    case = _case(12.0, 5.0, 3.0)
    engine = (
        FakeIreProblem(case, nonlinear_gain=0.9)
        if hot_v_per_cm is None
        else ThermalFakeProblem(case, hot_v_per_cm, nonlinear_gain=0.9)
    )
    return plan_ire(case, IrePlanOptions(monte_carlo_samples=4), engine=engine).plan


def _max_v_per_cm(plan):
    return max(p.voltage_v / (p.spacing_mm / 10.0) for p in plan.pairs)


def test_split_trains_protocol():
    pairs = [
        IrePair(cycle=1, anode="P1", cathode="P2", voltage_v=2000, pulses=90),
        IrePair(cycle=1, anode="P2", cathode="P3", voltage_v=2100, pulses=90),
        IrePair(cycle=2, anode="P1", cathode="P2", voltage_v=2000, pulses=90),
    ]
    out = split_trains(pairs, {1})
    assert [(p.cycle, p.anode, p.cathode, p.pulses) for p in out] == [
        (1, "P1", "P2", 45),
        (1, "P2", "P3", 45),
        (1, "P1", "P2", 45),
        (1, "P2", "P3", 45),
        (2, "P1", "P2", 90),
    ]
    assert split_trains(out, {1, 2})[:4] == out[:4]  # split once only


def test_raise_that_heats_the_vessel_is_delivered_in_split_trains():
    base = _plan(None)
    e_max = _max_v_per_cm(base)
    assert base.status == "feasible" and e_max > 2000  # the repair raised
    # A stand-in threshold at which that raise reaches Omega >= 1 at the vessel in one train
    # of 90 pulses ((E/hot)^20 >= 1) but not in two trains of 45 (x 1/4): between E / 4^(1/20)
    # and E. Derived from the base plan rather than fixed, because how far the repair must
    # raise depends on how deep the probes may go next to the vessel (issue 12: a true 3 mm).
    plan = _plan(e_max / 2 ** (1 / 20))
    assert plan.status == "feasible", plan.status_reason
    assert plan.metrics.target_coverage >= 0.99
    codes = {w.code for w in plan.warnings + plan.planning.notes}
    assert "split_trains" in codes
    assert not codes & {"thermal_damage_vessel", "thermal_damage_unavoidable"}
    # Every pair twice, 45 + 45 pulses; all first halves before the second halves.
    keys = [(p.cycle, p.anode, p.cathode) for p in plan.pairs]
    assert all(keys.count(k) == 2 for k in keys)
    assert {p.pulses for p in plan.pairs} == {45}
    half = len(keys) // 2
    assert keys[:half] == keys[half:]


def test_thermal_damage_that_cannot_be_avoided_is_stated():
    plan = _plan(1950.0)  # the raise heats the vessel even in split trains
    stats = plan.planning.stats
    assert stats["raises_refused_thermal"] >= 1  # refused first, other layouts tried
    assert stats["search_attempts"] >= 2
    codes = [w.code for w in plan.warnings]
    if plan.status == "feasible" and _max_v_per_cm(plan) > 1950.0 * 1.0:
        # Only the damaging raise meets the coverage: the plan says so, with the structure,
        # and the engine's own warning stays.
        # (a note of the planning record: what the search tried, not a property of the plan)
        w = next(w for w in plan.planning.notes if w.code == "thermal_damage_unavoidable")
        assert w.level == "warning" and "portal_vein" in w.message
        assert "thermal_damage_vessel" in codes
    else:
        assert "thermal_damage_vessel" not in codes
