"""Irreversible electroporation: the planner (`hepablate.optimize.ire`), the engine run of a
plan cycle by cycle (`engine`), its diagnosis (`diagnosis`) and its outputs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from hepablate.anatomy.tissues import TissueTable
from hepablate.case.model import Case
from hepablate.core.progress import Progress
from hepablate.core.provenance import Parameter, table_parameters
from hepablate.devices.catalog import DeviceTable
from hepablate.errors import InputError
from hepablate.evaluation.defaults import load_planning_defaults
from hepablate.evaluation.evaluation import Assessment, EngineRun, Evaluation
from hepablate.evaluation.metrics import ZoneMetrics
from hepablate.modalities.ire.diagnosis import (
    engine_warnings,
    protocol_warnings,
    thermal_damage_at_walls,
    vessel_duct_walls,
)
from hepablate.optimize.ire.options import search_threshold_v_per_cm
from hepablate.physics.grid import evaluation_grid
from hepablate.physics.ire import IreProblem
from hepablate.physics.ire.session import IreSession, simulate_cycles
from hepablate.physics.ire.validate import probe_axis
from hepablate.placement.geometry import probe_spacing_mm
from hepablate.placement.paths import needle_clearances
from hepablate.plans.model import (
    EvaluationSettings,
    IreSimulationSettings,
    Plan,
    Probe,
)

#: A recorded grid is kept while every electrode's active part lies at least this far (mm)
#: inside it (docs/plan-format.md, "Grid"); the planner's grid pads the target by 25 mm.
GRID_CLEARANCE_MM = 5.0


def active_points(probes: list[Probe]) -> np.ndarray:
    """Both ends of every probe's active part (LPS mm), shape (2 n, 3)."""
    pts = []
    for p in probes:
        _, start = probe_axis(p)
        pts += [start, np.asarray(p.tip_lps_mm, float)]
    return np.array(pts, float).reshape(-1, 3)


def ire_parameters(
    tissues: TissueTable, devices: DeviceTable, settings: IreSimulationSettings
) -> list[Parameter]:
    params = table_parameters("device.ire.", devices.ire)
    for t in ("liver", "tumour", "blood", "bile"):
        if t in tissues.tissues:
            params += table_parameters(f"tissue.{t}.electrical.", tissues.tissues[t].electrical)
    params.append(
        Parameter(
            name="ire.search_threshold_v_per_cm",
            value=search_threshold_v_per_cm(tissues, settings),
            unit="V/cm",
            source="settings override, else the tissue table IRE threshold (max of liver, tumour)",
        )
    )
    params += [
        Parameter(name=f"ire_simulation.{k}", value=v, source="plan ire_simulation")
        for k, v in settings.model_dump().items()
    ]
    return params + load_planning_defaults().parameters()


def ire_refs(
    tissues: TissueTable, devices: DeviceTable, sim: IreSimulationSettings, safety_mm: float
) -> dict[str, float]:
    """The references IRE criteria and reports are held to (device limits, thresholds)."""
    lim = devices.ire
    return {
        "device_max_current_a": lim.max_current_a.value,
        "device_max_voltage_v": lim.max_voltage_v.value,
        "device_pulses_per_group": lim.pulses_per_group.value,
        "search_threshold_v_per_cm": search_threshold_v_per_cm(tissues, sim),
        "required_path_clearance_mm": safety_mm,
    }


