"""Laser ablation: the planner (`hepablate.optimize.laser`), the forward model of a plan
(`hepablate.physics.laser`), its safety checks, optical sensitivity and robustness, and its
outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hepablate.anatomy.tissues import TissueTable
from hepablate.case.model import Case
from hepablate.core.progress import Progress
from hepablate.core.provenance import Parameter, table_parameters
from hepablate.devices.catalog import DeviceTable
from hepablate.errors import InputError
from hepablate.evaluation.evaluation import Assessment, EngineRun, Evaluation
from hepablate.evaluation.metrics import ZoneMetrics
from hepablate.physics.grid import evaluation_grid
from hepablate.physics.laser.analysis import (
    coverage_probability,
    optical_sensitivity,
    safety_warnings,
)
from hepablate.physics.laser.protocol import emitting_ends, resolve_protocol
from hepablate.physics.laser.simulate import (
    LaserResult,
    build_domain,
    domain_box,
    simulate_laser,
)
from hepablate.placement.paths import needle_clearances
from hepablate.plans.model import (
    EvaluationSettings,
    Illumination,
    LaserSimulationSettings,
    Plan,
    PlanWarning,
    plan_fingerprint,
)

#: A recorded grid is kept while every tip position lies at least this far (mm) inside it.
GRID_CLEARANCE_MM = 10.0


@dataclass
class KnownRun:
    """A forward run the caller already has for exactly this plan, settings and grid (the
    planner's confirmation): `run_engine` reuses it instead of solving again."""

    fingerprint: str
    settings: LaserSimulationSettings
    result: LaserResult


def laser_parameters(tissues: TissueTable, devices: DeviceTable) -> list[Parameter]:
    params = table_parameters("device.laser.", devices.laser)
    for name in tissues.tissue_names:
        t = tissues.tissues[name]
        for group in ("optical_1064nm", "thermal"):
            params += table_parameters(f"tissue.{name}.{group}.", getattr(t, group))
    params += table_parameters("blood.", tissues.blood)
    d = tissues.damage
    params += table_parameters(
        "damage.",
        [
            (k, getattr(d, k))
            for k in (
                "arrhenius_a_per_s",
                "arrhenius_ea_j_per_mol",
                "arrhenius_omega_threshold",
                "cem43_threshold_min",
            )
        ],
    )
    from hepablate.evaluation.defaults import load_planning_defaults

    return params + load_planning_defaults().parameters()


def laser_refs(devices: DeviceTable, safety_mm: float) -> dict[str, float]:
    """The references laser criteria are held to."""
    return {
        "device_tip_charring_c": devices.laser.tip_charring_c.value,
        "required_path_clearance_mm": safety_mm,
    }


class LaserModality:
    name = "laser"
    label = "laser"

    @property
    def options_model(self) -> type:
        from hepablate.optimize.laser import LaserPlanOptions

        return LaserPlanOptions

    def plan(
        self,
        case: Case,
        options: Any,
        *,
        tissues: TissueTable,
        devices: DeviceTable,
        progress: Progress | None,
        command: str,
    ) -> Evaluation:
        from hepablate.optimize.laser import plan_laser

        return plan_laser(
            case, options, tissues=tissues, devices=devices, progress=progress, command=command
        )

    def run_engine(
        self,
        case: Case,
        plan: Plan,
        settings: EvaluationSettings,
        *,
        tissues: TissueTable,
        devices: DeviceTable,
        progress: Progress | None,
        engine: Any,
        source: str | None,
    ) -> EngineRun:
        if plan.probes or plan.pairs:
            raise InputError(
                "a laser plan has fibres and illuminations, not probes or pairs",
                source=source,
                field="probes" if plan.probes else "pairs",
            )
        sim = plan.laser_simulation or LaserSimulationSettings()
        shots = resolve_protocol(plan.fibres, plan.illuminations, devices, source)
        tips = emitting_ends(shots)
        lo, hi = domain_box(case, tips, sim)
        grid, grid_note = evaluation_grid(
            case.grid, plan.grid, sim.grid_spacing_mm, lo, hi, tips, GRID_CLEARANCE_MM, source
        )
        known = engine if isinstance(engine, KnownRun) else None
        if (
            known is not None
            and known.fingerprint == plan_fingerprint(plan)
            and known.settings == sim
            and known.result.grid.same_geometry(grid)
        ):
            res = known.result
        else:
            res = simulate_laser(
                case,
                plan.fibres,
                plan.illuminations,
                settings=sim,
                tissues=tissues,
                devices=devices,
                progress=progress,
                source=source,
                domain=build_domain(case, tips, sim, tissues, grid),
            )
        warnings, metrics = safety_warnings(res, tissues, devices)
        metrics["tip_max_c"] = max(res.tip_max_c.values(), default=float("nan"))
        metrics["critical_thermal_damage_ml"] = float(
            sum(v for k, v in metrics.items() if k.startswith("critical_damage_ml."))
        )
        metrics["temperature_max_c"] = float(res.tmax_c.max())
        metrics["total_energy_j"] = float(sum(s.power_w * s.duration_s for s in res.shots))
        if sim.optical_sensitivity:
            sens, band = optical_sensitivity(case, plan, sim, tissues, devices, source)
            metrics.update(band)
            warnings.append(zone_uncertainty_note(band, sim.perfusion))
            for name, vals in sens.items():
                for k, v in vals.items():
                    metrics[f"sensitivity.{name}.{k}"] = v
            vols = [v["ablation_volume_ml"] for v in sens.values()]
            nom = sens["nominal"]["ablation_volume_ml"]
            if nom > 0:
                metrics["sensitivity.volume_range_pct"] = round(
                    100 * (max(vols) - min(vols)) / nom, 1
                )
        safety = float(settings.path_safety_distance_mm or 0.0)
        clearance, path_w = needle_clearances(
            case,
            [
                (f"fibre {f.id}", np.asarray(f.tip_lps_mm), np.asarray(f.direction_lps))
                for f in plan.fibres
            ],
            safety,
        )
        warnings += path_w
        if clearance is not None:
            metrics["min_path_clearance_mm"] = clearance
        warnings += tract_warnings(case, plan)
        warnings += energy_warnings(plan, devices)
        ills = [
            il.model_copy(update={"energy_j": round(il.power_w * il.duration_s, 3)})
            for il in plan.illuminations
        ]
        notes = []
        if grid_note:
            notes.append(PlanWarning(level="info", code="grid_rebuilt", message=grid_note))
        return EngineRun(
            plan=plan.model_copy(update={"illuminations": ills, "laser_simulation": sim}),
            grid=res.grid,
            structures=res.structures,
            zone=res.zone,
            maps={
                "temperature_max_c": res.tmax_c.astype(np.float32),
                "thermal_omega": np.asarray(res.omega, np.float32),
            },
            metrics=metrics,
            warnings=warnings,
            refs=laser_refs(devices, safety),
            parameters=laser_parameters(tissues, devices),
            details=res,
            notes=notes,
        )

    def assess(
        self,
        case: Case,
        run: EngineRun,
        region: np.ndarray,
        zone_metrics: ZoneMetrics,
        settings: EvaluationSettings,
    ) -> Assessment:
        p = coverage_probability(
            run.zone,
            region,
            float(run.grid.spacing_mm[0]),
            float(settings.placement_error_mm or 0.0),
            int(settings.monte_carlo_samples or 0),
            float(settings.required_coverage or 0.0),
            settings.seed,
        )
        return Assessment(coverage_probability=None if math.isnan(p) else p)

    def write_outputs(
        self, out_dir: Path, case: Case, evaluation: Evaluation, *, report: bool
    ) -> list[Path]:
        from hepablate.modalities.outputs import write_plan_and_volumes

        written = write_plan_and_volumes(out_dir, case, evaluation, label="laser ablation zone")
        if report:
            from hepablate.report.laser import write_laser_report

            written += write_laser_report(out_dir, case, evaluation)
        return written


MODALITY = LaserModality()

__all__ = ["MODALITY", "KnownRun", "LaserModality", "laser_parameters"]


def zone_uncertainty_note(band: dict[str, float], perfusion: bool) -> PlanWarning:
    """The confident and possible zones of the parameter-range runs, as an info note."""
    from hepablate.evaluation.defaults import load_planning_defaults

    p_conf = load_planning_defaults().confident_zone_fraction.value
    props = "mu_a, mu_s' and perfusion" if perfusion else "mu_a and mu_s'"
    return PlanWarning(
        level="info",
        code="zone_uncertainty",
        message=f"over the tissue-table ranges of {props} (each end, one at a time: "
        f"{band['parameter_runs']:.0f} runs on a grid of at least 2.5 mm) the zone ablated in at "
        f"least {100 * p_conf:.0f} % of runs (confident zone, {band['confident_zone_ml']:.1f} ml) "
        f"covers {100 * band['confident_target_coverage']:.1f} % of tumour plus margin and "
        f"{100 * band['confident_tumour_coverage']:.1f} % of the tumour; the zone ablated in any "
        f"(possible zone, {band['possible_zone_ml']:.1f} ml) covers "
        f"{100 * band['possible_target_coverage']:.1f} %; charring and drying not modelled",
    )


def energy_warnings(plan: Plan, devices: DeviceTable) -> list[PlanWarning]:
    """Energy per fibre per illumination step against the practice range of devices.yaml
    `laser.energy_j` (1200 to 1800 J; PARAMETERS.md, Echolaser-type practice): above it a
    warning (beyond the published series: the model's zone there is an extrapolation, and
    charring and vaporisation, which it does not model, grow with energy), below it a note
    (a smaller zone than the series the practice range comes from)."""
    rng = devices.laser.energy_j.range
    if rng is None:
        return []
    lo, hi = (float(x) for x in rng)
    above = [il for il in plan.illuminations if il.power_w * il.duration_s > hi + 1e-6]
    below = [il for il in plan.illuminations if il.power_w * il.duration_s < lo - 1e-6]
    out = []
    checks: list[tuple[Literal["warning", "info"], str, list[Illumination], str]] = [
        ("warning", "energy_above_practice", above, "above"),
        ("info", "energy_below_practice", below, "below"),
    ]
    for level, code, ills, word in checks:
        if not ills:
            continue
        e = [il.power_w * il.duration_s for il in ills]
        worst = max(e) if word == "above" else min(e)
        il = ills[e.index(worst)]
        out.append(
            PlanWarning(
                level=level,
                code=code,
                message=f"{len(ills)} of {len(plan.illuminations)} illuminations deliver "
                f"energy {word} the {lo:g} to {hi:g} J practice range per fibre and step "
                f"({worst:.0f} J, fibre {il.fibre} step {il.step}; devices.yaml laser.energy_j)",
            )
        )
    return out


def tract_warnings(case: Case, plan: Plan) -> list[PlanWarning]:
    """A warning per fibre that crosses less normal liver before the tumour than required
    (planning.yaml `laser_min_liver_path_mm`, or the plan's planning option): the fibre would
    sit in or next to the capsule (issue 12)."""
    from hepablate.evaluation.defaults import load_planning_defaults
    from hepablate.placement.tract import check_liver_tract

    if "liver" not in case.structures:
        return []
    opts = plan.planning.options if plan.planning is not None else {}
    req = opts.get("min_liver_path_mm")
    if req is None:
        req = load_planning_defaults().laser_min_liver_path_mm.value
    out = []
    for f in plan.fibres:
        chk = check_liver_tract(
            case, np.asarray(f.tip_lps_mm), np.asarray(f.direction_lps), float(req), f"fibre {f.id}"
        )
        if not chk.ok:
            out.append(PlanWarning(level="warning", code="liver_tract_short", message=chk.message))
    return out
