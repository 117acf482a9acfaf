"""What the steps of the IRE search pass to each other: the engine contract, candidate
layouts, confirmed plans, the search state and the record of what the search did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from hepablate.core.volume import Volume
from hepablate.evaluation import ZoneMetrics
from hepablate.optimize.ire.options import Limits
from hepablate.placement.geometry import Layout2D
from hepablate.plans.model import IrePair, PlanWarning, Probe

# ---- the engine contract (hepablate.physics.ire.IreProblem) ---------------------------------


class IreEngine(Protocol):
    grid: Volume
    structures: dict[str, np.ndarray]

    def unit_basis(self, probes: list[Probe]) -> Any: ...

    def pair_field_constant(
        self, basis: Any, anode_id: str, cathode_id: str, voltage_v: float
    ) -> np.ndarray: ...

    def simulate(self, probes: list[Probe], pairs: list[IrePair], progress: Any = None) -> Any: ...


# ---- search state ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchState:
    """The search's estimates and allowances of one round; the search loop makes a new one
    (`dataclasses.replace`) whenever the engine's answer changes them."""

    reach_factor: float = 0.45
    """Zone half-width around a pair as a fraction of its spacing (layout fit): 0.3 from the
    2D line-charge field at 1500 V/cm and 600 V/cm; the nonlinear zone is wider, so the search
    starts at 0.45 and tightens whenever the engine says a layout falls short."""
    axial_reach: float = 0.0
    """How far the zone reaches beyond the ends of the active parts (mm); negative values
    extend the exposure beyond the region (the zone tapers at the needle ends)."""
    tumour_weight: float = 1.0
    """How much deeper inside the pair bands the tumour must lie than the margin (layout
    fit); doubled whenever a confirmed layout leaves tumour outside the zone."""
    max_back_fraction: float = 0.5
    """How far (fraction of the exposure) a probe whose deep end would come too close to a
    no-go structure may be placed shallower."""
    pair_max_mm: float = 20.0
    """Probe pairs at most this far apart are energised: the spacing rule's limit (20 mm with
    the 3000 V generator); for targets no layout fits otherwise, the device's (25 mm: the
    diagonals of a layout's cells, at 3000 V, below the 1500 V/cm rule)."""

    angled: bool = False
    """Whether a probe whose parallel path is blocked may be angled (`probes.place_angled`):
    from the start with `allow_angled`, else once parallel paths are blocked (issue 12)."""

    @classmethod
    def initial(cls, lim: Limits, angled: bool = False) -> SearchState:
        return cls(pair_max_mm=lim.spacing_max_mm, angled=angled)


@dataclass
class SearchRecord:
    """What the search did so far (accumulated, never configuration): statistics for the
    plan's metrics, one trace entry per layout tried, what stopped layouts, and the voltage
    raises refused for predicted thermal damage at a vessel or duct."""

    stats: dict[str, float] = field(
        default_factory=lambda: {
            "engine_layouts_evaluated": 0,
            "nonlinear_solves": 0,
            "repairs": 0,
            "fast_choice_confirmed": 0,
        }
    )
    trace: list[dict] = field(default_factory=list)
    blocked: dict[str, int] = field(default_factory=dict)
    """Why layouts were dropped (path blocked by a structure, spacing, cycles) and how often:
    for the reason of an infeasible plan."""
    thermal_refusals: list[dict] = field(default_factory=list)
    """Voltage raises refused because they predicted (more) thermal damage at a vessel or
    duct."""
    thermal_fallbacks: list[ConfirmedPlan] = field(default_factory=list)
    """The plans such refused raises gave that met the coverage requirement nonetheless."""
    angled_reason: str | None = None
    """Why the search went on to angled probes (parallel paths blocked), if it did."""

    def count(self, stat: str, n: float = 1) -> None:
        self.stats[stat] = self.stats.get(stat, 0) + n


# ---- layouts and plans -----------------------------------------------------------------------


@dataclass
class CycleLayout:
    cycle: int
    direction: np.ndarray
    layout: Layout2D
    tip_t_mm: float
    exposure_mm: float
    probes: list[Probe]
    pairs: list[tuple[int, int]]
    part: np.ndarray
    """Boolean mask (planning grid) of the region part this cycle must cover."""


#: A candidate multi-cycle layout: (score, cycles, key); the key identifies it in `exclude`.
Candidate = tuple[float, list[CycleLayout], tuple]

#: Constant-model fields of the pairs of a fast-voltage plan on the target region:
#: (cycle, anode, cathode) -> (voltage V, |E| V/cm at that voltage per region voxel).
PairFields = dict[tuple[int, str, str], tuple[float, np.ndarray]]


@dataclass
class ConfirmedPlan:
    probes: list[Probe]
    pairs: list[IrePair]
    zone: np.ndarray
    field_max_v_per_cm: np.ndarray
    metrics: ZoneMetrics
    region: np.ndarray
    results: list[Any]
    temperature_max_c: np.ndarray | None
    thermal_omega: np.ndarray | None
    thermal_hits: dict[str, float] = field(default_factory=dict)
    """Predicted thermal damage (Arrhenius Omega >= the planning threshold) at vessels and bile
    ducts: ml of each structure's lumen and one-voxel wall (the engine's rule), per structure."""
    thermal_peak: float = 0.0
    """The largest predicted Omega in those lumens and walls."""


@dataclass
class IrePlanOutcome:
    """What the search found: the best confirmed plan (None: no layout fits), why a target
    stays uncovered as far as the search can tell (`reason`; the no-layout statement when
    there is no plan), its notes for the planning record, the grid and its statistics."""

    confirmed: ConfirmedPlan | None
    reason: str
    notes: list[PlanWarning]
    grid: Volume
    structures: dict[str, np.ndarray]
    region: np.ndarray
    limits: Limits
    stats: dict[str, float] = field(default_factory=dict)


def probes_key(probes: list[Probe]) -> tuple:
    """Identifies a placement (the probes of every cycle) among the plans the search made."""
    return tuple((p.cycle, p.id, tuple(p.tip_lps_mm)) for p in probes)
