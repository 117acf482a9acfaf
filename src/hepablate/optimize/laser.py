"""Laser planning: number of fibres, parallel layout, energy per fibre and pull-backs.

Search (docs/planning-laser.md):
1. Insertion directions: parallel fibres along the shared candidate directions
   (`hepablate.placement.paths.candidate_directions`: anterior/lateral entries, limited
   craniocaudal tilt), shortest path first; a candidate is kept only if every fibre path keeps
   the planning safety distance from no-go structures (a fibre whose parallel path is blocked
   may turn by up to `max_probe_angle_deg` about the middle of its illuminated range:
   `hepablate.optimize.laser_layouts`).
2. Per direction, the target region (tumour + margin) is projected on the plane perpendicular
   to it. Layouts of 1 to 4 fibres (single, line, triangle, square; rotated onto the region's
   principal axis, and two more rotations) at the device spacings (10, 14, 18 mm by default) and energies per
   illumination (device practice range, 3 W) are generated; along the fibre, the first tip
   sits about one zone reach before the deep end of the region and pull-backs (device range
   10-15 mm) step back until the shallow end is within reach.
3. A geometric estimate (each tip position ablates a sphere whose radius grows with energy,
   calibrated on single-fibre runs of the forward model in liver) ranks the candidates; the
   most economical ones that reach the required coverage are simulated on a coarse grid
   (`search_spacing_mm`) with the full forward model.
4. The best coarse candidate (coverage >= required, no critical thermal dose, then least
   non-target liver, then fewer fibres and less energy; if every covering candidate damages
   a critical structure, the covering one with the least damage) is confirmed at `grid_spacing_mm`;
   if its coverage falls short, its energy is raised within the device limits and it is
   re-run (at most `max_confirmations` runs).
5. Final evaluation: metrics, safety warnings, optical sensitivity and coverage probability
   (`hepablate.physics.laser.analysis`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hepablate.anatomy.tissues import TissueTable, load_tissue_table
from hepablate.case.model import Case
from hepablate.core.progress import NullProgress, Progress
from hepablate.devices.catalog import DeviceTable, load_device_table
from hepablate.errors import InputError
from hepablate.evaluation import evaluate_zone, load_planning_defaults, target_region
from hepablate.evaluation.evaluation import Evaluation
from hepablate.optimize import laser_layouts as layouts
from hepablate.optimize.laser_layouts import Candidate
from hepablate.physics.laser.analysis import critical_keys
from hepablate.physics.laser.simulate import simulate_laser
from hepablate.placement.approach import PatientPosition, openings
from hepablate.placement.paths import PathMap, candidate_directions
from hepablate.placement.tract import check_liver_tract
from hepablate.plans.model import (
    CaseRef,
    EvaluationSettings,
    LaserSimulationSettings,
    Plan,
    PlanningRecord,
    PlanWarning,
    plan_fingerprint,
)

PLANNER = "hepablate laser planner"

#: Geometric coverage from which a candidate counts as likely to cover: a union of spheres
#: leaves gaps between tip positions that the real (smoother, merged) zone fills.
EST_COVERAGE_GOOD = 0.94
#: Below this, a candidate cheaper than a covering one is not worth a forward run.
EST_COVERAGE_NEAR = 0.85


class LaserPlanOptions(BaseModel):
    """User options of the laser planner; `None` means the device/planning table default."""

    model_config = ConfigDict(extra="forbid")
    min_fibres: int | None = Field(None, ge=1)
    max_fibres: int | None = Field(None, ge=1)
    min_spacing_mm: float | None = Field(None, gt=0)
    max_spacing_mm: float | None = Field(None, gt=0)
    power_w: float | None = Field(None, gt=0)
    energies_j: list[float] | None = None
    safety_distance_mm: float | None = Field(None, ge=0)
    placement_error_mm: float | None = Field(None, ge=0)
    monte_carlo_samples: int | None = Field(None, ge=0)
    grid_spacing_mm: float = Field(1.0, gt=0)
    required_coverage: float | None = Field(
        None, gt=0, le=1, description="target coverage to reach; default criteria.yaml"
    )
    search_spacing_mm: float = Field(2.5, gt=0)
    max_coarse_runs: int = Field(6, ge=1)
    max_confirmations: int = Field(3, ge=1)
    sensitivity: bool = True
    seed: int = 0
    patient_position: PatientPosition = "supine"
    """Which skin is accessible (approaches.yaml): supine anterior and lateral, prone
    posterior and lateral, left lateral decubitus right lateral and posterolateral."""
    min_liver_path_mm: float | None = Field(
        None, ge=0, description="normal liver before the tumour; default planning.yaml"
    )
    plan_to_confident_zone: bool = Field(
        False,
        description="raise the energy until the confident zone (ablated at every end of the "
        "tissue-property ranges, physics.laser.analysis.parameter_band) covers the target; "
        "the plan states what it costs",
    )

    @model_validator(mode="after")
    def _check(self) -> LaserPlanOptions:
        if self.min_fibres and self.max_fibres and self.max_fibres < self.min_fibres:
            raise ValueError("max_fibres must be >= min_fibres")
        if (
            self.min_spacing_mm
            and self.max_spacing_mm
            and self.max_spacing_mm < self.min_spacing_mm
        ):
            raise ValueError("max_spacing_mm must be >= min_spacing_mm")
        return self


class LaserPlanner:
    def __init__(
        self,
        case: Case,
        opts: LaserPlanOptions,
        tissues: TissueTable,
        devices: DeviceTable,
        progress: Progress,
    ):
        self.case = case
        self.opts = opts
        self.tissues = tissues
        self.devices = devices
        self.progress = progress
        dev = devices.laser
        self.defaults = load_planning_defaults()
        from hepablate.evaluation.criteria import load_criteria

        self.required = (
            opts.required_coverage
            if opts.required_coverage is not None
            else load_criteria().required_coverage.value
        )
        fmin, fmax = dev.fibres_min.value, dev.fibres_max.value
        self.n_min = max(fmin, opts.min_fibres or fmin)
        self.n_max = min(fmax, opts.max_fibres or fmax)
        if self.n_min > self.n_max:
            raise InputError(
                f"fibre count range [{self.n_min}, {self.n_max}] is empty "
                f"(device: {fmin} to {fmax})",
                field="max_fibres",
            )
        s_lo, s_hi = dev.spacing_mm.value
        self.s_min = opts.min_spacing_mm or s_lo
        self.s_max = opts.max_spacing_mm or s_hi
        p_lo, p_hi = dev.power_limits_w.value
        self.power_w = opts.power_w if opts.power_w is not None else dev.power_w.value
        if not p_lo <= self.power_w <= p_hi:
            raise InputError(
                f"power {self.power_w:g} W outside the device limits [{p_lo:g}, {p_hi:g}] W",
                field="power_w",
            )
        self.e_lo, self.e_hi = dev.energy_limits_j.value
        if opts.energies_j:
            energies = sorted(float(e) for e in opts.energies_j)
            for e in energies:
                if not self.e_lo <= e <= self.e_hi:
                    raise InputError(
                        f"energy {e:g} J outside the device limits "
                        f"[{self.e_lo:g}, {self.e_hi:g}] J",
                        field="energies_j",
                    )
        else:
            assert dev.energy_j.range is not None, "devices.yaml laser.energy_j needs a range"
            lo, hi = (float(x) for x in dev.energy_j.range)
            energies = [lo, 0.5 * (lo + hi), hi]
        self.energies = energies
        self.pb_lo, self.pb_hi = dev.pullback_mm.value
        self.safety_mm = (
            opts.safety_distance_mm
            if opts.safety_distance_mm is not None
            else self.defaults.path_safety_distance_mm.value
        )
        self.max_tilt = self.defaults.max_tilt_deg.value
        self.min_liver_mm = (
            opts.min_liver_path_mm
            if opts.min_liver_path_mm is not None
            else self.defaults.laser_min_liver_path_mm.value
        )
        self.path_cache: dict[tuple, Any] = {}
        """Fibre path checks (path, liver tract) per (tip, direction): `laser_layouts._check`."""
        self.angled_checks = 0
        self.angled_budget_exhausted = False
        self.blocked: dict[str, int] = {}
        """What stopped candidate layouts (structure or `liver tract`) and how often."""
        self.direction: np.ndarray | None = None
        self.confident_note: PlanWarning | None = None
        """With `plan_to_confident_zone`: what planning to the confident zone cost."""
        sp = case.grid.spacing_mm
        region = target_region(case.structures, case.target_key, case.margin_mm, sp)
        idx = np.argwhere(region)
        if idx.size == 0:
            raise InputError(f"target tumour '{case.target_id}' is empty", field="target")
        rng = np.random.default_rng(opts.seed)
        if len(idx) > 4000:
            idx = idx[rng.choice(len(idx), 4000, replace=False)]
        self.region_pts = case.grid.index_to_lps(idx[:, ::-1].astype(float))
        self.centre = self.region_pts.mean(axis=0)

    # ---- candidate generation ----------------------------------------------------------
    def candidates(self, d: np.ndarray, scale: float = 1.0) -> list[Candidate]:
        return layouts.candidates(self, d, scale)

    def _with_paths(self, pm: PathMap, cand: Candidate) -> Candidate | None:
        return layouts.with_paths(self, pm, cand)

    # ---- evaluation ----------------------------------------------------------------------
    def _simulate(self, cand: Candidate, spacing_mm: float) -> dict[str, Any]:
        s = LaserSimulationSettings(
            grid_spacing_mm=spacing_mm,
            time_step_s=1.0 if spacing_mm <= 1.0 else 4.0 * spacing_mm,
            optical_updates_per_step=2 if spacing_mm <= 1.0 else 1,
        )
        r = simulate_laser(
            self.case,
            cand.fibres,
            cand.illuminations,
            settings=s,
            tissues=self.tissues,
            devices=self.devices,
        )
        m = evaluate_zone(
            r.zone, r.structures, self.case.target_key, self.case.margin_mm, r.grid.spacing_mm
        )
        thr = self.tissues.damage.arrhenius_omega_threshold.value
        from scipy import ndimage

        crit = 0.0
        for key in critical_keys(r.structures):
            crit += float((ndimage.binary_dilation(r.structures[key]) & (r.omega >= thr)).sum())
        return {
            "zone_ml": m.ablation_volume_ml,
            "coverage": m.target_coverage,
            "non_target_ml": m.non_target_liver_ml,
            "critical_vox": crit,
            "settings": s,
            "result": r,
        }

    def _score(self, cand: Candidate, res: dict[str, Any], required: float) -> tuple:
        covers = res["coverage"] >= required
        if covers and res["critical_vox"] == 0:
            return (0, res["non_target_ml"] + 0.5 * cand.n_fibres + cand.total_energy_j / 5000)
        if covers:
            # Every covering candidate damages a critical structure (e.g. a tumour abutting
            # the colon): the least damage among them, and the plan says so
            # (critical_thermal_damage); trading coverage for a damage that remains anyway
            # would leave tumour untreated without making the plan safe.
            return (1, res["critical_vox"], cand.total_energy_j)
        return (2, -res["coverage"] + 0.01 * res["critical_vox"])

    def run(self) -> tuple[Candidate | None, str, int, dict[str, Any] | None]:
        pm = PathMap(self.case, self.safety_mm)
        self.paths = pm
        pos = self.opts.patient_position
        dirs = candidate_directions(self.centre, pm, self.max_tilt, None, pos)[:8]
        if not dirs:
            return None, "no insertion direction reaches the target from the skin", 0, None
        # The first direction (shortest path first) through which layouts of every fibre count
        # pass, else the one that passes the most counts: taking the first direction with any
        # clear layout left a single fibre where a window further round fitted two (anatomical
        # suite: torso dome and heart, 92 % -> feasible).
        pool: list[Candidate] = []
        for d in dirs:
            self.angled_checks = 0
            cands = layouts.clear_candidates(self, pm, self.candidates(d))
            if cands and len({c.n_fibres for c in cands}) > len({c.n_fibres for c in pool}):
                pool = cands
            if pool and len({c.n_fibres for c in pool}) == self.n_max - self.n_min + 1:
                break
        if not pool:
            why = ", ".join(
                f"{k} ({n} layout{'s' if n > 1 else ''})"
                for k, n in sorted(self.blocked.items(), key=lambda kv: -kv[1])
            )
            opened = openings(self.centre, pm, self.max_tilt, pos)
            where = pos.replace("_", " ")
            return (
                None,
                (
                    "no fibre layout (parallel, or with fibres turned by up to "
                    f"{self.defaults.max_probe_angle_deg.value:g} deg) has needle paths clear "
                    "of no-go structures "
                    f"(safety distance {self.safety_mm:g} mm) with at least "
                    f"{self.min_liver_mm:g} mm of normal liver before the tumour"
                    + (f"; layouts were stopped by: {why}" if why else "")
                    + (
                        f". In the {where} position no window lets the layouts pass; a clear "
                        "central path opens in: " + "; ".join(opened)
                        if opened
                        else ". No patient position opens a clear central path; give an "
                        "entry region or displace the blocking structure"
                    )
                ),
                0,
                None,
            )
        # Adaptive search: simulate the most economical candidate the geometric estimate
        # expects to cover, recalibrate the estimate's reach on that run, and repeat.
        d = pool[0].direction
        self.direction = d
        scale = 1.0
        coarse_req = self.required
        scored: list[tuple[tuple, Candidate, dict[str, Any]]] = []
        done: set[tuple] = set()
        best_feasible_j = math.inf
        self.progress.start("laser plan: coarse search", total=self.opts.max_coarse_runs)
        for _ in range(self.opts.max_coarse_runs):
            fresh = [
                c
                for c in self.candidates(d, scale)
                if c.key not in done and c.total_energy_j < best_feasible_j
            ]
            good = sorted(
                (c for c in fresh if c.est_coverage >= EST_COVERAGE_GOOD),
                key=lambda c: (c.total_energy_j, c.n_fibres, -c.spacing_mm),
            )
            # Once something covers, only near misses of the estimate are worth a run.
            floor = EST_COVERAGE_NEAR if math.isfinite(best_feasible_j) else 0.0
            rest = sorted(
                (c for c in fresh if floor <= c.est_coverage < EST_COVERAGE_GOOD),
                key=lambda c: (-c.est_coverage, c.total_energy_j),
            )
            self.angled_checks = 0
            pick = next(
                (p for p in (self._with_paths(pm, c) for c in good + rest) if p is not None), None
            )
            if pick is None:
                break
            res = self._simulate(pick, self.opts.search_spacing_mm)
            done.add(pick.key)
            sc = self._score(pick, res, coarse_req)
            scored.append((sc, pick, res))
            if sc[0] == 0:
                best_feasible_j = min(best_feasible_j, pick.total_energy_j)
            if res["zone_ml"] > 0:
                scale = self._calibrate(pick, res["zone_ml"])
            self.progress.advance()
        self.progress.finish()
        scored.sort(key=lambda x: x[0])
        best = scored[0][1]
        runs = len(scored)
        # Confirm at the planning grid; raise the energy if coverage falls short.
        confirmed: dict[str, Any] | None = None
        for k in range(self.opts.max_confirmations):
            confirmed = self._simulate(best, self.opts.grid_spacing_mm)
            runs += 1
            if confirmed["coverage"] >= self.required or k == self.opts.max_confirmations - 1:
                break
            bumped = self._with_energy(best, best.energy_j * 1.2)
            if bumped is None:
                break
            best = bumped
        if (
            self.opts.plan_to_confident_zone
            and confirmed is not None
            and confirmed["coverage"] >= self.required
        ):
            best, confirmed, runs = self._to_confident_zone(best, confirmed, runs)
        return best, "", runs, confirmed

    def _to_confident_zone(
        self, best: Candidate, confirmed: dict[str, Any], runs: int
    ) -> tuple[Candidate, dict[str, Any], int]:
        """Raise the energy (x1.2 per round, within the device limit) until the confident zone
        covers the target, re-confirming each raise at the planning grid."""
        from hepablate.physics.laser.analysis import parameter_band

        nominal_j = best.energy_j

        def band_of(c: Candidate) -> dict[str, float]:
            _, band = parameter_band(
                self.case,
                c.fibres,
                c.illuminations,
                confirmed["settings"],
                self.tissues,
                self.devices,
            )
            return band

        band = band_of(best)
        runs += int(band["parameter_runs"])
        for _ in range(self.opts.max_confirmations):
            if band["confident_target_coverage"] >= self.required:
                break
            bumped = self._with_energy(best, best.energy_j * 1.2)
            if bumped is None:
                break
            best, confirmed = bumped, self._simulate(bumped, self.opts.grid_spacing_mm)
            band = band_of(best)
            runs += 1 + int(band["parameter_runs"])
        reached = band.get("confident_target_coverage", 0.0) >= self.required
        cost = (
            f"{best.energy_j:.0f} J per fibre and step instead of {nominal_j:.0f} J "
            f"(+{100 * (best.energy_j / nominal_j - 1):.0f} %, total {best.total_energy_j:.0f} J)"
        )
        self.confident_note = PlanWarning(
            level="info" if reached else "warning",
            code="confident_zone_planning",
            message=(
                f"planned to the confident zone: {cost}; it covers "
                f"{100 * band.get('confident_target_coverage', 0.0):.1f} % of tumour plus margin"
                if reached
                else "the confident zone does not reach the required coverage within the "
                f"device's energy limit ({self.e_hi:g} J) and {self.opts.max_confirmations} "
                f"raises: {100 * band.get('confident_target_coverage', 0.0):.1f} % with {cost}"
            ),
        )
        return best, confirmed, runs

    def approach_notes(self, best: Candidate | None) -> list[PlanWarning]:
        """Info note on the approach: patient position, kind of window, angles, and the
        fibres' liver tract before the tumour."""
        from hepablate.placement.approach import azimuth_deg, classify, side_of, tilt_deg
        from hepablate.placement.geometry import angle_deg

        if best is None or self.direction is None:
            return []
        d = np.asarray(best.direction, float)
        kinds = sorted(
            {
                classify(self.paths, np.asarray(f.entry_lps_mm), d, float(f.depth_mm))
                for f in best.fibres
                if f.entry_lps_mm is not None and f.depth_mm is not None
            }
        )
        tracts = [
            check_liver_tract(
                self.case, np.asarray(f.tip_lps_mm), np.asarray(f.direction_lps), self.min_liver_mm
            ).liver_mm
            for f in best.fibres
        ]
        angled = ""
        if best.angled:
            turn = max(angle_deg(np.asarray(f.direction_lps, float), d) for f in best.fibres)
            angled = (
                f"; fibre{'s' if len(best.angled) > 1 else ''} {', '.join(best.angled)} "
                f"turned by up to {turn:.0f} deg from the common direction because "
                f"{'their' if len(best.angled) > 1 else 'its'} parallel path was blocked"
            )
        budget = []
        if self.angled_budget_exhausted:
            budget = [
                PlanWarning(
                    level="info",
                    code="angled_search_bounded",
                    message=f"the search for turned fibres stopped after "
                    f"{layouts.ANGLED_PATH_BUDGET} path checks in at least one direction; "
                    "layouts not tried there may exist",
                )
            ]
        return budget + [
            PlanWarning(
                level="info",
                code="approach",
                message=f"patient {self.opts.patient_position.replace('_', ' ')}; "
                f"{'/'.join(kinds) or 'unchecked'} {side_of(-d)} approach (azimuth "
                f"{azimuth_deg(-d):.0f} deg, craniocaudal {tilt_deg(-d):+.0f} deg); "
                f"normal liver before the tumour {min(tracts):.0f} mm or more per fibre "
                f"({self.min_liver_mm:g} mm required){angled}",
            )
        ]

    def _calibrate(self, c: Candidate, zone_ml: float) -> float:
        """Reach scale at which the union of spheres around the candidate's tip positions has
        the simulated zone volume."""
        base = c.base_reach_mm
        assert c.shots is not None
        shots = c.shots
        lo = shots.min(axis=0) - 3.0 * base
        hi = shots.max(axis=0) + 3.0 * base
        rng = np.random.default_rng(0)
        pts = lo + rng.random((20000, 3)) * (hi - lo)
        dmin = np.min(np.linalg.norm(pts[:, None, :] - shots[None], axis=-1), axis=1)
        box_ml = float(np.prod(hi - lo)) / 1000.0
        scales = np.linspace(0.5, 3.0, 51)
        vols = np.array([(dmin <= f * base).mean() * box_ml for f in scales])
        return float(np.interp(zone_ml, vols, scales))

    def _with_energy(self, c: Candidate, energy_j: float) -> Candidate | None:
        energy_j = min(energy_j, self.e_hi)
        if energy_j <= c.energy_j + 1e-6:
            return None
        dur = round(energy_j / self.power_w, 1)
        ills = [
            i.model_copy(update={"duration_s": dur, "energy_j": round(self.power_w * dur, 3)})
            for i in c.illuminations
        ]
        return dataclasses.replace(c, illuminations=ills, energy_j=energy_j)