class IreModality:
    name = "ire"
    label = "IRE"

    @property
    def options_model(self) -> type:
        from hepablate.optimize.ire import IrePlanOptions

        return IrePlanOptions

    # ---- planning --------------------------------------------------------------------------
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
        from hepablate.optimize.ire import plan_ire

        return plan_ire(
            case, options, tissues=tissues, devices=devices, progress=progress, command=command
        )

    # ---- evaluation ------------------------------------------------------------------------
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
        if plan.fibres or plan.illuminations:
            raise InputError(
                "an IRE plan has probes and pairs, not fibres or illuminations",
                source=source,
                field="fibres" if plan.fibres else "illuminations",
            )
        if not plan.probes:
            raise InputError("an IRE plan needs at least two probes", source=source, field="probes")
        if not plan.pairs:
            raise InputError("the plan has no pairs to deliver", source=source, field="pairs")
        sim = plan.ire_simulation or IreSimulationSettings()
        bbox = case.grid.with_array(case.target_mask).bounding_box_lps_mm()
        if bbox is None:
            raise InputError(f"target tumour '{case.target_id}' is empty", field="target")
        pts = active_points(plan.probes)
        pad = float(sim.roi_padding_mm)
        lo = np.minimum(bbox[0], pts.min(axis=0)) - pad
        hi = np.maximum(bbox[1], pts.max(axis=0)) + pad
        grid, grid_note = evaluation_grid(
            case.grid,
            plan.grid,
            sim.grid_spacing_mm,
            lo,
            hi,
            pts,
            min(GRID_CLEARANCE_MM, pad),
            source,
        )
        session = engine if isinstance(engine, IreSession) else None
        if isinstance(engine, IreProblem):
            session = IreSession(engine)
        if session is None or not session.fits(grid, sim):
            session = IreSession.for_grid(case, grid, sim, tissues, devices)
        session.validate(plan.probes, plan.pairs, source=source)
        runs = simulate_cycles(session, plan.probes, plan.pairs, progress)
        by_id = {(p.cycle, p.id): p for p in plan.probes}
        pairs = [
            p.model_copy(
                update={
                    "spacing_mm": round(
                        probe_spacing_mm(by_id[(p.cycle, p.anode)], by_id[(p.cycle, p.cathode)]),
                        1,
                    )
                }
            )
            for p in runs.pairs
        ]
        voxel_ml = grid.voxel_volume_ml
        omega_thr = load_planning_defaults().thermal_damage_omega.value
        hits, peak = thermal_damage_at_walls(
            runs.thermal_omega, vessel_duct_walls(session.structures), omega_thr, voxel_ml
        )
        results = [r for res in runs.results for r in res.pair_results]
        currents = [abs(r.current_end_of_train_a or r.current_a) for r in results]
        metrics: dict[str, float] = {
            "max_current_a": max(currents) if currents else 0.0,
            "reversible_zone_ml": float(runs.reversible_zone.sum()) * voxel_ml,
            "nonlinear_iterations_max": float(
                max((r.nonlinear_iterations for r in results), default=0)
            ),
        }
        maps: dict[str, np.ndarray] = {"field_max_v_per_cm": runs.field_max_v_per_cm}
        tissue_index = getattr(session.problem, "tissue", None)
        if sim.zone_threshold_v_per_cm is None and tissue_index is not None:
            # The zone under the threshold's uncertainty (modalities/ire/uncertainty.py).
            from hepablate.modalities.ire.uncertainty import band_zones

            p_conf = load_planning_defaults().confident_zone_fraction.value
            conf, poss, _ = band_zones(runs.field_max_v_per_cm, tissue_index, tissues, p_conf)
            maps["zone_confident"] = conf.astype(np.float32)
            maps["zone_possible"] = poss.astype(np.float32)
        if runs.temperature_max_c is not None:
            maps["temperature_max_c"] = runs.temperature_max_c.astype(np.float32)
            metrics["temperature_max_c"] = float(np.max(runs.temperature_max_c))
        if runs.thermal_omega is not None:
            maps["thermal_omega"] = runs.thermal_omega.astype(np.float32)
            dmg_thr = tissues.damage.arrhenius_omega_threshold.value
            metrics["thermal_damage_ml"] = float((runs.thermal_omega >= dmg_thr).sum()) * voxel_ml
            metrics["critical_thermal_damage_ml"] = float(sum(hits.values()))
            metrics["thermal_omega_peak_at_walls"] = peak
            for k, v in hits.items():
                metrics[f"thermal_damage_ml.{k}"] = v
        lim = devices.ire
        lo_v, hi_v = lim.voltage_per_cm_v.value
        warnings = engine_warnings(
            runs.cycles, runs.results, runs.thermal_omega, session.structures, omega_thr, voxel_ml
        )
        warnings += protocol_warnings(plan.probes, pairs, lo_v, hi_v)
        safety = float(settings.path_safety_distance_mm or 0.0)
        clearance, path_w = needle_clearances(
            case,
            [
                (
                    f"cycle {p.cycle} probe {p.id}",
                    np.asarray(p.tip_lps_mm),
                    np.asarray(p.direction_lps),
                )
                for p in plan.probes
            ],
            safety,
            paths=session.paths
            if session.paths is not None
            and session.paths.case is case
            and session.paths.safety_distance_mm == safety
            else None,
        )
        warnings += path_w
        if clearance is not None:
            metrics["min_path_clearance_mm"] = clearance
        notes = []
        if grid_note:
            from hepablate.plans.model import PlanWarning

            notes.append(PlanWarning(level="info", code="grid_rebuilt", message=grid_note))
        new = plan.model_copy(update={"pairs": pairs, "ire_simulation": sim})
        return EngineRun(
            plan=new,
            grid=grid,
            structures=session.structures,
            zone=runs.zone,
            maps=maps,
            metrics=metrics,
            warnings=warnings,
            refs=ire_refs(tissues, devices, sim, safety),
            parameters=ire_parameters(tissues, devices, sim),
            details=runs,
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
        from hepablate.optimize.ire import (
            coverage_probability,
            describe_shortfall,
            shortfall_groups,
        )
        from hepablate.plans.model import PlanWarning

        out = Assessment()
        required = float(settings.required_coverage or 0.0)
        band = band_metrics(run, region, case.target_key)
        out.metrics.update(band)
        if "confident_target_coverage" in band:
            p_conf = load_planning_defaults().confident_zone_fraction.value
            out.warnings.append(
                PlanWarning(
                    level="info",
                    code="zone_uncertainty",
                    message=f"under the lethal-threshold uncertainty (tissues.yaml ranges, "
                    f"triangular about the defaults) the zone ablated in at least "
                    f"{100 * p_conf:.0f} % of samples (confident zone, "
                    f"{band['confident_zone_ml']:.1f} ml) covers "
                    f"{100 * band['confident_target_coverage']:.1f} % of tumour plus margin and "
                    f"{100 * band.get('confident_tumour_coverage', float('nan')):.1f} % of the "
                    "tumour; "
                    f"the zone ablated in at least {100 * (1 - p_conf):.0f} % of them (possible zone, "
                    f"{band['possible_zone_ml']:.1f} ml) covers "
                    f"{100 * band['possible_target_coverage']:.1f} %; conductivity not sampled",
                )
            )
        n_mc = int(settings.monte_carlo_samples or 0)
        if n_mc > 0:
            p, info = coverage_probability(
                run.plan.probes,
                run.plan.pairs,
                run.zone,
                region,
                run.grid,
                float(settings.placement_error_mm or 0.0),
                n_mc,
                required,
                settings.seed,
            )
            out.coverage_probability = p
            out.metrics.update(info)
        if zone_metrics.target_coverage >= required and zone_metrics.tumour_coverage >= 1 - 1e-9:
            return out
        thr = run.refs["search_threshold_v_per_cm"]
        groups = shortfall_groups(
            region,
            run.zone,
            run.maps["field_max_v_per_cm"],
            run.structures,
            case.target_key,
            run.grid.spacing_mm,
        )
        safety = float(settings.path_safety_distance_mm or 0.0)
        for g in groups:
            if g.structure is not None:
                out.warnings.append(
                    PlanWarning(
                        level="warning",
                        code="shortfall_near_structure",
                        message=describe_shortfall([g], thr, safety),
                    )
                )
        parts = [describe_shortfall(groups, thr, safety)]
        keys = {(p.cycle, p.anode, p.cathode): p for p in run.plan.pairs}
        vmax = float(run.refs.get("device_max_voltage_v", math.inf))
        at_cap = sum(p.voltage_v >= vmax - 1 for p in keys.values())
        if at_cap:
            parts.append(f"{at_cap} of {len(keys)} pairs at the {vmax:g} V generator limit")
        text = "; ".join(x for x in parts if x)
        short = zone_metrics.target_coverage < required
        out.reason_details = {"coverage_below_required" if short else "tumour_not_covered": text}
        return out

    # ---- outputs -----------------------------------------------------------------------------
    def write_outputs(
        self, out_dir: Path, case: Case, evaluation: Evaluation, *, report: bool
    ) -> list[Path]:
        from hepablate.modalities.outputs import write_plan_and_volumes

        written = write_plan_and_volumes(out_dir, case, evaluation, label="IRE ablation zone")
        if report:
            from hepablate.report.ire import write_ire_report

            written += write_ire_report(out_dir, case, evaluation)
        return written


def band_metrics(run: EngineRun, region: np.ndarray, target_key: str) -> dict[str, float]:
    """Coverage and volume of the confident and possible zones (the threshold band,
    `hepablate.modalities.ire.uncertainty`), when the run has them."""
    out: dict[str, float] = {}
    tumour = run.structures.get(target_key)
    n_region = int(np.count_nonzero(region))
    for name in ("confident", "possible"):
        m = run.maps.get(f"zone_{name}")
        if m is None:
            continue
        z = np.asarray(m) > 0.5
        out[f"{name}_zone_ml"] = float(np.count_nonzero(z)) * run.grid.voxel_volume_ml
        if n_region:
            out[f"{name}_target_coverage"] = float(np.count_nonzero(z & region)) / n_region
        if tumour is not None and tumour.any():
            out[f"{name}_tumour_coverage"] = float(np.count_nonzero(z & tumour)) / float(
                np.count_nonzero(tumour)
            )
    return out


MODALITY = IreModality()
