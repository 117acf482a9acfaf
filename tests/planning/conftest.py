"""A stand-in for the physics engine (tests only): the analytic line-electrode field on a
crop of the case grid. 'Nonlinear' results scale the field by 1.3 (the real engine's
electroporated conductivity flattens and widens the field); currents are proportional to
voltage and exposure. Used to test the planner's logic fast; the real engine is tested in
test_plan_engine.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from hepablate.core.volume import Volume
from hepablate.optimize.surrogate import pair_field_v_per_cm
from hepablate.plans.model import PlanWarning


@dataclass
class FakePairResult:
    cycle: int
    anode: str
    cathode: str
    voltage_v: float
    current_a: float
    over_limit: bool
    nonlinear_iterations: int = 1
    current_end_of_train_a: float | None = None
    converged: bool = True


@dataclass
class FakeResult:
    field_max_v_per_cm: np.ndarray
    zone: np.ndarray
    pair_results: list
    temperature_max_c: np.ndarray | None = None
    thermal_omega: np.ndarray | None = None
    warnings: list[PlanWarning] = field(default_factory=list)
    reversible_zone: np.ndarray | None = None


class FakeIreProblem:
    def __init__(
        self,
        case,
        pad_mm: float = 20.0,
        threshold: float = 600.0,
        amps_per_v_mm: float = 0.0008,
        nonlinear_gain: float = 1.3,
    ):
        bb = case.grid.with_array(case.target_mask).bounding_box_lps_mm()
        lo = case.grid.lps_to_index(bb[0] - pad_mm)
        hi = case.grid.lps_to_index(bb[1] + pad_mm)
        shp = np.array(case.grid.shape_ijk)
        lo = np.clip(np.floor(lo).astype(int), 0, shp - 1)
        hi = np.clip(np.ceil(hi).astype(int), 0, shp - 1)
        sl = tuple(slice(lo[a], hi[a] + 1) for a in (2, 1, 0))
        origin = case.grid.index_to_lps(lo.astype(float))
        self.grid = Volume(
            case.grid.array[sl], case.grid.spacing_mm, tuple(origin), case.grid.direction
        )
        self.structures = {k: v[sl] for k, v in case.structures.items()}
        idx = np.argwhere(np.ones(self.grid.array.shape, bool))
        self._pts = self.grid.index_to_lps(idx[:, ::-1].astype(float))
        self.threshold = threshold
        self.amps_per_v_mm = amps_per_v_mm
        self.gain = nonlinear_gain
        self.simulate_calls = 0

    def unit_basis(self, probes):
        return {p.id: p for p in probes}

    def pair_field_constant(self, basis, anode_id, cathode_id, voltage_v):
        e = pair_field_v_per_cm(self._pts, basis[anode_id], basis[cathode_id], voltage_v)
        return e.reshape(self.grid.array.shape).astype(np.float32)

    def simulate(self, probes, pairs, progress=None):
        self.simulate_calls += 1
        basis = self.unit_basis(probes)
        fmax = np.zeros(self.grid.array.shape, np.float32)
        prs = []
        for p in pairs:
            e = self.gain * self.pair_field_constant(basis, p.anode, p.cathode, p.voltage_v)
            fmax = np.maximum(fmax, e)
            cur = self.amps_per_v_mm * p.voltage_v * basis[p.anode].exposure_mm / 20.0 * 20.0
            prs.append(FakePairResult(p.cycle, p.anode, p.cathode, p.voltage_v, cur, cur > 50))
        return FakeResult(fmax, fmax >= self.threshold, prs)


@pytest.fixture(scope="session")
def fake_problem_factory():
    return FakeIreProblem