def plan_laser(
    case: Case,
    options: LaserPlanOptions | None = None,
    *,
    tissues: TissueTable | None = None,
    devices: DeviceTable | None = None,
    progress: Progress | None = None,
    command: str = "",
) -> Evaluation:
    """Plan laser ablation for `case`: the search above, then `hepablate.evaluate` of the
    chosen plan (reusing the confirmation run). An infeasible target gives an infeasible plan
    with the reason (no exception)."""
    from hepablate.modalities.laser import KnownRun
    from hepablate.physics.grid import grid_spec
    from hepablate.pipeline import evaluate

    opts = options or LaserPlanOptions()
    tissues = tissues or load_tissue_table()
    devices = devices or load_device_table()
    planner = LaserPlanner(case, opts, tissues, devices, progress or NullProgress())
    best, reason, runs, confirmed = planner.run()
    settings = (
        confirmed["settings"]
        if confirmed
        else LaserSimulationSettings(grid_spacing_mm=opts.grid_spacing_mm)
    ).model_copy(update={"optical_sensitivity": opts.sensitivity})
    ev_settings = EvaluationSettings(
        required_coverage=opts.required_coverage,
        placement_error_mm=opts.placement_error_mm,
        monte_carlo_samples=opts.monte_carlo_samples,
        seed=opts.seed,
        path_safety_distance_mm=planner.safety_mm,
    )
    stats: dict[str, float] = {"planner_runs": float(runs)}
    if best is not None:
        stats.update(fibre_spacing_mm=best.spacing_mm, energy_per_illumination_j=best.energy_j)
    draft = Plan(
        modality="laser",
        case=CaseRef.of(case),
        fibres=[] if best is None else best.fibres,
        illuminations=[] if best is None else best.illuminations,
        laser_simulation=settings,
        evaluation=ev_settings,
        grid=None if confirmed is None else grid_spec(confirmed["result"].grid),
    )
    record = PlanningRecord(
        planner=PLANNER,
        fingerprint=plan_fingerprint(draft),
        options=opts.model_dump(mode="json"),
        stats=stats,
        notes=planner.approach_notes(best)
        + ([planner.confident_note] if planner.confident_note else []),
    )
    draft = draft.model_copy(update={"planning": record})
    if best is None:
        from hepablate.evaluation.evaluation import nothing_delivered
        from hepablate.modalities.laser import laser_parameters, laser_refs
        from hepablate.physics.grid import planning_grid, resample_structures
        from hepablate.physics.laser.simulate import domain_box

        lo, hi = domain_box(case, np.zeros((0, 3)), settings)
        grid = planning_grid(case.grid, settings.grid_spacing_mm, lo, hi)
        return nothing_delivered(
            case,
            draft,
            grid,
            resample_structures(case.structures, case.grid, grid),
            PlanWarning(level="error", code="no_feasible_layout", message=reason),
            laser_refs(devices, planner.safety_mm),
            laser_parameters(tissues, devices),
            command=command,
        )
    known = KnownRun(plan_fingerprint(draft), settings, confirmed["result"]) if confirmed else None
    return evaluate(
        case,
        draft,
        tissues=tissues,
        devices=devices,
        progress=progress,
        engine=known,
        command=command,
    )
