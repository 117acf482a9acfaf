"""IRE planning: probe layout, exposure, pair sequence and voltages, confirmed by the engine.

Search (docs/planning-ire.md explains why this optimiser):
1. Insertion directions: parallel probes along candidate directions whose straight path from
   the body surface is short (anterior/lateral entries, limited craniocaudal tilt), or towards
   a user entry region.
2. For each direction, the target region (tumour + margin, clipped to liver) is projected on
   the plane perpendicular to it. A structured generator tries layouts of 2 to 6 probes
   (line, triangle, square, pentagon, 2 x 3 rectangle) at every spacing allowed (1 mm steps),
   12 rotations and a pattern search over the layout centre, and keeps the smallest layout
   whose polygon, grown by an estimated zone reach (calibrated against the engine as the
   search goes), contains the projected region, and whose every needle path is clear.
   Along the needle the exposure spans the region's extent; beyond the practice exposure
   (devices.yaml) the plan uses overlapping pull-back cycles, and beyond six probes at maximum
   spacing it splits the region into repositioning cycles (fewest first); for such large
   targets the diagonals of open layout cells are energised too (up to the device's maximum
   spacing), and if nothing fits the reach estimate is relaxed so that the engine decides
   how much a multi-cycle plan covers. Once a confirmed layout leaves
   tumour uncovered, the fit weights the tumour's points (pairs through the tumour, not a
   cell's weak middle), and probes next to a no-go structure may be placed much shallower.
   With `allow_angled`, a probe whose parallel path is blocked may deviate up to 15 deg.
3. The engine's constant-conductivity model (linear in voltage) gives the exact common voltage
   scale that covers the region; voltages start at the 1500 V/cm spacing rule and may rise to
   the generator limit. The constant model underestimates the zone, so this is conservative.
4. Confirmation with the engine's full nonlinear solve; repair: pairs over the current limit
   are turned down, and if coverage falls short the pairs that border the shortfall are
   raised (within the voltage and current limits; kept only if the plan improves) or the
   next candidate layout is tried. Predicted thermal damage at a vessel or bile duct is a
   constraint: a raise that predicts more of it is retried with the trains split in two,
   else refused; a plan with such damage is chosen only if no layout meets the acceptance
   without it, and says so.
5. Robustness: Monte Carlo placement error with the calibrated analytic surrogate
   (`hepablate.optimize.surrogate`).
An infeasible plan says where the target stays below threshold and why
(`shortfall_groups`, `describe_shortfall`: next to which vessel or duct, with the field).

The modules follow these steps: `options` (what the planner may do: options, device limits),
`planner` (`IrePlanner`: what one run works with), `search` (the loop; `SearchState` in
`model` holds its estimates, renewed each round), `layouts` (step 2), `probes` (needle paths,
angled probes, energised pairs), `voltages` (steps 3 and 4), `robustness` (step 5),
`shortfall` and `diagnosis` (what an infeasible plan says, the plan's warnings) and
`assemble` (`plan_ire`: the search, its planning record, then `hepablate.evaluate` of the
chosen plan).
"""

from hepablate.core.units import unit_of
from hepablate.optimize.ire.assemble import default_engine, plan_ire
from hepablate.optimize.ire.layouts import MAX_SPLITS, _fit_layout, _layout_area, _pair_segments
from hepablate.optimize.ire.model import (
    ConfirmedPlan,
    CycleLayout,
    IreEngine,
    IrePlanOutcome,
    SearchRecord,
    SearchState,
)
from hepablate.optimize.ire.options import (
    EntryRegionModel,
    IrePlanOptions,
    Limits,
    limits_from,
    search_threshold_v_per_cm,
)
from hepablate.optimize.ire.planner import IrePlanner
from hepablate.optimize.ire.probes import energised_pairs, unit_dir
from hepablate.optimize.ire.robustness import coverage_probability
from hepablate.optimize.ire.search import LARGE_TARGET_REACH, RELAXED_REACH_FACTORS
from hepablate.optimize.ire.shortfall import (
    NEAR_STRUCTURE_MM,
    ShortfallGroup,
    describe_shortfall,
    shortfall_groups,
)

__all__ = [
    "ConfirmedPlan",
    "CycleLayout",
    "EntryRegionModel",
    "IreEngine",
    "IrePlanOptions",
    "IrePlanOutcome",
    "IrePlanner",
    "LARGE_TARGET_REACH",
    "Limits",
    "MAX_SPLITS",
    "NEAR_STRUCTURE_MM",
    "RELAXED_REACH_FACTORS",
    "SearchRecord",
    "SearchState",
    "ShortfallGroup",
    "_fit_layout",
    "_layout_area",
    "_pair_segments",
    "coverage_probability",
    "default_engine",
    "describe_shortfall",
    "energised_pairs",
    "limits_from",
    "plan_ire",
    "search_threshold_v_per_cm",
    "shortfall_groups",
    "unit_dir",
    "unit_of",
]
