"""An IRE engine kept across evaluations (`IreSession`), and the run of one plan cycle by
cycle, combined into one zone and its maps (`simulate_cycles`).

Cycles are separate placements (probes pulled back or repositioned between them, minutes
apart), so each is solved on its own, its Joule heating included; the plan's zone is the union
of the cycles' zones, its field, temperature and Arrhenius Omega maps the voxel-wise maxima
(Omega: see docs/physics-ire.md on why the maximum, not the sum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepablate.anatomy.tissues import TissueTable
from hepablate.case.model import Case
from hepablate.core.cache import ByteBudgetCache
from hepablate.core.volume import Volume
from hepablate.devices.catalog import DeviceTable
from hepablate.physics.grid import resample_structures
from hepablate.physics.ire.problem import IreProblem
from hepablate.plans.model import IrePair, IreSimulationSettings, Probe

#: Cycle results an `IreSession` remembers by default (each holds a few float32 maps of the
#: grid: about 20 MB at 1 mm around a 3 cm tumour).
CYCLE_MEMORY = 12


class IreSession:
    """An IRE engine kept across evaluations of one case (the planner's search, the final
    evaluation, edits in the web application): pair solutions (inside `IreProblem`) and whole
    cycle results are remembered. Exact: a remembered result is the one a fresh solve of the
    same cycle gives, since a cycle's result depends only on its probes and pulse trains.

    `engine` is an `IreProblem`, or any object with its `grid`, `structures` and
    `simulate(probes, pairs, progress)` (the planner's tests use an analytic stand-in)."""

    def __init__(self, engine: Any, max_cycles: int = CYCLE_MEMORY) -> None:
        self.problem = engine
        self._cycles: ByteBudgetCache[tuple, Any] = ByteBudgetCache(max_entries=max_cycles)
        self.solves = 0
        self.paths: Any = None
        """A `PathMap` of the case kept with the engine (the planner's), for path checks."""

    @classmethod
    def for_grid(
        cls,
        case: Case,
        grid: Volume,
        settings: IreSimulationSettings,
        tissues: TissueTable,
        devices: DeviceTable,
    ) -> IreSession:
        structures = resample_structures(case.structures, case.grid, grid)
        return cls(IreProblem(grid, structures, tissues, devices, settings))

    @property
    def grid(self) -> Volume:
        grid: Volume = self.problem.grid
        return grid

    @property
    def structures(self) -> dict[str, np.ndarray]:
        structures: dict[str, np.ndarray] = self.problem.structures
        return structures

    def fits(self, grid: Volume, settings: IreSimulationSettings) -> bool:
        """Whether this engine solves plans on `grid` with `settings`."""
        own = getattr(self.problem, "settings", settings)
        return bool(self.grid.same_geometry(grid) and own == settings)

    def validate(self, probes: list[Probe], pairs: list[IrePair], source: str | None) -> None:
        check = getattr(self.problem, "validate", None)
        if check is not None:
            check(probes, pairs, source=source)

    def simulate_cycle(self, probes: list[Probe], pairs: list[IrePair]) -> Any:
        """The nonlinear solve of one cycle (its probes and pulse trains), remembered."""
        key = (
            tuple(p.model_dump_json() for p in probes),
            tuple(p.model_dump_json(exclude={"predicted_current_a", "spacing_mm"}) for p in pairs),
        )
        res = self._cycles.get(key)
        if res is None:
            res = self.problem.simulate(probes, pairs, progress=None)
            self.solves += 1
            self._cycles.put(key, res)
        return res


@dataclass
class CycleRuns:
    """The combined result of every cycle of a plan."""

    cycles: list[int]
    results: list[Any]
    """Each cycle's engine result (`IreResult`)."""
    zone: np.ndarray
    field_max_v_per_cm: np.ndarray
    temperature_max_c: np.ndarray | None
    thermal_omega: np.ndarray | None
    reversible_zone: np.ndarray
    pairs: list[IrePair]
    """The plan's pairs (plan order) with `predicted_current_a` filled."""


def simulate_cycles(
    session: IreSession, probes: list[Probe], pairs: list[IrePair], progress: Any = None
) -> CycleRuns:
    """Solve each cycle (see the module docstring) and combine them."""
    shape = session.grid.array.shape
    zone = np.zeros(shape, dtype=bool)
    rev = np.zeros(shape, dtype=bool)
    fmax = np.zeros(shape, dtype=np.float32)
    tmax: np.ndarray | None = None
    omega: np.ndarray | None = None
    cycles = sorted({p.cycle for p in probes} | {p.cycle for p in pairs})
    results: list[Any] = []
    currents: dict[tuple[int, str, str], float] = {}
    if progress is not None:
        progress.start("IRE cycles", total=len(cycles))
    for c in cycles:
        res = session.simulate_cycle(
            [p for p in probes if p.cycle == c], [p for p in pairs if p.cycle == c]
        )
        results.append(res)
        zone |= np.asarray(res.zone, dtype=bool)
        rz = res.reversible_zone
        if rz is not None:
            rev |= np.asarray(rz, dtype=bool)
        fmax = np.maximum(fmax, np.asarray(res.field_max_v_per_cm, dtype=np.float32))
        t = getattr(res, "temperature_max_c", None)
        if t is not None:
            tmax = np.asarray(t) if tmax is None else np.maximum(tmax, t)
        om = getattr(res, "thermal_omega", None)
        if om is not None:
            omega = np.asarray(om) if omega is None else np.maximum(omega, om)
        for pr in res.pair_results:
            currents[(c, pr.anode, pr.cathode)] = float(pr.current_a)
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
