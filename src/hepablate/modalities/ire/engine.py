"""The IRE engine run of one plan: cycle by cycle, combined into one zone and its maps.

Cycles are separate placements (probes pulled back or repositioned between them, minutes
apart), so each is solved on its own, its Joule heating included; the plan's zone is the union
of the cycles' zones, its field, temperature and Arrhenius Omega maps the voxel-wise maxima
(Omega: see docs/physics-ire.md on why the maximum, not the sum).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from hepablate.case.model import Case
from hepablate.physics.grid import resample_structures
from hepablate.physics.ire import IreProblem, IreResult
from hepablate.plans.model import IrePair, IreSimulationSettings, Probe

#: Cycle results an `IreSession` remembers (each holds a few float32 maps of the grid).
CYCLE_MEMORY = 12


@dataclass
class IreSession:
    """An IRE engine problem kept across evaluations of one case (the planner's search, edits
    in the web application): pair solutions (inside `IreProblem`) and whole cycle results are
    remembered. Exact: a remembered result is the one a fresh solve of the same cycle gives."""

    problem: IreProblem
    _cycles: OrderedDict[tuple, IreResult] = field(default_factory=OrderedDict)
    solves: int = 0

    @classmethod
    def for_grid(cls, case: Case, grid, settings: IreSimulationSettings, tissues, devices):
        structures = resample_structures(case.structures, case.grid, grid)
        return cls(IreProblem(grid, structures, tissues, devices, settings))

    def fits(self, grid, settings: IreSimulationSettings) -> bool:
        return self.problem.grid.same_geometry(grid) and self.problem.settings == settings

    def simulate_cycle(self, probes: list[Probe], pairs: list[IrePair]) -> IreResult:
        key = (
            tuple(p.model_dump_json() for p in probes),
            tuple(p.model_dump_json(exclude={"predicted_current_a", "spacing_mm"}) for p in pairs),
        )
        res = self._cycles.pop(key, None)
        if res is None:
            res = self.problem.simulate(probes, pairs, progress=None)
            self.solves += 1
        self._cycles[key] = res
        while len(self._cycles) > CYCLE_MEMORY:
            self._cycles.popitem(last=False)
        return res


@dataclass
class CycleRuns:
    """The combined result of every cycle of a plan."""

    cycles: list[int]
    results: list[IreResult]
    zone: np.ndarray
    field_max_v_per_cm: np.ndarray
    temperature_max_c: np.ndarray | None
    thermal_omega: np.ndarray | None
    reversible_zone: np.ndarray
    pairs: list[IrePair]
    """The plan's pairs (plan order) with `predicted_current_a` filled."""


def simulate_cycles(
    session: IreSession, probes: list[Probe], pairs: list[IrePair], progress=None
) -> CycleRuns:
    """Solve each cycle (see the module docstring) and combine them."""
    shape = session.problem.grid.array.shape
    zone = np.zeros(shape, dtype=bool)
    rev = np.zeros(shape, dtype=bool)
    fmax = np.zeros(shape, dtype=np.float32)
    tmax: np.ndarray | None = None
    omega: np.ndarray | None = None
    cycles = sorted({p.cycle for p in probes} | {p.cycle for p in pairs})
    results: list[IreResult] = []
    currents: dict[tuple[int, str, str], float] = {}
    if progress is not None:
        progress.start("IRE cycles", total=len(cycles))
    for c in cycles:
        res = session.simulate_cycle(
            [p for p in probes if p.cycle == c], [p for p in pairs if p.cycle == c]
        )
        results.append(res)
        zone |= np.asarray(res.zone, dtype=bool)
        rev |= np.asarray(res.reversible_zone, dtype=bool)
        fmax = np.maximum(fmax, np.asarray(res.field_max_v_per_cm, dtype=np.float32))
        if res.temperature_max_c is not None:
            t = np.asarray(res.temperature_max_c)
            tmax = t if tmax is None else np.maximum(tmax, t)
        if res.thermal_omega is not None:
            o = np.asarray(res.thermal_omega)
            omega = o if omega is None else np.maximum(omega, o)
        for pr in res.pair_results:
            currents.setdefault((c, pr.anode, pr.cathode), float(pr.current_a))
        if progress is not None:
            progress.advance()
    if progress is not None:
        progress.finish()
    rev &= ~zone
    new_pairs = [
        p.model_copy(
            update={
                "predicted_current_a": None
                if (p.cycle, p.anode, p.cathode) not in currents
                else round(currents[(p.cycle, p.anode, p.cathode)], 2)
            }
        )
        for p in pairs
    ]
    return CycleRuns(cycles, results, zone, fmax, tmax, omega, rev, new_pairs)
