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
   (devices.yaml) the plan uses pull-back cycles, and beyond six probes at maximum spacing it
   splits the region into repositioning cycles.
3. The engine's constant-conductivity model (linear in voltage) gives the exact common voltage
   scale that covers the region; voltages start at the 1500 V/cm spacing rule and may rise to
   the generator limit. The constant model underestimates the zone, so this is conservative.
4. Confirmation with the engine's full nonlinear solve; repair: pairs over the current limit
   are turned down, and if coverage falls short all voltages are raised (within limits) or
   the next candidate layout is tried.
5. Robustness: Monte Carlo placement error with the calibrated analytic surrogate
   (`hepablate.optimize.surrogate`).
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
from hepablate.evaluate import (
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
from hepablate.plan.model import IrePair, PlanWarning, Probe

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
    max_cycles: int = Field(6, ge=1)
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
    )


def _pair_segments(n: int, spacing_mm: float, max_spacing_mm: float) -> list[tuple[int, int]]:
    return neighbour_pairs(Layout2D(n, spacing_mm, 0.0, (0.0, 0.0)).points(), max_spacing_mm)


def _fit_layout(
    pts: np.ndarray, n: int, s: float, rot: float, max_spacing_mm: float
) -> tuple[float, Layout2D]:
    """Place an (n, s, rot) layout over the projected region points `pts` (2D, mm): centre on
    their bounding box in the layout frame, refined by a short pattern search. Returns the
    largest distance of a point from the nearest energised pair (segment between the two
    probes; each pair's zone is a band around it) and the layout."""
    from hepablate.placement.geometry import segments_distance

    pairs = _pair_segments(n, s, max_spacing_mm)
    if not pairs:
        return np.inf, Layout2D(n, s, rot, (0.0, 0.0))
    c, sn = np.cos(rot), np.sin(rot)
    rmat = np.array([[c, -sn], [sn, c]])
    local = pts @ rmat
    ctr = 0.5 * (local.min(axis=0) + local.max(axis=0))
    base = Layout2D(n, s, 0.0, (0.0, 0.0)).points()

    def cost(centre_local: np.ndarray) -> float:
        q = base + centre_local
        return float(segments_distance(local, [(q[i], q[j]) for i, j in pairs]).max())

    best = cost(ctr)
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
            from hepablate.evaluate import dilate_mm

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

    # -- geometry --------------------------------------------------------------------------
    def _paths_ok(self, probes: list[Probe]) -> tuple[bool, str | None]:
        for p in probes:
            chk = self.paths.check_path(
                np.asarray(p.tip_lps_mm), np.asarray(p.direction_lps), self.entry
            )
            if not chk.ok:
                return False, chk.blocking
        return True, None

    def _make_probes(
        self,
        cycle: int,
        d: np.ndarray,
        lay: Layout2D,
        tip_t: float,
        exposure: float,
        u: np.ndarray,
        v: np.ndarray,
    ) -> list[Probe]:
        out = []
        for i, (a, b) in enumerate(lay.points()):
            tip = a * u + b * v + tip_t * d
            chk = self.paths.check_path(tip, d, self.entry)
            # A probe whose deep end comes too close to a no-go structure is placed shallower
            # (as done in practice next to a vessel), by up to half its exposure.
            back = 0.0
            while not chk.ok and chk.entry_lps_mm is not None and back < exposure / 2:
                back += 1.0
                chk = self.paths.check_path(tip - back * d, d, self.entry)
            if chk.ok:
                tip = tip - back * d
            out.append(
                Probe(
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
            )
        return out

    def _axial_cycles(self, t: np.ndarray, axial_reach: float) -> list[tuple[float, float]]:
        """(tip_t, exposure) per pull-back cycle covering [t.min(), t.max()]."""
        tmin, tmax = float(t.min()), float(t.max())
        length = max(tmax - tmin - 2 * axial_reach, self.lim.exposure_min_mm)
        m = max(1, math.ceil(length / self.lim.exposure_practice_max_mm - 1e-9))
        exp = max(length / m, self.lim.exposure_min_mm)
        tip0 = tmax - axial_reach
        return [(tip0 - k * exp, exp) for k in range(m)]

    def candidate_layouts(
        self, reach_factor: float, axial_reach: float, exclude: set[tuple]
    ) -> list[tuple[float, list[CycleLayout], tuple]]:
        """Candidate multi-cycle layouts, best (smallest zone proxy) first."""
        pts = self.grid.index_to_lps(np.argwhere(self.search_region)[:, ::-1].astype(float))
        centre = pts.mean(axis=0)
        dirs = candidate_directions(
            centre, self.paths, float(self.defaults.max_tilt_deg.value), self.entry
        )[:8]
        out: list[tuple[float, list[CycleLayout], tuple]] = []
        mask_idx = np.argwhere(self.search_region)
        for di, d in enumerate(dirs):
            u, v = perpendicular_basis(d)
            uv = np.stack([pts @ u, pts @ v], axis=1)
            t = pts @ d
            # Principal axis of the projected region (for repositioning splits).
            cov = np.cov((uv - uv.mean(axis=0)).T)
            w, vecs = np.linalg.eigh(cov)
            major = vecs[:, int(np.argmax(w))]
            coord = (uv - uv.mean(axis=0)) @ major
            for n_split in (1, 2, 3):
                edges = np.quantile(coord, np.linspace(0, 1, n_split + 1))
                sels = [
                    (coord >= edges[pi] - 1e-9) & (coord <= edges[pi + 1] + 1e-9)
                    for pi in range(n_split)
                ]
                options = [
                    self._best_layout(
                        uv[sel],
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
                    for sel, (_, lay, axial) in zip(sels, chosen, strict=True):
                        part = np.zeros(self.region.shape, dtype=bool)
                        mi = mask_idx[sel]
                        part[mi[:, 0], mi[:, 1], mi[:, 2]] = True
                        for tip_t, exp in axial:
                            cyc = len(cycles) + 1
                            probes = self._make_probes(cyc, d, lay, tip_t, exp, u, v)
                            pairs = neighbour_pairs(lay.points(), self.lim.spacing_max_mm)
                            sub = part & self._axial_mask(d, tip_t, exp, axial_reach, axial)
                            cycles.append(CycleLayout(cyc, d, lay, tip_t, exp, probes, pairs, sub))
                    if len(cycles) > self.opts.max_cycles:
                        continue
                    score = sum(c[0] for c in chosen)
                    key = (
                        di,
                        n_split,
                        tuple(
                            (c[1].n, round(float(c[1].spacing_mm), 1), round(c[1].rotation_rad, 2))
                            for c in chosen
                        ),
                    )
                    if key not in exclude:
                        out.append((score * (1 + 0.05 * di), cycles, key))
                break  # fewer repositionings first
        out.sort(key=lambda x: x[0])
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

    def _best_layout(self, uv, reach_factor, d, u, v, t, axial_reach, exclude, tag):
        # Thin the projected points to a 2 mm 2D grid (keeps the fit cheap).
        cell = np.unique(np.round(uv / 2.0).astype(int), axis=0)
        pts2 = cell * 2.0
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
                fit_hi, lay_hi = _fit_layout(pts2, n, spacings[hi], rot, smax)
                if fit_hi > reach_factor * spacings[hi]:
                    continue
                found = (spacings[hi], lay_hi)
                while lo < hi:
                    mid = (lo + hi) // 2
                    f, lay = _fit_layout(pts2, n, spacings[mid], rot, smax)
                    if f <= reach_factor * spacings[mid]:
                        hi, found = mid, (spacings[mid], lay)
                    else:
                        lo = mid + 1
                s, lay = found
                key = (n, round(float(s), 1), round(lay.rotation_rad, 2), tag)
                if key in exclude:
                    continue
                area = _layout_area(lay, reach_factor * s)
                if best is not None and area >= best[0] - 1e-6:
                    continue
                probes = self._make_probes(1, d, lay, axial[0][0], axial[0][1], u, v)
                ok, _ = self._paths_ok(probes)
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
        spacing-rule voltages that brings the cycle's region part to `coverage_goal`.
        Returns the pairs and the largest scale needed (inf if the limits cannot reach it)."""
        pairs: list[IrePair] = []
        worst = 0.0
        thr = self.lim.threshold_v_per_cm
        for cyc in cycles:
            basis = self.engine.unit_basis(cyc.probes)
            self.stats["engine_layouts_evaluated"] += 1
            rule = []
            emax = np.zeros(self.region.shape, dtype=np.float32)
            for i, j in cyc.pairs:
                a, b = cyc.probes[i], cyc.probes[j]
                v0 = self._rule_voltage(a, b)
                e = self.engine.pair_field_constant(basis, a.id, b.id, v0)
                rule.append((a, b, v0))
                emax = np.maximum(emax, e)
            part = cyc.part if cyc.part.any() else self.region
            need = thr / np.maximum(emax[part], 1e-6)
            alpha = float(np.quantile(need, coverage_goal)) if need.size else 1.0
            tum = part & self.structures[self.case.target_key]
            if tum.any():
                # The tumour itself must be covered entirely, not just 99 % of the region.
                alpha = max(alpha, float((thr / np.maximum(emax[tum], 1e-6)).max()))
            alpha = max(alpha, 1.0)
            cap = min(self.lim.max_voltage_v / v0 for _, _, v0 in rule)
            if alpha > cap:
                worst = max(worst, np.inf)
                alpha = cap
            worst = max(worst, alpha)
            for a, b, v0 in rule:
                from hepablate.placement.geometry import probe_spacing_mm

                pairs.append(
                    IrePair(
                        cycle=cyc.cycle,
                        anode=a.id,
                        cathode=b.id,
                        voltage_v=round(min(alpha * v0, self.lim.max_voltage_v), 0),
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
            res = self.engine.simulate(cp, cpairs, progress=None)
            self.stats["nonlinear_solves"] += 1
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
        return ConfirmedPlan(probes, new_pairs, zone, fmax, m, self.region, results, tmax, omega)

    def _rank(self, conf: ConfirmedPlan, required: float) -> tuple:
        ok = self._covered(conf, required) and not self._over_limit(conf.pairs)
        return (ok, conf.metrics.tumour_coverage, conf.metrics.target_coverage)

    def _covered(self, conf: ConfirmedPlan, required: float) -> bool:
        """Acceptance: `required` of tumour + margin and the whole tumour in the zone."""
        return (
            conf.metrics.target_coverage >= required and conf.metrics.tumour_coverage >= 1.0 - 1e-9
        )

    def _over_limit(self, pairs: list[IrePair]) -> list[int]:
        return [
            i
            for i, p in enumerate(pairs)
            if p.predicted_current_a is not None and p.predicted_current_a > self.lim.max_current_a
        ]

    def _repair(self, conf: ConfirmedPlan, required: float) -> ConfirmedPlan:
        """Turn down pairs over the current limit; raise all voltages if coverage is short."""
        for _ in range(3):
            over = self._over_limit(conf.pairs)
            short = not self._covered(conf, required)
            if not over and not short:
                return conf
            pairs = []
            changed = False
            for i, p in enumerate(conf.pairs):
                v = p.voltage_v
                if i in over:
                    # Current grows faster than linearly with voltage (conductivity rises).
                    v = v * 0.92 * self.lim.max_current_a / float(p.predicted_current_a or 1.0)
                elif short and not over:
                    cap_i = self.lim.max_voltage_v
                    if p.predicted_current_a:
                        cap_i = min(
                            cap_i, v * 0.9 * self.lim.max_current_a / float(p.predicted_current_a)
                        )
                    v = min(v * 1.12, cap_i)
                v = float(round(v, 0))
                changed |= abs(v - p.voltage_v) >= 1.0
                pairs.append(p.model_copy(update={"voltage_v": v, "predicted_current_a": None}))
            if not changed:
                return conf
            self.stats["repairs"] += 1
            conf = self.confirm(conf.probes, pairs)
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
        while attempts < max_attempts:
            cands = self.candidate_layouts(reach_factor, axial_reach, exclude)
            if not cands:
                # Nothing fits the tighter reach estimate: fall back on the next-best layouts
                # of the previous round.
                cands = [c for c in pending if c[2] not in exclude]
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
            conf = self.confirm(probes, pairs)
            ok = self._covered(conf, required) and not self._over_limit(conf.pairs)
            if not first_choice_checked:
                self.stats["fast_choice_confirmed"] = float(ok and np.isfinite(alpha))
                first_choice_checked = True
            trace = {
                "layouts": [(c.layout.n, float(c.layout.spacing_mm)) for c in cycles],
                "reach_factor": round(reach_factor, 3),
                "alpha": round(alpha, 3),
                "fast_coverage_ok": bool(ok),
                "coverage": round(conf.metrics.target_coverage, 4),
                "tumour_coverage": round(conf.metrics.tumour_coverage, 4),
            }
            if not ok:
                conf = self._repair(conf, required)
                trace["repaired_coverage"] = round(conf.metrics.target_coverage, 4)
                trace["repaired_tumour_coverage"] = round(conf.metrics.tumour_coverage, 4)
            self.trace.append(trace)
            if best is None or self._rank(conf, required) > self._rank(best, required):
                best = conf
            if self._covered(conf, required) and not self._over_limit(conf.pairs):
                break
            reach_factor *= 0.8
            axial_reach = max(axial_reach - 2.0, -4.0)
        self.progress.finish()
        self.stats["search_attempts"] = attempts
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
        status, reason = "feasible", ""
        over = self._over_limit(best.pairs)
        if not self._covered(best, required) or over:
            status = "infeasible"
            parts = []
            if not self._covered(best, required):
                parts.append(
                    f"best plan covers {100 * best.metrics.target_coverage:.1f} % of tumour plus "
                    f"margin and {100 * best.metrics.tumour_coverage:.1f} % of the tumour "
                    f"({best.metrics.uncovered_target_ml:.2f} ml left uncovered; "
                    f"{100 * required:.0f} % required) within the device limits "
                    f"({self.lim.probes_max} probes, {self.lim.spacing_max_mm:g} mm spacing, "
                    f"{self.lim.max_voltage_v:g} V, {self.lim.max_current_a:g} A, "
                    f"{self.opts.max_cycles} cycles)"
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

    def _no_layout_reason(self) -> str:
        if not candidate_directions(
            self.region_pts.mean(axis=0),
            self.paths,
            float(self.defaults.max_tilt_deg.value),
            self.entry,
        ):
            return "no straight needle path from the body surface reaches the target"
        return (
            f"no layout of {self.lim.probes_min}-{self.lim.probes_max} parallel probes with spacing {self.lim.spacing_min_mm:g}-{self.lim.spacing_max_mm:g} mm has needle paths "
            f"clear of no-go structures by {self.safety_mm:g} mm and covers the target"
        )

    def _engine_warnings(self, conf: ConfirmedPlan) -> list[PlanWarning]:
        out: list[PlanWarning] = []
        seen = set()
        for res in conf.results:
            for w in getattr(res, "warnings", []) or []:
                if (w.code, w.message) not in seen:
                    seen.add((w.code, w.message))
                    out.append(w)
        engine_thermal = any(w.code.startswith("thermal_damage_") for w in out)
        if conf.thermal_omega is not None and not engine_thermal:
            thr = float(self.defaults.thermal_damage_omega.value)
            from hepablate.evaluate import lumen_mask

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

    def _protocol_warnings(self, conf: ConfirmedPlan) -> list[PlanWarning]:
        out = []
        for p in conf.pairs:
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
    from hepablate.evaluate import dilate_mm
    from hepablate.optimize.surrogate import field_max_v_per_cm

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
        moved = []
        for p in conf.probes:
            off = rng.normal(0.0, sigma, 3)
            moved.append(
                p.model_copy(
                    update={"tip_lps_mm": tuple(float(x) for x in np.asarray(p.tip_lps_mm) + off)}
                )
            )
        e = field_max_v_per_cm(pts_r, moved, pairs)
        c = float((e >= t_eff).mean())
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
    from hepablate.evaluate import load_planning_defaults
    from hepablate.plan.model import (
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
