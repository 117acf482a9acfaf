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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hepablate.case.model import Case
from hepablate.core.progress import NullProgress, Progress
from hepablate.core.volume import Volume
from hepablate.devices.catalog import DeviceTable
from hepablate.evaluation import (
    Criteria,
    PlanningDefaults,
    ZoneMetrics,
    check_criteria,
    evaluate_zone,
    target_region,
)
from hepablate.placement.geometry import (
    Layout2D,
    neighbour_pairs,
    perpendicular_basis,
    template_2d,
    unit,
)
from hepablate.placement.paths import EntryRegion, PathMap, candidate_directions
from hepablate.plans.model import IrePair, PlanWarning, Probe

# ---- options -------------------------------------------------------------------------------


class IrePlanOptions(BaseModel):
    """User options of the IRE planner; `None` means the device/planning table default."""

    model_config = ConfigDict(extra="forbid")
    min_probes: int | None = Field(None, ge=1)
    max_probes: int | None = Field(None, ge=1)
    min_spacing_mm: float | None = Field(None, gt=0)
    max_spacing_mm: float | None = Field(None, gt=0)
    allow_angled: bool = False
    entry: EntryRegionModel | None = None
    safety_distance_mm: float | None = Field(None, ge=0)
    placement_error_mm: float | None = Field(None, ge=0)
    monte_carlo_samples: int | None = Field(None, ge=0)
    robust: bool = False
    grid_spacing_mm: float = Field(1.0, gt=0)
    max_cycles: int | None = Field(None, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> IrePlanOptions:
        if (self.min_probes and self.max_probes) and self.max_probes < self.min_probes:
            raise ValueError("max_probes must be >= min_probes")
        if (self.min_spacing_mm and self.max_spacing_mm) and (
            self.max_spacing_mm < self.min_spacing_mm
        ):
            raise ValueError(
                f"max spacing {self.max_spacing_mm:g} mm is below min spacing "
                f"{self.min_spacing_mm:g} mm"
            )
        return self


class EntryRegionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    centre_lps_mm: tuple[float, float, float]
    radius_mm: float = Field(20.0, gt=0)


IrePlanOptions.model_rebuild()


# ---- the engine contract (hepablate.physics.ire.IreProblem) ---------------------------------


class IreEngine(Protocol):
    grid: Volume
    structures: dict[str, np.ndarray]

    def unit_basis(self, probes: list[Probe]) -> Any: ...

    def pair_field_constant(
        self, basis: Any, anode_id: str, cathode_id: str, voltage_v: float
    ) -> np.ndarray: ...

    def simulate(self, probes: list[Probe], pairs: list[IrePair], progress: Any = None) -> Any: ...


# ---- results -------------------------------------------------------------------------------


@dataclass
class Limits:
    probes_min: int
    probes_max: int
    spacing_min_mm: float
    spacing_max_mm: float
    exposure_practice_max_mm: float
    exposure_min_mm: float
    exposure_max_mm: float
    v_per_cm_low: float
    v_per_cm_high: float
    max_voltage_v: float
    max_current_a: float
    pulses: int
    pulse_width_us: float
    diameter_mm: float
    threshold_v_per_cm: float
    spacing_device_max_mm: float | None = None
    """The device table's (or option's) maximum spacing before the generator cap."""


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
    status: str
    status_reason: str
    grid: Volume
    structures: dict[str, np.ndarray]
    region: np.ndarray
    confirmed: ConfirmedPlan | None
    warnings: list[PlanWarning]
    coverage_probability: float | None
    limits: Limits
    stats: dict[str, float] = field(default_factory=dict)


# ---- helpers -------------------------------------------------------------------------------


def limits_from(devices: DeviceTable, threshold_v_per_cm: float, opts: IrePlanOptions) -> Limits:
    d = devices.ire
    smin, smax = (float(x) for x in d.spacing_mm.value)
    smin = opts.min_spacing_mm or smin
    smax = opts.max_spacing_mm or smax
    if smax < smin:
        from hepablate.errors import InputError

        raise InputError(
            f"max spacing {smax:g} mm is below min spacing {smin:g} mm", field="spacing"
        )
    pmin = max(int(d.probes_min.value), opts.min_probes or 0)
    pmax = min(int(d.probes_max.value), opts.max_probes or 99)
    if pmax < pmin:
        from hepablate.errors import InputError

        raise InputError(
            f"probe count range {pmin}..{pmax} is empty (device allows "
            f"{d.probes_min.value}..{d.probes_max.value})",
            field="probes",
        )
    lo, hi = (float(x) for x in d.voltage_per_cm_v.value)
    emin, emax = (float(x) for x in d.exposure_limits_mm.value)
    # Wider pairs would need more than the generator's voltage at the spacing rule's low end.
    s_volt = 10.0 * float(d.max_voltage_v.value) / lo
    if smin > s_volt:
        from hepablate.errors import InputError

        raise InputError(
            f"min spacing {smin:g} mm needs more than the generator's "
            f"{float(d.max_voltage_v.value):g} V at {lo:g} V/cm",
            field="spacing",
        )
    s_device = smax
    smax = min(smax, s_volt)
    return Limits(
        probes_min=pmin,
        probes_max=pmax,
        spacing_min_mm=smin,
        spacing_max_mm=smax,
        exposure_practice_max_mm=float(d.exposure_mm.range[1])
        if d.exposure_mm.range
        else float(d.exposure_mm.value),
        exposure_min_mm=emin,
        exposure_max_mm=emax,
        v_per_cm_low=lo,
        v_per_cm_high=hi,
        max_voltage_v=float(d.max_voltage_v.value),
        max_current_a=float(d.max_current_a.value),
        pulses=int(d.pulses.value),
        pulse_width_us=float(d.pulse_width_us.value),
        diameter_mm=float(d.probe_diameter_mm.value),
        threshold_v_per_cm=threshold_v_per_cm,
        spacing_device_max_mm=s_device,
    )


def energised_pairs(
    points: np.ndarray, rule_max_mm: float, pair_max_mm: float | None = None
) -> list[tuple[int, int]]:
    """Probe pairs of a layout that are energised (index pairs, shortest first): every pair
    at most `rule_max_mm` apart (the spacing rule's limit at the generator's voltage); with
    `pair_max_mm` above it also the longer pairs up to `pair_max_mm` (the device's maximum
    spacing) that cross an open cell, i.e. that pass no other probe closer than a quarter
    of their length (the diagonals of a square cell, not the diagonal of a square through
    its central probe)."""
    if pair_max_mm is None or pair_max_mm <= rule_max_mm:
        return neighbour_pairs(points, rule_max_mm)
    from hepablate.placement.geometry import segments_distance

    pts = np.asarray(points, float)
    out = []
    for i, j in neighbour_pairs(pts, pair_max_mm):
        dij = float(np.linalg.norm(pts[i] - pts[j]))
        if dij > rule_max_mm * 1.01:
            others = [k for k in range(len(pts)) if k not in (i, j)]
            if others and float(segments_distance(pts[others], [(pts[i], pts[j])]).min()) < (
                0.25 * dij
            ):
                continue
        out.append((i, j))
    return out


def _pair_segments(
    n: int, spacing_mm: float, max_spacing_mm: float, pair_max_mm: float | None = None
) -> list[tuple[int, int]]:
    pts = Layout2D(n, spacing_mm, 0.0, (0.0, 0.0)).points()
    return energised_pairs(pts, max_spacing_mm, pair_max_mm)


def _fit_layout(
    pts: np.ndarray,
    n: int,
    s: float,
    rot: float,
    max_spacing_mm: float,
    tumour_pts: np.ndarray | None = None,
    tumour_weight: float = 1.0,
    pair_max_mm: float | None = None,
) -> tuple[float, Layout2D]:
    """Place an (n, s, rot) layout over the projected region points `pts` (2D, mm): centre on
    their bounding box in the layout frame, refined by a short pattern search. Returns the
    largest distance of a point from the nearest energised pair (segment between the two
    probes; each pair's zone is a band around it) and the layout.

    With `tumour_pts` and `tumour_weight` > 1 the tumour's own points count `tumour_weight`
    times their distance: the tumour must lie deeper inside the pair bands than the margin
    (a pair's field is weakest at the middle of a layout cell, which is where a small tumour
    with a wide margin ends up when only the region's outline is fitted)."""
    from hepablate.placement.geometry import max_segments_distance

    pairs = _pair_segments(n, s, max_spacing_mm, pair_max_mm)
    if not pairs:
        return np.inf, Layout2D(n, s, rot, (0.0, 0.0))
    c, sn = np.cos(rot), np.sin(rot)
    rmat = np.array([[c, -sn], [sn, c]])
    local = pts @ rmat
    tum_local = None
    if tumour_pts is not None and len(tumour_pts) and tumour_weight > 1.0 + 1e-9:
        tum_local = np.asarray(tumour_pts, float) @ rmat
    ctr = 0.5 * (local.min(axis=0) + local.max(axis=0))
    base = Layout2D(n, s, 0.0, (0.0, 0.0)).points()

    def cost(centre_local: np.ndarray) -> float:
        q = base + centre_local
        segs = [(q[i], q[j]) for i, j in pairs]
        val = max_segments_distance(local, segs)
        if tum_local is not None:
            val = max(val, tumour_weight * max_segments_distance(tum_local, segs))
        return val

    best = cost(ctr)
    if tum_local is not None:
        # The weighted cost is flat while the middle of a cell covers the tumour: also start
        # from the placements that put the middle of each energised pair on the tumour.
        tc = tum_local.mean(axis=0)
        for i, j in pairs:
            cand = tc - 0.5 * (base[i] + base[j])
            val = cost(cand)
            if val < best - 1e-6:
                best, ctr = val, cand
    step = 1.0
    while step >= 0.5:
        improved = False
        for dc in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
            cand = ctr + np.asarray(dc)
            val = cost(cand)
            if val < best - 1e-6:
                best, ctr, improved = val, cand, True
        if not improved:
            step /= 2
    centre = rmat @ ctr
    return best, Layout2D(n, s, rot, (float(centre[0]), float(centre[1])))


def _layout_area(lay: Layout2D, reach: float) -> float:
    """Area (mm^2) of the layout polygon grown by `reach`: a proxy for the zone's size."""
    from hepablate.placement.geometry import template_hull_order

    pts = lay.points()
    if len(pts) == 2:
        return 2 * reach * lay.spacing_mm + math.pi * reach**2
    h = pts[template_hull_order(lay.n)]
    x, y = h[:, 0], h[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    perim = float(np.linalg.norm(h - np.roll(h, -1, axis=0), axis=1).sum())
    return area + perim * reach + math.pi * reach**2


#: Most repositioning placements the region may be split into (along its principal axis in
#: the plane across the needles); each may need pull-back cycles as well (`max_cycles` in all).
MAX_SPLITS = 3

#: Zone reach estimate (fraction of the spacing) for targets no single placement covers:
#: their pairs run at the generator limit, where the engine's nonlinear zone reaches 0.47 to
#: 0.5 x spacing beyond the outer pairs (2 x 3 and square layouts at 17 to 20 mm and 3000 V,
#: homogeneous liver, 1 mm grid).
LARGE_TARGET_REACH = 0.5

#: Zone reach estimates tried, in turn, when no layout of a large target fits the search's
#: estimate: the engine then decides how much is covered.
RELAXED_REACH_FACTORS = (0.55, 0.6, 0.7)

#: Uncovered target within this distance (mm, voxel centre to structure voxel centre) of a
#: vessel, duct or other no-go structure is reported as lying next to it.
NEAR_STRUCTURE_MM = 5.0


@dataclass
class ShortfallGroup:
    """Uncovered target voxels grouped by the nearest no-go structure (or none nearby)."""

    structure: str | None
    """Structure key (e.g. 'portal_vein'); None: farther than NEAR_STRUCTURE_MM from any."""
    volume_ml: float
    tumour_ml: float
    max_distance_mm: float
    field_min_v_per_cm: float
    field_max_v_per_cm: float


def shortfall_groups(
    region: np.ndarray,
    zone: np.ndarray,
    field_max_v_per_cm: np.ndarray,
    structures: dict[str, np.ndarray],
    target_key: str,
    spacing_mm: tuple[float, float, float],
    near_mm: float = NEAR_STRUCTURE_MM,
) -> list[ShortfallGroup]:
    """Where the target is left below threshold: per nearby no-go structure (vessels, ducts,
    gallbladder, ...: `anatomy.vocabulary.NO_GO`), then the rest; largest first."""
    from scipy import ndimage

    from hepablate.anatomy.vocabulary import NO_GO, base_name

    unc = np.asarray(region, bool) & ~np.asarray(zone, bool)
    if not unc.any():
        return []
    vox_ml = float(np.prod(spacing_mm)) / 1000.0
    labels = np.zeros(unc.shape, dtype=np.int16)
    names: list[str] = []
    for key, m in structures.items():
        if key == target_key or base_name(key) not in NO_GO or not np.any(m):
            continue
        names.append(key)
        labels[np.asarray(m, bool) & (labels == 0)] = len(names)
    dist = np.full(unc.shape, np.inf)
    nearest = np.zeros(unc.shape, dtype=np.int16)
    if names:
        d, idx = ndimage.distance_transform_edt(
            labels == 0, sampling=tuple(reversed(spacing_mm)), return_indices=True
        )
        dist, nearest = d, labels[tuple(idx)]
    tumour = np.asarray(structures[target_key], bool)
    fmax = np.asarray(field_max_v_per_cm, float)

    def group(name: str | None, sel: np.ndarray, dist_mm: float) -> ShortfallGroup:
        return ShortfallGroup(
            name,
            float(sel.sum()) * vox_ml,
            float((sel & tumour).sum()) * vox_ml,
            dist_mm,
            float(fmax[sel].min()),
            float(fmax[sel].max()),
        )

    out = []
    near = unc & (dist <= near_mm + 1e-6)
    for k, name in enumerate(names, start=1):
        sel = near & (nearest == k)
        if sel.any():
            out.append(group(name, sel, float(dist[sel].max())))
    rest = unc & ~near
    out.sort(key=lambda g: -g.volume_ml)
    if rest.any():
        finite = np.isfinite(dist[rest]).any()
        out.append(group(None, rest, float(dist[rest].min()) if finite else float("inf")))
    return out


def describe_shortfall(
    groups: list[ShortfallGroup], threshold_v_per_cm: float, safety_mm: float
) -> str:
    """One line saying where and why the target stays below threshold, e.g. 'below the
    600 V/cm threshold: 0.31 ml within 2.8 mm of portal_vein (field 452-598 V/cm; blood
    conducts better than liver and shunts the current past it; ...)'."""
    from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name

    parts = []
    for g in groups:
        fld = f"field {g.field_min_v_per_cm:.0f}-{g.field_max_v_per_cm:.0f} V/cm"
        tum = f", {g.tumour_ml:.2f} ml of it tumour" if g.tumour_ml > 0 else ""
        if g.structure is None:
            parts.append(f"{g.volume_ml:.2f} ml away from vessels and ducts ({fld}{tum})")
            continue
        b = base_name(g.structure)
        if b in VESSELS:
            why = "blood conducts better than liver and shunts the current past it"
        elif b in BILE_DUCTS or b == "gallbladder":
            why = "bile conducts better than liver and shunts the current past it"
        else:
            why = "next to a structure the probes must avoid"
        parts.append(
            f"{g.volume_ml:.2f} ml within {g.max_distance_mm:.1f} mm of {g.structure} "
            f"({fld}{tum}; {why}; probe paths stay {safety_mm:g} mm from it)"
        )
    return (
        f"below the {threshold_v_per_cm:.0f} V/cm threshold: " + "; ".join(parts) if parts else ""
    )


# ---- the planner ---------------------------------------------------------------------------


class IrePlanner:
    """Plans one case on one engine problem (see the module docstring)."""

    def __init__(
        self,
        case: Case,
        engine: IreEngine,
        limits: Limits,
        defaults: PlanningDefaults,
        opts: IrePlanOptions,
        progress: Progress | None = None,
    ):
        self.case = case
        self.engine = engine
        self.lim = limits
        self.defaults = defaults
        self.opts = opts
        self.progress = progress or NullProgress()
        self.grid = engine.grid
        self.structures = engine.structures
        sp = self.grid.spacing_mm
        self.region = target_region(self.structures, case.target_key, case.margin_mm, sp)
        self.safety_mm = (
            opts.safety_distance_mm
            if opts.safety_distance_mm is not None
            else float(defaults.path_safety_distance_mm.value)
        )
        self.max_cycles = (
            opts.max_cycles if opts.max_cycles is not None else int(defaults.max_cycles.value)
        )
        self.paths = PathMap(case, self.safety_mm)
        self.entry = (
            EntryRegion(opts.entry.centre_lps_mm, opts.entry.radius_mm) if opts.entry else None
        )
        if self.entry is not None:
            self.paths.validate_entry_region(self.entry)
        idx = np.argwhere(self.region)
        self.region_idx = idx
        self.region_pts = self.grid.index_to_lps(idx[:, ::-1].astype(float))
        self.search_region = self.region
        if opts.robust:
            from hepablate.evaluation import dilate_mm

            err = (
                opts.placement_error_mm
                if opts.placement_error_mm is not None
                else float(defaults.placement_error_mm.value)
            )
            grown = dilate_mm(self.region, err, sp)
            grown &= self.structures.get("liver", grown) | self.region
            self.search_region = grown
        self.stats: dict[str, float] = {
            "engine_layouts_evaluated": 0,
            "nonlinear_solves": 0,
            "repairs": 0,
            "fast_choice_confirmed": 0,
        }
        self.warnings: list[PlanWarning] = []
        self.trace: list[dict] = []
        self._cycle_cache: dict[tuple, Any] = {}
        self.blocked: dict[str, int] = {}
        self._path_cache: dict[tuple, Any] = {}
        self._fit_cache: dict[tuple, tuple[float, Layout2D]] = {}
        # Whether a single placement fits the target by the zone-reach estimate (paths
        # aside): if not, the target is large (see `run`).
        self.single_placement_fits = False
        self._walls: dict[str, np.ndarray] | None = None
        # Voltage raises refused because they predicted (more) thermal damage at a vessel or
        # duct, and the plans they gave that met the coverage requirement nonetheless.
        self.thermal_refusals: list[dict] = []
        self.thermal_fallbacks: list[ConfirmedPlan] = []
        # How much deeper inside the pair bands the tumour must lie than the margin (layout
        # fit); doubled whenever a confirmed layout leaves tumour outside the zone.
        self.tumour_weight = 1.0
        # How far (fraction of the exposure) a probe whose deep end would come too close to a
        # no-go structure may be placed shallower.
        self.max_back_fraction = 0.5
        # Probe pairs at most this far apart are energised: the spacing rule's limit (20 mm
        # with the 3000 V generator); for targets no layout fits otherwise, the device's
        # (25 mm: the diagonals of a layout's cells, at 3000 V, below the 1500 V/cm rule).
        self.pair_max_mm = self.lim.spacing_max_mm

    # -- geometry --------------------------------------------------------------------------
    def _paths_ok(
        self, probes: list[Probe], pairs: list[tuple[int, int]] | None = None
    ) -> tuple[bool, str | None]:
        for p in probes:
            chk = self._check_path(np.asarray(p.tip_lps_mm), np.asarray(p.direction_lps))
            if not chk.ok:
                return self._blocked(chk.blocking or "a no-go structure")
        if pairs is not None and not self._angled_ok(probes, pairs):
            return self._blocked("angled probe spacing")
        if pairs is not None and not self._pair_spacing_ok(probes, pairs):
            return self._blocked("probe spacing")
        return True, None

    def _check_path(self, tip: np.ndarray, d: np.ndarray) -> Any:
        """`PathMap.check_path` with the entry region, remembered: the search meets the same
        needle paths again with other splits, reach estimates and pair sets."""
        key = (tuple(np.round(tip, 3)), tuple(np.round(d, 6)))
        chk = self._path_cache.get(key)
        if chk is None:
            chk = self.paths.check_path(np.asarray(tip, float), np.asarray(d, float), self.entry)
            if len(self._path_cache) > 200_000:
                self._path_cache.clear()
            self._path_cache[key] = chk
        return chk

    def _blocked(self, why: str) -> tuple[bool, str]:
        """Count what stopped a layout (for the reason of an infeasible plan)."""
        self.blocked[why] = self.blocked.get(why, 0) + 1
        return False, why

    def _pair_spacing_ok(self, probes: list[Probe], pairs: list[tuple[int, int]]) -> bool:
        """Energised pairs stay within the device's spacing range (active centres), also when
        probes next to a no-go structure were placed much shallower than their neighbours."""
        from hepablate.placement.geometry import probe_spacing_mm

        hi = self.lim.spacing_device_max_mm or self.lim.spacing_max_mm
        return all(probe_spacing_mm(probes[i], probes[j]) <= hi + 1e-6 for i, j in pairs)

    def _energised(self, points: np.ndarray) -> list[tuple[int, int]]:
        return energised_pairs(points, self.lim.spacing_max_mm, self.pair_max_mm)

    # -- angled probes (--allow-angled) ------------------------------------------------------
    def _angled_ok(self, probes: list[Probe], pairs: list[tuple[int, int]]) -> bool:
        """Every pair of needles of which one is angled keeps `min_needle_gap_mm` between
        the paths (entry to tip), and every energised pair (`pairs`, indices into `probes`)
        with an angled probe keeps its spacing along the exposure within the limits."""
        from hepablate.placement.geometry import exposure_spacing_mm, segment_distance

        dirs = [np.asarray(p.direction_lps, float) for p in probes]
        angled = [any(float(np.linalg.norm(di - dj)) > 1e-6 for dj in dirs) for di in dirs]
        if not any(angled):
            return True
        gap = float(self.defaults.min_needle_gap_mm.value)
        for i, p in enumerate(probes):
            for j in range(i):
                q = probes[j]
                if float(np.linalg.norm(dirs[i] - dirs[j])) <= 1e-6:
                    continue
                if p.entry_lps_mm is not None and q.entry_lps_mm is not None:
                    g = segment_distance(p.entry_lps_mm, p.tip_lps_mm, q.entry_lps_mm, q.tip_lps_mm)
                    if g < gap:
                        return False
        for i, j in pairs:
            if float(np.linalg.norm(dirs[i] - dirs[j])) <= 1e-6:
                continue
            lo, hi = exposure_spacing_mm(probes[i], probes[j])
            if lo < self.lim.spacing_min_mm - 1e-6 or hi > self.pair_max_mm * 1.01:
                return False
        return True

    def _angled_candidates(
        self, centre: np.ndarray, d: np.ndarray, offset: np.ndarray
    ) -> list[np.ndarray]:
        """Directions to try for a probe whose parallel path is blocked, the active centre
        kept at `centre`: with an entry region first those that bring its entry into the
        region in the layout's arrangement (converging probes sharing a window), then tilts
        of up to `max_probe_angle_deg`, smallest first (`tilted_directions`)."""
        from hepablate.placement.geometry import angle_deg, tilted_directions

        max_deg = float(self.defaults.max_probe_angle_deg.value)
        out: list[np.ndarray] = []
        if self.entry is not None:
            e = np.asarray(self.entry.centre_lps_mm, float)
            o = offset - (offset @ d) * d
            o = o / np.linalg.norm(o) if np.linalg.norm(o) > 1e-9 else o
            for rho in (0.6, 0.35, 0.8, 0.0):
                target = e + rho * self.entry.radius_mm * o
                dd = unit_dir(centre - target)
                if angle_deg(dd, d) <= max_deg + 1e-9:
                    out.append(dd)
        return out + tilted_directions(d, offset, max_deg)

    def _place_angled(
        self,
        centre: np.ndarray,
        d: np.ndarray,
        offset: np.ndarray,
        exposure: float,
        placed: list[Probe],
        partners: list[int],
        prev: Probe | None,
        tip_t: float,
    ) -> tuple[np.ndarray, np.ndarray, Any] | None:
        """An angled placement for a probe whose parallel path is blocked: its active centre
        stays where the layout puts it, its direction deviates by at most
        `max_probe_angle_deg`; the first direction (smallest deviation) whose path is clear
        and that keeps the spacing rules with the probes already placed wins. A pull-back
        cycle keeps the direction of the probe's previous cycle."""
        tries: list[tuple[np.ndarray, np.ndarray]] = []
        if prev is not None:
            dp = np.asarray(prev.direction_lps, float)
            if float(np.linalg.norm(dp - d)) > 1e-6:
                # Pulled back along its own line to this cycle's depth.
                ptip = np.asarray(prev.tip_lps_mm, float)
                back = float((ptip @ d - tip_t) / max(float(dp @ d), 1e-6))
                tries.append((ptip - back * dp, dp))
        for dd in self._angled_candidates(centre, d, offset):
            tries.append((centre + 0.5 * exposure * dd, dd))
        for tip, dd in tries:
            chk = self._check_path(tip, dd)
            if not chk.ok:
                continue
            cand = self._probe(len(placed), 1, tip, dd, exposure, chk)
            probes = [*placed, cand]
            pairs = [(j, len(placed)) for j in partners]
            if self._angled_ok(probes, pairs):
                return tip, dd, chk
        return None

    def _probe(self, i: int, cycle: int, tip, d, exposure: float, chk) -> Probe:
        return Probe(
            id=f"P{i + 1}",
            cycle=cycle,
            tip_lps_mm=tuple(round(float(x), 2) for x in tip),
            direction_lps=tuple(round(float(x), 6) for x in d),
            exposure_mm=round(float(exposure), 1),
            diameter_mm=self.lim.diameter_mm,
            entry_lps_mm=None
            if chk.entry_lps_mm is None
            else tuple(round(float(x), 2) for x in chk.entry_lps_mm),
            depth_mm=None if chk.entry_lps_mm is None else round(chk.depth_mm, 1),
        )

    def _make_probes(
        self,
        cycle: int,
        d: np.ndarray,
        lay: Layout2D,
        tip_t: float,
        exposure: float,
        u: np.ndarray,
        v: np.ndarray,
        prev: list[Probe] | None = None,
    ) -> list[Probe]:
        pts = lay.points()
        pairs = self._energised(pts)
        centre2 = pts.mean(axis=0)
        out: list[Probe] = []
        for i, (a, b) in enumerate(pts):
            tip0 = a * u + b * v + tip_t * d
            tip = tip0
            chk = self._check_path(tip, d)
            # A probe whose deep end comes too close to a no-go structure is placed shallower
            # (as done in practice next to a vessel), by up to half its exposure (more once
            # the search finds the shortfall next to such a structure).
            back = 0.0
            while (
                not chk.ok
                and chk.entry_lps_mm is not None
                and back < exposure * self.max_back_fraction
            ):
                back += 1.0
                chk = self._check_path(tip - back * d, d)
            if chk.ok:
                tip = tip - back * d
            dirn = d
            if self.opts.allow_angled:
                partners = [j for j, k in pairs if k == i] + [k for j, k in pairs if j == i]
                partners = [j for j in partners if j < i]
                probe = self._probe(i, cycle, tip, d, exposure, chk)
                if not chk.ok or not self._angled_ok([*out, probe], [(j, i) for j in partners]):
                    off = (a - centre2[0]) * u + (b - centre2[1]) * v
                    got = self._place_angled(
                        tip0 - 0.5 * exposure * d,
                        d,
                        off,
                        exposure,
                        out,
                        partners,
                        None if prev is None or i >= len(prev) else prev[i],
                        tip_t,
                    )
                    if got is not None:
                        tip, dirn, chk = got
            out.append(self._probe(i, cycle, tip, dirn, exposure, chk))
        return out

    def _axial_cycles(self, t: np.ndarray, axial_reach: float) -> list[tuple[float, float]]:
        """(tip_t, exposure) per pull-back cycle covering [t.min(), t.max()]; a pull-back moves
        the needles back by the exposure minus the overlap."""
        # Consecutive cycles overlap (planning.yaml `pullback_overlap_mm`): the zone tapers at
        # the needle ends, and abutting cycles leave a waist below threshold at the junction.
        ov = min(
            float(self.defaults.pullback_overlap_mm.value),
            0.5 * self.lim.exposure_practice_max_mm,
        )
        tmin, tmax = float(t.min()), float(t.max())
        length = max(tmax - tmin - 2 * axial_reach, self.lim.exposure_min_mm)
        m = max(1, math.ceil((length - ov) / (self.lim.exposure_practice_max_mm - ov) - 1e-9))
        exp = max((length + (m - 1) * ov) / m, self.lim.exposure_min_mm)
        tip0 = tmax - axial_reach
        return [(tip0 - k * (exp - ov), exp) for k in range(m)]

    def candidate_layouts(
        self, reach_factor: float, axial_reach: float, exclude: set[tuple]
    ) -> list[tuple[float, list[CycleLayout], tuple]]:
        """Candidate multi-cycle layouts, best first: fewest repositionings, then the smallest
        zone proxy."""
        pts = self.grid.index_to_lps(np.argwhere(self.search_region)[:, ::-1].astype(float))
        centre = pts.mean(axis=0)
        dirs = candidate_directions(
            centre, self.paths, float(self.defaults.max_tilt_deg.value), self.entry
        )[:8]
        out: list[tuple[float, list[CycleLayout], tuple]] = []
        mask_idx = np.argwhere(self.search_region)
        is_tum = self.structures[self.case.target_key][
            mask_idx[:, 0], mask_idx[:, 1], mask_idx[:, 2]
        ].astype(bool)
        for di, d in enumerate(dirs):
            u, v = perpendicular_basis(d)
            uv = np.stack([pts @ u, pts @ v], axis=1)
            t = pts @ d
            # Principal axis of the projected region (for repositioning splits).
            cov = np.cov((uv - uv.mean(axis=0)).T)
            w, vecs = np.linalg.eigh(cov)
            major = vecs[:, int(np.argmax(w))]
            coord = (uv - uv.mean(axis=0)) @ major
            added = False
            for n_split in range(1, MAX_SPLITS + 1):
                if n_split > self.max_cycles:
                    break
                edges = np.quantile(coord, np.linspace(0, 1, n_split + 1))
                sels = [
                    (coord >= edges[pi] - 1e-9) & (coord <= edges[pi + 1] + 1e-9)
                    for pi in range(n_split)
                ]
                options = [
                    self._best_layout(
                        uv[sel],
                        uv[sel & is_tum],
                        reach_factor,
                        d,
                        u,
                        v,
                        t[sel],
                        axial_reach,
                        exclude,
                        (di, n_split, pi),
                    )
                    for pi, sel in enumerate(sels)
                ]
                if not all(options):
                    continue
                # One candidate per probe count for a single placement; the best layout of
                # each part when the region is split.
                variants = range(len(options[0])) if n_split == 1 else range(1)
                for var in variants:
                    chosen = [options[0][var]] if n_split == 1 else [o[0] for o in options]
                    cycles: list[CycleLayout] = []
                    bad_cycle = False
                    for sel, (_, lay, axial) in zip(sels, chosen, strict=True):
                        part = np.zeros(self.region.shape, dtype=bool)
                        mi = mask_idx[sel]
                        part[mi[:, 0], mi[:, 1], mi[:, 2]] = True
                        prev = None
                        for tip_t, exp in axial:
                            cyc = len(cycles) + 1
                            probes = self._make_probes(cyc, d, lay, tip_t, exp, u, v, prev)
                            prev = probes
                            pairs = self._energised(lay.points())
                            if (
                                self.opts.allow_angled and not self._paths_ok(probes, pairs)[0]
                            ) or not self._pair_spacing_ok(probes, pairs):
                                bad_cycle = True
                            sub = part & self._axial_mask(d, tip_t, exp, axial_reach, axial)
                            cycles.append(CycleLayout(cyc, d, lay, tip_t, exp, probes, pairs, sub))
                    if len(cycles) > self.max_cycles:
                        self._blocked(f"more than {self.max_cycles} cycles")
                        continue
                    if bad_cycle:
                        continue
                    score = sum(c[0] for c in chosen)
                    key = (
                        di,
                        n_split,
                        tuple(
                            (c[1].n, round(float(c[1].spacing_mm), 1), round(c[1].rotation_rad, 2))
                            for c in chosen
                        ),
                        round(self.tumour_weight, 2),
                    )
                    if key not in exclude:
                        out.append((score * (1 + 0.05 * di), cycles, key))
                        added = True
                if added:
                    break  # fewer repositionings first
        # Fewest repositionings first (each adds a placement and its cycles), then the zone
        # proxy (three small layouts can have less area than two larger ones).
        out.sort(key=lambda x: (x[2][1], x[0]))
        return out

    def _axial_mask(
        self,
        d: np.ndarray,
        tip_t: float,
        exp: float,
        axial_reach: float,
        axial: list[tuple[float, float]],
    ) -> np.ndarray:
        """Region voxels assigned to the pull-back cycle whose active part ends at tip_t."""
        mask = np.zeros(self.region.shape, dtype=bool)
        idx = np.argwhere(self.search_region)
        t = self.grid.index_to_lps(idx[:, ::-1].astype(float)) @ d
        first = tip_t == max(a for a, _ in axial)
        last = tip_t == min(a for a, _ in axial)
        hi = np.inf if first else tip_t
        lo = -np.inf if last else tip_t - exp
        sel = (t <= hi) & (t > lo)
        mask[idx[sel, 0], idx[sel, 1], idx[sel, 2]] = True
        return mask

    def _best_layout(self, uv, tuv, reach_factor, d, u, v, t, axial_reach, exclude, tag):
        # Thin the projected points to a 2 mm 2D grid (keeps the fit cheap).
        cell = np.unique(np.round(uv / 2.0).astype(int), axis=0)
        pts2 = cell * 2.0
        tpts2 = np.unique(np.round(tuv / 2.0).astype(int), axis=0) * 2.0 if len(tuv) else None
        tw = self.tumour_weight
        pts_key = (pts2.tobytes(), None if tpts2 is None else tpts2.tobytes())

        def fit(n: int, s: float, rot: float) -> tuple[float, Layout2D]:
            # The search meets the same fits again in later rounds (other reach estimates,
            # the next candidate): remembered.
            key = (pts_key, n, float(s), float(rot), smax, tw, self.pair_max_mm)
            if key not in self._fit_cache:
                self._fit_cache[key] = _fit_layout(
                    pts2, n, s, rot, smax, tpts2, tw, self.pair_max_mm
                )
            return self._fit_cache[key]

        axial = self._axial_cycles(t, axial_reach)
        cov = np.cov((uv - uv.mean(axis=0)).T)
        w, vecs = np.linalg.eigh(cov)
        major = vecs[:, int(np.argmax(w))]
        rot0 = float(np.arctan2(major[1], major[0]))
        smin, smax = self.lim.spacing_min_mm, self.lim.spacing_max_mm
        per_n: list[tuple[float, Layout2D, list]] = []
        for n in range(self.lim.probes_min, self.lim.probes_max + 1):
            best = None
            unit_pts = template_2d(n, 1.0)
            dd = np.linalg.norm(unit_pts[:, None] - unit_pts[None], axis=-1)
            nearest = float(dd[~np.eye(n, dtype=bool)].min())
            # Every probe pair (e.g. the centre spokes of the 5-probe layout) respects the
            # minimum spacing.
            spacings = np.arange(max(smin, math.ceil(smin / nearest - 1e-9)), smax + 1e-9, 1.0)
            if spacings.size == 0:
                continue
            period = {2: np.pi, 3: 2 * np.pi / 3, 4: np.pi / 2, 5: np.pi / 2, 6: np.pi}[n]
            for rot in rot0 + np.linspace(0, period, 6, endpoint=False):
                # Smallest spacing that fits (the fit improves with spacing): bisection.
                lo, hi = 0, len(spacings) - 1
                fit_hi, lay_hi = fit(n, spacings[hi], rot)
                if fit_hi > reach_factor * spacings[hi]:
                    continue
                found = (spacings[hi], lay_hi)
                while lo < hi:
                    mid = (lo + hi) // 2
                    f, lay = fit(n, spacings[mid], rot)
                    if f <= reach_factor * spacings[mid]:
                        hi, found = mid, (spacings[mid], lay)
                    else:
                        lo = mid + 1
                s, lay = found
                if tag[1] == 1:
                    self.single_placement_fits = True
                key = (n, round(float(s), 1), round(lay.rotation_rad, 2), tag, round(tw, 2))
                if key in exclude:
                    continue
                area = _layout_area(lay, reach_factor * s)
                if best is not None and area >= best[0] - 1e-6:
                    continue
                probes = self._make_probes(1, d, lay, axial[0][0], axial[0][1], u, v)
                ok, _ = self._paths_ok(probes, self._energised(lay.points()))
                if ok:
                    best = (area, lay, axial)
            if best is not None:
                per_n.append(best)
        per_n.sort(key=lambda x: x[0])
        return per_n

    # -- fast model ------------------------------------------------------------------------
    def _rule_voltage(self, a: Probe, b: Probe) -> float:
        from hepablate.placement.geometry import probe_spacing_mm

        return self.lim.v_per_cm_low * probe_spacing_mm(a, b) / 10.0

    def fast_voltages(
        self, cycles: list[CycleLayout], coverage_goal: float
    ) -> tuple[list[IrePair], float]:
        """Pairs with voltages from the constant model: per cycle, the common scale of the
        spacing-rule voltages that brings the cycle's region part to `coverage_goal`, at most
        the scale that brings the first pair to the generator limit. The pairs' constant-model
        fields on the target region are kept for the repair (`_bordering_pairs`).
        Returns the pairs and the largest scale needed (inf if the limits cannot reach it)."""
        from hepablate.placement.geometry import probe_spacing_mm

        pairs: list[IrePair] = []
        worst = 0.0
        thr = self.lim.threshold_v_per_cm
        self._pair_fields: dict[tuple[int, str, str], tuple[float, np.ndarray]] = {}
        for cyc in cycles:
            basis = self.engine.unit_basis(cyc.probes)
            self.stats["engine_layouts_evaluated"] += 1
            rule = []
            part = cyc.part if cyc.part.any() else self.region
            tum = part & self.structures[self.case.target_key]
            sel = part | tum
            fields = []  # per pair: |E| at the rule voltage on the part's voxels
            for i, j in cyc.pairs:
                a, b = cyc.probes[i], cyc.probes[j]
                v0 = self._rule_voltage(a, b)
                e = self.engine.pair_field_constant(basis, a.id, b.id, v0)
                rule.append((a, b, v0))
                fields.append(np.asarray(e)[sel])
                self._pair_fields[(cyc.cycle, a.id, b.id)] = (
                    v0,
                    np.asarray(e, np.float32)[self.region],
                )
            f = np.stack(fields) if fields else np.zeros((0, int(sel.sum())), np.float32)
            in_part, in_tum = part[sel], tum[sel]
            emax = f.max(axis=0) if len(f) else np.zeros(int(sel.sum()), np.float32)
            need = thr / np.maximum(emax[in_part], 1e-6)
            alpha = float(np.quantile(need, coverage_goal)) if need.size else 1.0
            if in_tum.any():
                # The tumour itself must be covered entirely, not just 99 % of the region.
                alpha = max(alpha, float((thr / np.maximum(emax[in_tum], 1e-6)).max()))
            alpha = max(alpha, 1.0)
            caps = np.array([self.lim.max_voltage_v / v0 for _, _, v0 in rule])
            # Pairs wider than the rule allows at the generator limit (cell diagonals) get at
            # most the limit; they do not cap the others.
            in_rule = caps[caps >= 1.0 - 1e-9]
            common = (
                min(alpha, float((in_rule if len(in_rule) else caps).min())) if len(caps) else alpha
            )
            scales = np.full(len(caps), common)
            worst = max(worst, alpha if common >= alpha - 1e-9 else np.inf)
            for (a, b, v0), sc in zip(rule, scales, strict=True):
                pairs.append(
                    IrePair(
                        cycle=cyc.cycle,
                        anode=a.id,
                        cathode=b.id,
                        voltage_v=round(min(float(sc) * v0, self.lim.max_voltage_v), 0),
                        pulses=self.lim.pulses,
                        pulse_width_us=self.lim.pulse_width_us,
                        spacing_mm=round(probe_spacing_mm(a, b), 1),
                    )
                )
        return pairs, worst

    # -- confirmation ----------------------------------------------------------------------
    def confirm(self, probes: list[Probe], pairs: list[IrePair]) -> ConfirmedPlan:
        zone = np.zeros(self.region.shape, dtype=bool)
        fmax = np.zeros(self.region.shape, dtype=np.float32)
        tmax = None
        omega = None
        results = []
        cycles = sorted({p.cycle for p in probes})
        new_pairs: list[IrePair] = []
        for c in cycles:
            cp = [p for p in probes if p.cycle == c]
            cpairs = [p for p in pairs if p.cycle == c]
            res = self._simulate_cycle(cp, cpairs)
            results.append(res)
            zone |= np.asarray(res.zone, dtype=bool)
            fmax = np.maximum(fmax, np.asarray(res.field_max_v_per_cm, dtype=np.float32))
            t = getattr(res, "temperature_max_c", None)
            if t is not None:
                tmax = np.asarray(t) if tmax is None else np.maximum(tmax, t)
            om = getattr(res, "thermal_omega", None)
            if om is not None:
                omega = np.asarray(om) if omega is None else np.maximum(omega, om)
            by = {(pr.anode, pr.cathode): pr for pr in res.pair_results}
            for p in cpairs:
                pr = by.get((p.anode, p.cathode))
                cur = None if pr is None else round(float(pr.current_a), 2)
                new_pairs.append(p.model_copy(update={"predicted_current_a": cur}))
        m = evaluate_zone(
            zone,
            self.structures,
            self.case.target_key,
            self.case.margin_mm,
            self.grid.spacing_mm,
            region=self.region,
        )
        return ConfirmedPlan(
            probes,
            new_pairs,
            zone,
            fmax,
            m,
            self.region,
            results,
            tmax,
            omega,
            *self._thermal_damage(omega),
        )

    def _simulate_cycle(self, probes: list[Probe], pairs: list[IrePair]) -> Any:
        """The engine's nonlinear solve of one cycle; a cycle whose probes and pulse trains did
        not change since a recent confirmation (a repair that raises pairs of other cycles, or
        splits their trains) is not solved again: cycles are independent in the engine."""
        key = (
            tuple(p.model_dump_json() for p in probes),
            tuple(p.model_dump_json(exclude={"predicted_current_a"}) for p in pairs),
        )
        res = self._cycle_cache.get(key)
        if res is not None:
            self._cycle_cache[key] = self._cycle_cache.pop(key)  # most recently used last
            return res
        res = self.engine.simulate(probes, pairs, progress=None)
        self.stats["nonlinear_solves"] += 1
        self._cycle_cache[key] = res
        while len(self._cycle_cache) > self.max_cycles + 2:
            self._cycle_cache.pop(next(iter(self._cycle_cache)))
        return res

    # -- thermal damage at vessels and ducts -----------------------------------------------
    def _thermal_hits(self, omega: np.ndarray | None) -> dict[str, float]:
        return self._thermal_damage(omega)[0]

    def _thermal_damage(self, omega: np.ndarray | None) -> tuple[dict[str, float], float]:
        """ml of each vessel's and bile duct's lumen plus one-voxel wall where the predicted
        Arrhenius Omega reaches the planning threshold (the engine's `thermal_damage_vessel`
        and `thermal_damage_bile_duct` rule), and the largest Omega there."""
        if omega is None:
            return {}, 0.0
        omega = np.asarray(omega)
        dmg = omega >= float(self.defaults.thermal_damage_omega.value)
        if self._walls is None:
            from scipy import ndimage

            from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name

            self._walls = {
                k: ndimage.binary_dilation(np.asarray(m, bool), iterations=1)
                for k, m in self.structures.items()
                if (base_name(k) in VESSELS or base_name(k) in BILE_DUCTS) and np.any(m)
            }
        vox = self.grid.voxel_volume_ml
        out = {}
        peak = 0.0
        for k, wall in self._walls.items():
            peak = max(peak, float(omega[wall].max()))
            n = int(np.count_nonzero(dmg & wall))
            if n:
                out[k] = n * vox
        return out, peak

    def _thermal_worse(self, new: ConfirmedPlan, old: ConfirmedPlan) -> list[str]:
        """Vessels and ducts where `new` predicts more thermal damage than `old` (any voxel)."""
        tol = 0.5 * self.grid.voxel_volume_ml
        return sorted(
            k for k, v in new.thermal_hits.items() if v > old.thermal_hits.get(k, 0.0) + tol
        )

    @staticmethod
    def _split_trains(pairs: list[IrePair], cycles: set[int]) -> list[IrePair]:
        """The same protocol with each pair of `cycles` delivered as two trains of half the
        pulses: all first halves of a cycle, then all second halves, so that every probe
        cools while the other pairs fire. Pairs already split stay as they are."""
        out: list[IrePair] = []
        for c in sorted({p.cycle for p in pairs}):
            cp = [p for p in pairs if p.cycle == c]
            keys = [(p.anode, p.cathode) for p in cp]
            if c not in cycles or len(set(keys)) < len(keys):
                out += cp
                continue
            first = [p.model_copy(update={"pulses": (p.pulses + 1) // 2}) for p in cp]
            second = [p.model_copy(update={"pulses": p.pulses // 2}) for p in cp if p.pulses > 1]
            out += first + second
        return out

    def _rank(self, conf: ConfirmedPlan, required: float) -> tuple:
        """Higher is better: accepted without predicted thermal damage at a vessel or duct,
        then accepted, then tumour and target coverage, then less thermal damage."""
        ok = self._covered(conf, required) and not self._over_limit(conf.pairs)
        return (
            ok and not conf.thermal_hits,
            ok,
            conf.metrics.tumour_coverage,
            conf.metrics.target_coverage,
            -sum(conf.thermal_hits.values()),
        )

    def _covered(self, conf: ConfirmedPlan, required: float) -> bool:
        """Acceptance: `required` of tumour + margin and the whole tumour in the zone."""
        return (
            conf.metrics.target_coverage >= required and conf.metrics.tumour_coverage >= 1.0 - 1e-9
        )

    def _shortfall(self, conf: ConfirmedPlan) -> list[ShortfallGroup]:
        return shortfall_groups(
            conf.region,
            conf.zone,
            conf.field_max_v_per_cm,
            self.structures,
            self.case.target_key,
            self.grid.spacing_mm,
        )

    def _over_limit(self, pairs: list[IrePair]) -> list[int]:
        return [
            i
            for i, p in enumerate(pairs)
            if p.predicted_current_a is not None and p.predicted_current_a > self.lim.max_current_a
        ]

    def _bordering_pairs(self, conf: ConfirmedPlan, caps: list[float]) -> set[int] | None:
        """Indices of the pairs that border the confirmed plan's shortfall: for each target
        voxel left below threshold, the pair with headroom (`caps`: its highest allowed
        voltage) whose constant-model field there at the raised voltage is strongest, if
        that beats the voxel's present constant-model field. None if the fields of these
        pairs are not known (then every pair counts)."""
        fields = getattr(self, "_pair_fields", {})
        keys = [(p.cycle, p.anode, p.cathode) for p in conf.pairs]
        if not keys or any(k not in fields for k in keys):
            return None
        unc = (self.region & ~conf.zone)[self.region]
        if not unc.any():
            return set()
        now = np.stack(
            [
                fields[k][1][unc] * (p.voltage_v / fields[k][0])
                for k, p in zip(keys, conf.pairs, strict=True)
            ]
        )
        up = np.stack(
            [fields[k][1][unc] * (c / fields[k][0]) for k, c in zip(keys, caps, strict=True)]
        )
        head = np.array([c > p.voltage_v + 0.5 for c, p in zip(caps, conf.pairs, strict=True)])
        if not head.any():
            return set()
        potential = np.where(head[:, None], up, -1.0)
        best = np.argmax(potential, axis=0)
        gain = potential[best, np.arange(unc.sum())] > now.max(axis=0)
        return {int(i) for i in np.unique(best[gain])}

    def _repair(self, conf: ConfirmedPlan, required: float) -> ConfirmedPlan:
        """Turn down pairs over the current limit; if coverage is short, raise the voltage of
        the pairs that border the shortfall (12 % a step, within the voltage and current
        limits): raising every pair would add current and heating where nothing is short.

        Predicted thermal damage at a vessel or bile duct is a constraint: a raise that
        predicts more of it than the plan before is first tried with the raised cycles' trains
        split in two (`_thermal_relief`); if that does not help, the raise is refused and the
        plan before it returned (the search goes on with other layouts). A refused plan that
        met the coverage requirement is kept in `thermal_fallbacks`: it is chosen only if no
        layout meets it without the damage."""
        for _ in range(3):
            over = self._over_limit(conf.pairs)
            short = not self._covered(conf, required)
            if not over and not short:
                return conf
            caps = []
            for p in conf.pairs:
                cap_i = self.lim.max_voltage_v
                if p.predicted_current_a:
                    cap_i = min(
                        cap_i,
                        p.voltage_v * 0.9 * self.lim.max_current_a / float(p.predicted_current_a),
                    )
                caps.append(min(p.voltage_v * 1.12, cap_i))
            border = self._bordering_pairs(conf, caps) if short and not over else None
            # A pair delivered as two trains is raised as one.
            border_keys = (
                None
                if border is None
                else {
                    (conf.pairs[i].cycle, conf.pairs[i].anode, conf.pairs[i].cathode)
                    for i in border
                }
            )
            pairs = []
            changed = False
            raised: list[tuple[IrePair, float]] = []
            for i, p in enumerate(conf.pairs):
                v = p.voltage_v
                if i in over:
                    # Current grows faster than linearly with voltage (conductivity rises).
                    v = v * 0.92 * self.lim.max_current_a / float(p.predicted_current_a or 1.0)
                elif (
                    short
                    and not over
                    and (border_keys is None or (p.cycle, p.anode, p.cathode) in border_keys)
                ):
                    v = max(v, caps[i])
                v = float(round(v, 0))
                changed |= abs(v - p.voltage_v) >= 1.0
                if v > p.voltage_v + 0.5:
                    raised.append((p, v))
                pairs.append(p.model_copy(update={"voltage_v": v, "predicted_current_a": None}))
            if not changed:
                return conf
            self.stats["repairs"] += 1
            if border is not None:
                self.stats["pair_boosts"] = self.stats.get("pair_boosts", 0) + len(border)
            fixed = self.confirm(conf.probes, pairs)
            if raised and self._thermal_worse(fixed, conf):
                fixed = self._thermal_relief(fixed, {p.cycle for p, _ in raised})
                worse = self._thermal_worse(fixed, conf)
                if worse:
                    self.stats["raises_refused_thermal"] = (
                        self.stats.get("raises_refused_thermal", 0) + 1
                    )
                    self.thermal_refusals.append(
                        {
                            "probes": self._probes_key(conf.probes),
                            "structures": worse,
                            "raised": [
                                (p.cycle, p.anode, p.cathode, p.voltage_v, v, p.spacing_mm)
                                for p, v in raised
                            ],
                            "coverage_kept": conf.metrics.target_coverage,
                            "coverage_refused": fixed.metrics.target_coverage,
                            "hits": dict(fixed.thermal_hits),
                        }
                    )
                    if self._covered(fixed, required) and not self._over_limit(fixed.pairs):
                        self.thermal_fallbacks.append(fixed)
                    return conf
            conf = fixed
        return conf

    @staticmethod
    def _probes_key(probes: list[Probe]) -> tuple:
        return tuple((p.cycle, p.id, tuple(p.tip_lps_mm)) for p in probes)

    def _thermal_relief(self, conf: ConfirmedPlan, cycles: set[int] | None = None) -> ConfirmedPlan:
        """If `conf` predicts thermal damage at a vessel or duct, the same plan with the
        trains of the cycles concerned (of `cycles`, if given) split in two (`_split_trains`):
        the zone and the currents do not change (they do not depend on the number of pulses),
        the probes cool between the halves. Kept if it predicts less damage."""
        if not conf.thermal_hits:
            return conf
        order = sorted({p.cycle for p in conf.probes})
        hot = {
            c
            for c, res in zip(order, conf.results, strict=True)
            if self._thermal_hits(getattr(res, "thermal_omega", None))
            and (cycles is None or c in cycles)
        }
        pairs = self._split_trains(conf.pairs, hot)
        if len(pairs) == len(conf.pairs):
            return conf  # nothing left to split
        self.stats["split_train_trials"] = self.stats.get("split_train_trials", 0) + 1
        alt = self.confirm(conf.probes, pairs)
        tol = 0.5 * self.grid.voxel_volume_ml
        if not self._thermal_worse(alt, conf) and (
            sum(alt.thermal_hits.values()) < sum(conf.thermal_hits.values()) - tol
            or alt.thermal_peak < conf.thermal_peak
        ):
            return alt
        return conf

    # -- main ------------------------------------------------------------------------------
    def run(self) -> IrePlanOutcome:
        required = float(self.defaults.coverage_required.value)
        search_goal = 1.0 - 0.5 * (1.0 - required)  # aim a little above the requirement
        # Zone half-width around a pair as a fraction of its spacing: 0.3 from the 2D
        # line-charge field at 1500 V/cm and 600 V/cm; the nonlinear zone is wider, so the
        # search starts at 0.45 and tightens whenever the engine says a layout falls short.
        reach_factor = 0.45
        # How far the zone reaches beyond the ends of the active parts (mm); negative values
        # extend the exposure beyond the region (the zone tapers at the needle ends).
        axial_reach = 0.0
        exclude: set[tuple] = set()
        best: ConfirmedPlan | None = None
        attempts = 0
        max_attempts = 4
        self.progress.start("planning IRE", total=max_attempts)
        first_choice_checked = False
        pending: list = []
        cands = self.candidate_layouts(reach_factor, axial_reach, exclude)
        wide_mm = float(self.lim.spacing_device_max_mm or self.lim.spacing_max_mm)
        large = not self.single_placement_fits
        if large:
            # No single placement covers the target: its voltages will go to the generator
            # limit, where the engine's zone reaches about half the spacing beyond the outer
            # pairs (LARGE_TARGET_REACH), and the middles of 17 to 20 mm cells stay below
            # threshold unless the cells' diagonals are energised too (up to the device's
            # maximum spacing). Fewest repositionings first (`candidate_layouts`).
            self.pair_max_mm = max(self.pair_max_mm, wide_mm)
            reach_factor = max(reach_factor, LARGE_TARGET_REACH)
            self.stats["large_target"] = 1
            if self.pair_max_mm > self.lim.spacing_max_mm + 1e-9:
                self.stats["pair_max_spacing_mm"] = self.pair_max_mm
            cands = self.candidate_layouts(reach_factor, axial_reach, exclude)
        while attempts < max_attempts:
            if attempts > 0:
                cands = self.candidate_layouts(reach_factor, axial_reach, exclude)
            if not cands and self.tumour_weight > 1.0:
                # No layout puts pairs through a tumour this large: plain fit at this reach.
                weight, self.tumour_weight = self.tumour_weight, 1.0
                cands = self.candidate_layouts(reach_factor, axial_reach, exclude)
                self.tumour_weight = weight
            if not cands:
                # Nothing fits the tighter reach estimate: fall back on the next-best layouts
                # of the previous round.
                cands = [c for c in pending if c[2] not in exclude]
            if not cands and large:
                # A target larger than the reach estimate lets any placement (within the
                # probe, spacing and cycle limits) cover: the estimate is only a heuristic
                # (the nonlinear zone reaches further at higher voltages), so try wider
                # reaches and let the engine decide how much is covered.
                for rf in RELAXED_REACH_FACTORS:
                    if rf <= reach_factor + 1e-9:
                        continue
                    cands = self.candidate_layouts(rf, axial_reach, exclude)
                    if not cands and self.tumour_weight > 1.0:
                        weight, self.tumour_weight = self.tumour_weight, 1.0
                        cands = self.candidate_layouts(rf, axial_reach, exclude)
                        self.tumour_weight = weight
                    if cands:
                        reach_factor = rf
                        self.stats["reach_factor_relaxed"] = rf
                        break
            if not cands:
                break
            # Untried layouts of every round stay available as fall-backs.
            pending = cands[1:] + pending
            attempts += 1
            self.progress.advance()
            _, cycles, key = cands[0]
            exclude.add(key)
            pairs, alpha = self.fast_voltages(cycles, search_goal)
            probes = [p for c in cycles for p in c.probes]
            conf = self._thermal_relief(self.confirm(probes, pairs))
            ok = self._covered(conf, required) and not self._over_limit(conf.pairs)
            if not first_choice_checked:
                self.stats["fast_choice_confirmed"] = float(ok and np.isfinite(alpha))
                first_choice_checked = True
            trace = {
                "layouts": [(c.layout.n, float(c.layout.spacing_mm)) for c in cycles],
                "reach_factor": round(reach_factor, 3),
                "tumour_weight": self.tumour_weight,
                "alpha": round(alpha, 3),
                "fast_coverage_ok": bool(ok),
                "coverage": round(conf.metrics.target_coverage, 4),
                "tumour_coverage": round(conf.metrics.tumour_coverage, 4),
            }
            if not ok:
                fixed = self._repair(conf, required)
                # Keep raised voltages only where they pay: a repair that does not improve
                # the plan would only add current and heating.
                if self._over_limit(conf.pairs) or self._rank(fixed, required) > self._rank(
                    conf, required
                ):
                    conf = fixed
                trace["repaired_coverage"] = round(conf.metrics.target_coverage, 4)
                trace["repaired_tumour_coverage"] = round(conf.metrics.tumour_coverage, 4)
            trace["thermal_damage_ml"] = {k: round(v, 3) for k, v in conf.thermal_hits.items()}
            self.trace.append(trace)
            for c in [conf, *self.thermal_fallbacks]:
                if best is None or self._rank(c, required) > self._rank(best, required):
                    best = c
            if self._rank(best, required)[0]:
                break  # covered, within the current limit, no thermal damage at vessels/ducts
            reach_factor *= 0.8
            axial_reach = max(axial_reach - 2.0, -4.0)
            if conf.metrics.tumour_coverage < 1.0 - 1e-9:
                # The tumour sat in a weak spot of the layout (typically the middle of a cell):
                # ask the next layouts to put energised pairs through it.
                self.tumour_weight = min(2.0 * self.tumour_weight, 4.0)
            near = sum(g.volume_ml for g in self._shortfall(conf) if g.structure is not None)
            if (
                conf.metrics.tumour_coverage < 1.0 - 1e-9
                or near >= 0.5 * conf.metrics.uncovered_target_ml
            ):
                # Shortfall in the tumour or next to a no-go structure: let probes whose deep
                # end would come too close to it stay in the layout, placed as much shallower
                # as needed (e.g. a central probe in a tumour that abuts a vessel beyond the
                # tips), instead of dropping such layouts.
                self.max_back_fraction = 0.9
        self.progress.finish()
        self.stats["search_attempts"] = attempts
        if self.opts.allow_angled and best is not None:
            n_ang, worst = 0, 0.0
            for c in sorted({p.cycle for p in best.probes}):
                ds = [unit_dir(p.direction_lps) for p in best.probes if p.cycle == c]
                mean = unit_dir(np.sum(ds, axis=0))
                ang = [float(np.degrees(np.arccos(np.clip(x @ mean, -1, 1)))) for x in ds]
                spread = max(
                    float(np.degrees(np.arccos(np.clip(x @ y, -1, 1)))) for x in ds for y in ds
                )
                n_ang += sum(a > 0.05 for a in ang) if spread > 0.05 else 0
                worst = max(worst, spread)
            self.stats["angled_probes"] = n_ang
            self.stats["max_angle_between_probes_deg"] = round(worst, 1)
        if best is None:
            reason = self._no_layout_reason()
            return IrePlanOutcome(
                "infeasible",
                reason,
                self.grid,
                self.structures,
                self.region,
                None,
                [PlanWarning(level="error", code="no_layout", message=reason)],
                None,
                self.lim,
                self.stats,
            )
        warnings = list(self.warnings)
        warnings += check_criteria(best.metrics, Criteria.from_defaults(self.defaults))
        warnings += self._engine_warnings(best)
        warnings += self._protocol_warnings(best)
        warnings += self._thermal_plan_warnings(best, attempts)
        status, reason = "feasible", ""
        over = self._over_limit(best.pairs)
        if not self._covered(best, required) or over:
            status = "infeasible"
            parts = []
            if not self._covered(best, required):
                groups = self._shortfall(best)
                where = describe_shortfall(groups, self.lim.threshold_v_per_cm, self.safety_mm)
                parts.append(
                    f"best plan covers {100 * best.metrics.target_coverage:.1f} % of tumour plus "
                    f"margin and {100 * best.metrics.tumour_coverage:.1f} % of the tumour "
                    f"({best.metrics.uncovered_target_ml:.2f} ml left uncovered; "
                    f"{100 * required:.0f} % required) within the device limits "
                    f"({self.lim.probes_max} probes, {self._spacing_text()}, "
                    f"{self.lim.max_voltage_v:g} V, {self.lim.max_current_a:g} A, "
                    f"{self.max_cycles} cycles; the plan uses "
                    f"{len({p.cycle for p in best.probes})} cycle(s) of "
                    f"{len({p.id for p in best.probes})} probes)" + (f"; {where}" if where else "")
                )
                keys = {(p.cycle, p.anode, p.cathode): p for p in best.pairs}
                at_cap = sum(p.voltage_v >= self.lim.max_voltage_v - 1 for p in keys.values())
                if at_cap:
                    parts.append(
                        f"{at_cap} of {len(keys)} pairs already at the "
                        f"{self.lim.max_voltage_v:g} V generator limit"
                    )
                refused = [
                    r for r in self.thermal_refusals if r["probes"] == self._probes_key(best.probes)
                ]
                if refused:
                    parts.append(
                        "voltages not raised further because that predicts thermal damage at "
                        + ", ".join(sorted({k for r in refused for k in r["structures"]}))
                        + f" (it would cover up to "
                        f"{100 * max(r['coverage_refused'] for r in refused):.1f} %)"
                    )
                for g in groups:
                    if g.structure is not None:
                        warnings.append(
                            PlanWarning(
                                level="warning",
                                code="shortfall_near_structure",
                                message=describe_shortfall(
                                    [g], self.lim.threshold_v_per_cm, self.safety_mm
                                ),
                            )
                        )
            if over:
                parts.append(
                    f"{len(over)} pair(s) exceed the {self.lim.max_current_a:g} A current limit"
                )
            reason = "; ".join(parts)
        return IrePlanOutcome(
            status,
            reason,
            self.grid,
            self.structures,
            self.region,
            best,
            warnings,
            None,
            self.lim,
            self.stats,
        )

    def _spacing_text(self) -> str:
        """The layout spacing range, and why its top is below the device's."""
        lim = self.lim
        txt = f"spacing {lim.spacing_min_mm:g}-{lim.spacing_max_mm:g} mm"
        dev = lim.spacing_device_max_mm
        if dev is not None and dev > lim.spacing_max_mm + 1e-9:
            txt += (
                f" (the device allows {dev:g} mm, but {lim.max_voltage_v:g} V give the "
                f"{lim.v_per_cm_low:g} V/cm rule only up to {lim.spacing_max_mm:g} mm"
                + (
                    f"; cell diagonals up to {dev:g} mm energised"
                    if self.pair_max_mm > lim.spacing_max_mm + 1e-9
                    else ""
                )
                + ")"
            )
        return txt

    def _no_layout_reason(self) -> str:
        vox = self.grid.voxel_volume_ml
        ext = self.region_pts.max(axis=0) - self.region_pts.min(axis=0) + self.grid.spacing_mm
        tumour_ml = float(np.count_nonzero(self.structures[self.case.target_key])) * vox
        whole = (
            f"the whole target is left uncovered ({float(self.region.sum()) * vox:.1f} ml of "
            f"tumour plus margin, {tumour_ml:.1f} ml of it tumour, extent "
            f"{ext[0]:.0f} x {ext[1]:.0f} x {ext[2]:.0f} mm)"
        )
        if not candidate_directions(
            self.region_pts.mean(axis=0),
            self.paths,
            float(self.defaults.max_tilt_deg.value),
            self.entry,
        ):
            return f"no straight needle path from the body surface reaches the target: {whole}"
        why = ", ".join(
            f"{k} ({n} layout{'s' if n > 1 else ''})"
            for k, n in sorted(self.blocked.items(), key=lambda kv: -kv[1])
        )
        return (
            f"no layout of {self.lim.probes_min}-{self.lim.probes_max} parallel probes with "
            f"{self._spacing_text()}, in at most {self.max_cycles} cycles, has needle "
            f"paths clear of no-go structures by {self.safety_mm:g} mm and covers the target: "
            f"{whole}" + (f"; layouts were stopped by: {why}" if why else "")
        )

    def _engine_warnings(self, conf: ConfirmedPlan) -> list[PlanWarning]:
        out: list[PlanWarning] = []
        seen = set()
        order = sorted({p.cycle for p in conf.probes})
        for cyc, res in zip(order, conf.results, strict=True):
            for w in getattr(res, "warnings", []) or []:
                if len(order) > 1 and not w.message.startswith("cycle "):
                    # The engine solves one cycle at a time: say which one.
                    w = w.model_copy(update={"message": f"cycle {cyc}: {w.message}"})
                if (w.code, w.message) not in seen:
                    seen.add((w.code, w.message))
                    out.append(w)
        engine_thermal = any(w.code.startswith("thermal_damage_") for w in out)
        if conf.thermal_omega is not None and not engine_thermal:
            thr = float(self.defaults.thermal_damage_omega.value)
            from hepablate.evaluation import lumen_mask

            lum = lumen_mask(self.structures)
            hit = (np.asarray(conf.thermal_omega) >= thr) & lum
            if hit.any():
                out.append(
                    PlanWarning(
                        level="warning",
                        code="thermal_damage_vessel_duct",
                        message=f"predicted thermal damage (Omega >= {thr:g}) in "
                        f"{hit.sum() * self.grid.voxel_volume_ml:.3f} ml of vessel/duct lumen; "
                        "consider fewer pulses per train or longer pauses",
                    )
                )
        return out

    def _thermal_plan_warnings(self, best: ConfirmedPlan, attempts: int) -> list[PlanWarning]:
        """What the planner did about predicted thermal damage at vessels and ducts (the
        engine's own thermal warnings are kept as they are): trains split in two, voltage
        raises refused, and damage it could not avoid."""
        out: list[PlanWarning] = []
        thr = float(self.defaults.thermal_damage_omega.value)
        split = []
        for c in sorted({p.cycle for p in best.pairs}):
            keys = [(p.anode, p.cathode) for p in best.pairs if p.cycle == c]
            if len(set(keys)) < len(keys):
                split.append(c)
        if split:
            out.append(
                PlanWarning(
                    level="info",
                    code="split_trains",
                    message=f"cycle {', '.join(map(str, split))}: every pair is delivered as two "
                    "trains of half the pulses (all first halves, then all second halves) so "
                    "that the probes cool in between; this lowers the predicted thermal damage "
                    "at vessels and ducts (the zone does not change)",
                )
            )
        is_fallback = any(best is f for f in self.thermal_fallbacks)
        key = self._probes_key(best.probes)
        seen = set()
        for r in self.thermal_refusals:
            if r["probes"] != key or is_fallback:
                continue
            raised = ", ".join(
                f"{a}-{b} {v0:.0f} -> {v1:.0f} V" + (f" ({v1 / (sp / 10):.0f} V/cm)" if sp else "")
                for _, a, b, v0, v1, sp in dict.fromkeys(r["raised"])
            )
            cyc = ", ".join(str(c) for c in sorted({x[0] for x in r["raised"]}))
            msg = (
                f"cycle {cyc}: raising {raised} would predict thermal damage (Omega >= {thr:g}) "
                f"at {', '.join(r['structures'])}; not raised (tumour plus margin coverage "
                f"{100 * r['coverage_kept']:.1f} % instead of {100 * r['coverage_refused']:.1f} %)"
            )
            if msg not in seen:
                seen.add(msg)
                out.append(PlanWarning(level="info", code="voltage_raise_refused", message=msg))
        if best.thermal_hits:
            where = ", ".join(
                f"{k} ({v:.2f} ml of lumen and 1-voxel wall)"
                for k, v in sorted(best.thermal_hits.items(), key=lambda kv: -kv[1])
            )
            tried = [f"{attempts} layout(s)"]
            if self.stats.get("split_train_trials"):
                tried.append("trains split in two")
            if self.thermal_refusals:
                tried.append(f"{len(self.thermal_refusals)} voltage raise(s) refused")
            how = (
                "only the voltage raise that predicts it meets the coverage requirement"
                if is_fallback
                else "it comes with the voltages the chosen layout needs for its coverage"
            )
            out.append(
                PlanWarning(
                    level="warning",
                    code="thermal_damage_unavoidable",
                    message=f"predicted thermal damage (Arrhenius Omega >= {thr:g}) at {where}: "
                    f"not avoided by the alternatives tried ({', '.join(tried)}); {how}",
                )
            )
        return out

    def _protocol_warnings(self, conf: ConfirmedPlan) -> list[PlanWarning]:
        out = []
        seen = set()
        for p in conf.pairs:
            if (p.cycle, p.anode, p.cathode) in seen:
                continue  # a pair delivered as two trains
            seen.add((p.cycle, p.anode, p.cathode))
            if p.spacing_mm and p.voltage_v / (p.spacing_mm / 10) < 0.98 * self.lim.v_per_cm_low:
                out.append(
                    PlanWarning(
                        level="info",
                        code="voltage_below_rule",
                        message=f"cycle {p.cycle} {p.anode}-{p.cathode}: {p.voltage_v:.0f} V over "
                        f"{p.spacing_mm:.1f} mm = {p.voltage_v / (p.spacing_mm / 10):.0f} V/cm, below "
                        f"the {self.lim.v_per_cm_low:.0f} V/cm rule",
                    )
                )
            if p.spacing_mm and p.voltage_v / (p.spacing_mm / 10) > self.lim.v_per_cm_high + 1:
                out.append(
                    PlanWarning(
                        level="info",
                        code="voltage_above_rule",
                        message=f"cycle {p.cycle} {p.anode}-{p.cathode}: {p.voltage_v:.0f} V over "
                        f"{p.spacing_mm:.1f} mm = {p.voltage_v / (p.spacing_mm / 10):.0f} V/cm, above "
                        f"the {self.lim.v_per_cm_low:.0f}-{self.lim.v_per_cm_high:.0f} V/cm rule",
                    )
                )
        n_cycles = len({p.cycle for p in conf.probes})
        if n_cycles > 1:
            out.append(
                PlanWarning(
                    level="info",
                    code="multi_cycle",
                    message=f"{n_cycles} placement cycles (pull-back or repositioning) are needed",
                )
            )
        return out


# ---- robustness ----------------------------------------------------------------------------


def coverage_probability(
    conf: ConfirmedPlan,
    grid: Volume,
    placement_error_mm: float,
    samples: int,
    required: float,
    seed: int = 0,
) -> tuple[float, dict[str, float]]:
    """P(target coverage >= required) when every probe is displaced independently by an
    isotropic Gaussian error whose 3D RMS is `placement_error_mm` (sigma per axis = error /
    sqrt 3). Uses the analytic surrogate with its threshold calibrated on the nominal plan so
    that its zone has the nonlinear zone's volume near the target (and its nominal coverage is
    not below the nonlinear one)."""
    from hepablate.evaluation import dilate_mm
    from hepablate.optimize.surrogate import covered_fraction, field_max_v_per_cm

    if samples <= 0:
        return float("nan"), {}
    region = conf.region
    box = dilate_mm(region, 10.0, grid.spacing_mm)
    idx_box = np.argwhere(box)
    pts_box = grid.index_to_lps(idx_box[:, ::-1].astype(float))
    in_region = region[idx_box[:, 0], idx_box[:, 1], idx_box[:, 2]]
    pairs = [(p.anode, p.cathode, p.voltage_v, p.cycle) for p in conf.pairs]
    e_nom = field_max_v_per_cm(pts_box, conf.probes, pairs)
    z_true = conf.zone[idx_box[:, 0], idx_box[:, 1], idx_box[:, 2]]
    n_true = int(z_true.sum())
    e_sorted = np.sort(e_nom)[::-1]
    t_vol = float(e_sorted[min(max(n_true - 1, 0), len(e_sorted) - 1)])
    cov_true = float(z_true[in_region].mean())
    er = np.sort(e_nom[in_region])
    k = int(math.floor((1.0 - cov_true) * len(er) + 1e-9))
    t_cov = float(er[min(k, len(er) - 1)])
    t_eff = min(t_vol, t_cov)
    z_sur = e_nom >= t_eff
    dice = 2 * float((z_sur & z_true).sum()) / max(float(z_sur.sum() + z_true.sum()), 1.0)
    pts_r = pts_box[in_region]
    rng = np.random.default_rng(seed)
    sigma = placement_error_mm / math.sqrt(3.0)
    hits = 0
    covs = []
    for _ in range(samples):
        offsets = {(p.cycle, p.id): rng.normal(0.0, sigma, 3) for p in conf.probes}
        c = covered_fraction(pts_r, conf.probes, pairs, t_eff, offsets)
        covs.append(c)
        hits += c >= required
    info = {
        "surrogate_threshold_v_per_cm": round(t_eff, 1),
        "surrogate_dice_nominal": round(dice, 3),
        "coverage_p05": round(float(np.quantile(covs, 0.05)), 4),
        "coverage_median": round(float(np.median(covs)), 4),
    }
    return hits / samples, info


def unit_dir(v) -> np.ndarray:  # re-export for callers that build probes by hand
    return unit(np.asarray(v, float))


# ---- the public entry point ------------------------------------------------------------------


@dataclass
class IrePlanResult:
    """A plan and the volumes that go with it (planning grid, LPS)."""

    plan: Any
    outcome: IrePlanOutcome
    zone: Volume | None
    field_max_v_per_cm: Volume | None


_UNIT_SUFFIXES = (
    ("_per_cm_v", "V/cm"),
    ("_v_per_cm", "V/cm"),
    ("_s_per_m", "S/m"),
    ("_per_c", "1/degC"),
    ("_mm", "mm"),
    ("_us", "us"),
    ("_v", "V"),
    ("_a", "A"),
)


def unit_of(name: str) -> str:
    """Unit of a table entry from the suffix of its name (hepablate's naming rule)."""
    for suffix, u in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            return u
    return ""


def search_threshold_v_per_cm(tissues: Any, settings: Any) -> float:
    """The IRE threshold the search aims at: the settings' override, else the highest of the
    liver and tumour thresholds in the tissue table (conservative)."""
    if settings.zone_threshold_v_per_cm is not None:
        return float(settings.zone_threshold_v_per_cm)
    vals = []
    for name in ("liver", "tumour"):
        if name in tissues.tissues:
            vals.append(float(tissues.tissues[name].electrical.ire_threshold_v_per_cm.value))
    return max(vals) if vals else 600.0


def default_engine(case: Case, settings: Any, tissues: Any, devices: Any) -> IreEngine:
    from hepablate.physics.ire import IreProblem

    return IreProblem.from_case(case, settings=settings, tissues=tissues, devices=devices)


def plan_ire(
    case: Case,
    options: IrePlanOptions | None = None,
    *,
    tissues: Any = None,
    devices: DeviceTable | None = None,
    engine: IreEngine | None = None,
    progress: Progress | None = None,
    command: str = "",
) -> IrePlanResult:
    """Plan IRE for `case` (see the module docstring); never raises for an infeasible target,
    which comes back as a plan with `status: infeasible` and the reason."""
    import time as _time

    from hepablate import __version__
    from hepablate.anatomy.tissues import load_tissue_table
    from hepablate.core.provenance import file_sha256
    from hepablate.devices.catalog import load_device_table
    from hepablate.evaluation import load_planning_defaults
    from hepablate.plans.model import (
        CaseRef,
        IreSimulationSettings,
        Metrics,
        Parameter,
        Plan,
        Provenance,
    )

    t0 = _time.perf_counter()
    opts = options or IrePlanOptions()
    tissues = tissues or load_tissue_table()
    devices = devices or load_device_table()
    defaults = load_planning_defaults()
    settings = IreSimulationSettings(grid_spacing_mm=opts.grid_spacing_mm)
    thr = search_threshold_v_per_cm(tissues, settings)
    lim = limits_from(devices, thr, opts)
    if not case.target_mask.any():
        from hepablate.errors import InputError

        raise InputError(f"target tumour '{case.target_id}' is empty", field="target")
    engine = engine or default_engine(case, settings, tissues, devices)
    planner = IrePlanner(case, engine, lim, defaults, opts, progress)
    outcome = planner.run()
    required = float(defaults.coverage_required.value)
    err = (
        opts.placement_error_mm
        if opts.placement_error_mm is not None
        else float(defaults.placement_error_mm.value)
    )
    n_mc = (
        opts.monte_carlo_samples
        if opts.monte_carlo_samples is not None
        else int(defaults.monte_carlo_samples.value)
    )
    conf = outcome.confirmed
    extra: dict[str, float] = {}
    if conf is not None and n_mc > 0:
        p, info = coverage_probability(conf, outcome.grid, err, n_mc, required, opts.seed)
        outcome.coverage_probability = p
        extra.update(info)
    extra.update({k: float(v) for k, v in outcome.stats.items()})
    metrics = Metrics()
    if conf is not None:
        m = conf.metrics
        extra.update(
            {
                "target_volume_ml": round(m.target_volume_ml, 3),
                "uncovered_target_ml": round(m.uncovered_target_ml, 3),
                "vessel_in_zone_ml": round(m.vessel_in_zone_ml, 3),
                "duct_in_zone_ml": round(m.duct_in_zone_ml, 3),
            }
        )
        if conf.temperature_max_c is not None:
            extra["temperature_max_c"] = round(float(np.max(conf.temperature_max_c)), 2)
        metrics = Metrics(
            target_coverage=round(m.target_coverage, 4),
            tumour_coverage=round(m.tumour_coverage, 4),
            min_margin_mm=round(m.min_margin_mm, 2),
            ablation_volume_ml=round(m.ablation_volume_ml, 3),
            non_target_liver_ml=round(m.non_target_liver_ml, 3),
            coverage_probability=None
            if outcome.coverage_probability is None
            else round(outcome.coverage_probability, 4),
            extra=extra,
        )
        if outcome.coverage_probability is not None and outcome.coverage_probability < 0.5:
            outcome.warnings.append(
                PlanWarning(
                    level="warning",
                    code="low_robustness",
                    message=f"only {100 * outcome.coverage_probability:.0f} % of simulated "
                    f"placements with {err:g} mm error keep {100 * required:.0f} % coverage; "
                    "consider --robust",
                )
            )
    params = [
        Parameter(name=f"device.ire.{k}", value=q.value, unit=unit_of(k), source=q.source)
        for k, q in devices.ire
    ]
    for tname in ("liver", "tumour", "blood", "bile"):
        if tname in tissues.tissues:
            for k, q in tissues.tissues[tname].electrical:
                params.append(
                    Parameter(
                        name=f"tissue.{tname}.electrical.{k}",
                        value=q.value,
                        unit=unit_of(k),
                        source=q.source,
                    )
                )
    params += defaults.parameters()
    params.append(
        Parameter(
            name="planning.search_threshold_v_per_cm",
            value=thr,
            unit="V/cm",
            source="tissue table IRE threshold (max of liver, tumour)",
        )
    )
    params.append(
        Parameter(
            name="planning.path_safety_distance_mm_used",
            value=planner.safety_mm,
            unit="mm",
            source="option --safety-distance or planning.yaml",
        )
    )
    for k, v in opts.model_dump().items():
        params.append(Parameter(name=f"option.{k}", value=v, source="command line / API"))
    hashes = {}
    for name, path in (case.source_files or {}).items():
        try:
            hashes[name] = file_sha256(path)
        except OSError:
            pass
    if case.root is not None and (case.root / "case.yaml").exists():
        hashes["case.yaml"] = file_sha256(case.root / "case.yaml")
    plan = Plan(
        modality="ire",
        case=CaseRef(
            case_id=case.case_id,
            path=None if case.root is None else str(case.root),
            target=case.target_id,
            margin_mm=case.margin_mm,
        ),
        status=outcome.status,
        status_reason=outcome.status_reason,
        probes=[] if conf is None else conf.probes,
        pairs=[] if conf is None else conf.pairs,
        ire_simulation=settings,
        metrics=metrics,
        warnings=outcome.warnings,
        runtime_s=round(_time.perf_counter() - t0, 2),
        provenance=Provenance(
            hepablate_version=__version__,
            created_utc=_time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime()),
            command=command,
            input_hashes=hashes,
            parameters=params,
        ),
    )
    zone = fmax = None
    if conf is not None:
        zone = outcome.grid.with_array(conf.zone.astype(np.uint8))
        fmax = outcome.grid.with_array(conf.field_max_v_per_cm.astype(np.float32))
    return IrePlanResult(plan, outcome, zone, fmax)
