"""The one result type of an evaluated plan, and the part of `evaluate` every modality shares.

A modality's engine turns a plan into an `EngineRun` (zone, maps, its own metrics and
warnings on the evaluation grid); `assemble_evaluation` adds what does not depend on the
modality: the target region and zone metrics (`evaluate_zone`), the criteria table
(criteria.yaml), the status by the one rule of `plan_status`, the planning record check, the
grid record and provenance. Everything a plan reports is recomputed from the plan itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hepablate.case.model import Case
from hepablate.core.provenance import Parameter, build_provenance, case_input_files
from hepablate.core.volume import Volume
from hepablate.evaluation.criteria import (
    CriteriaTable,
    criteria_warnings,
    evaluate_criteria,
    plan_status,
)
from hepablate.evaluation.metrics import ZoneMetrics, evaluate_zone, target_region
from hepablate.plans.model import (
    EvaluationSettings,
    Metrics,
    Plan,
    PlanWarning,
    plan_fingerprint,
)


@dataclass
class EngineRun:
    """What a modality's engine made of a plan, on the evaluation grid (arrays k, j, i)."""

    plan: Plan
    """The plan with its per-element results filled (pair currents and spacings, energies)
    and its engine settings made explicit."""
    grid: Volume
    structures: dict[str, np.ndarray]
    zone: np.ndarray
    maps: dict[str, np.ndarray]
    """Named float maps: field_max_v_per_cm, temperature_max_c, thermal_omega, ..."""
    metrics: dict[str, float]
    """Modality metrics (max_current_a, temperature_max_c, tip_max_c, ...); criteria read them."""
    warnings: list[PlanWarning]
    refs: dict[str, float]
    """References the criteria may be held to (device limits)."""
    parameters: list[Parameter]
    details: Any = None
    """The engine's own results (per-cycle IreResult list, LaserResult)."""
    notes: list[PlanWarning] = field(default_factory=list)


@dataclass
class Assessment:
    """What a modality adds once the target region and zone metrics are known."""

    coverage_probability: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    warnings: list[PlanWarning] = field(default_factory=list)
    reason_details: dict[str, str] = field(default_factory=dict)
    """Criterion code -> text appended to its message in the status reason (e.g. where and
    why the target stays uncovered)."""


@dataclass(frozen=True)
class Evaluation:
    """An evaluated plan with the volumes behind its numbers (evaluation grid, LPS mm).

    `plan` holds every reported number (metrics, criteria table, warnings, status, grid,
    provenance); `zone`, `region` and `maps` are the arrays they were computed from."""

    plan: Plan
    grid: Volume
    structures: dict[str, np.ndarray]
    region: np.ndarray
    zone: np.ndarray
    maps: dict[str, np.ndarray]
    zone_metrics: ZoneMetrics | None
    case: Case
    refs: dict[str, float] = field(default_factory=dict)
    """The references the criteria were held to (device limits, thresholds, margins)."""
    details: Any = None

    @property
    def status(self) -> str:
        return self.plan.status

    @property
    def metrics(self) -> Metrics:
        return self.plan.metrics

    @property
    def warnings(self) -> list[PlanWarning]:
        return self.plan.warnings

    def delivery_text(self) -> str:
        """What the plan delivers, in a few words."""
        p = self.plan
        parts = []
        if p.probes:
            parts.append(
                f"{len(p.probes)} probe positions in {len({q.cycle for q in p.probes})} "
                f"cycle(s), {len(p.pairs)} pulse trains"
            )
        if p.fibres:
            parts.append(
                f"{len(p.fibres)} fibres, {len({i.step for i in p.illuminations})} steps, "
                f"{len(p.illuminations)} illuminations"
            )
        return ", ".join(parts) or "nothing to deliver"

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (what `--json` prints)."""
        p = self.plan
        return {
            "modality": p.modality,
            "status": p.status,
            "status_reason": p.status_reason,
            "zone_volume_ml": p.metrics.ablation_volume_ml,
            "metrics": p.metrics.model_dump(),
            "criteria": [r.model_dump() for r in p.criteria],
            "warnings": [w.model_dump() for w in p.warnings],
            "pairs": [
                {
                    "cycle": q.cycle,
                    "anode": q.anode,
                    "cathode": q.cathode,
                    "voltage_v": q.voltage_v,
                    "current_a": q.predicted_current_a,
                }
                for q in p.pairs
            ],
            "illuminations": [i.model_dump() for i in p.illuminations],
            "grid_size_ijk": list(self.grid.shape_ijk),
            "runtime_s": p.runtime_s,
        }

    def volume(self, name: str = "zone") -> Volume:
        """`zone` (uint8), `region` (uint8) or a named map (float32) as a Volume."""
        if name in ("zone", "region"):
            arr = self.zone if name == "zone" else self.region
            return self.grid.with_array(np.asarray(arr, np.uint8))
        return self.grid.with_array(np.asarray(self.maps[name], np.float32))


def _r(x: float, nd: int) -> float:
    return round(float(x), nd)


def zone_metric_values(zm: ZoneMetrics, tumour_ml: float) -> dict[str, float]:
    """The zone metrics by name, as the criteria and `Metrics.extra` read them."""
    d = zm.to_dict()
    d["uncovered_tumour_ml"] = max(0.0, tumour_ml * (1.0 - zm.tumour_coverage))
    return d


def assemble_evaluation(
    case: Case,
    run: EngineRun,
    settings: EvaluationSettings,
    table: CriteriaTable,
    assess: Callable[[np.ndarray, ZoneMetrics], Assessment],
    *,
    started_s: float,
    command: str = "",
    inputs: dict[str, Any] | None = None,
) -> Evaluation:
    """Target region, zone metrics, the modality's assessment, criteria, status and the
    evaluated plan (see the module docstring). `settings` must be resolved (no nulls)."""
    from hepablate.physics.grid import grid_spec

    sp = run.grid.spacing_mm
    region = target_region(run.structures, case.target_key, case.margin_mm, sp)
    zm = evaluate_zone(run.zone, run.structures, case.target_key, case.margin_mm, sp, region=region)
    tumour_ml = float(np.count_nonzero(run.structures[case.target_key])) * run.grid.voxel_volume_ml
    a = assess(region, zm)
    values: dict[str, float | None] = {
        **zone_metric_values(zm, tumour_ml),
        **run.metrics,
        **a.metrics,
        "coverage_probability": a.coverage_probability,
        "placement_error_mm": settings.placement_error_mm,
    }
    refs = {
        **run.refs,
        "required_coverage": float(settings.required_coverage or 0.0),
        "required_margin_mm": float(case.margin_mm),
    }
    rows = evaluate_criteria(table, run.plan.modality, values, refs)
    detailed = run.warnings + a.warnings
    warnings = criteria_warnings(table, rows, detailed) + detailed
    planning = run.plan.planning
    if planning is not None and planning.fingerprint != plan_fingerprint(run.plan):
        warnings.append(
            PlanWarning(
                level="info",
                code="planning_record_dropped",
                message=f"the placement or protocol differs from what {planning.planner} "
                "planned: its search record and notes no longer apply and were left out",
            )
        )
        planning = None
    warnings += run.notes
    status, reasons = plan_status(table, rows, warnings)
    failed = {r.code: r.message for r in rows if not r.passed}
    for code, text in a.reason_details.items():
        if code in failed and text:
            reasons = [f"{m}; {text}" if m == failed[code] else m for m in reasons]
    if status == "infeasible" and planning is not None:
        # What the planner could not do about it (limits searched within, raises refused),
        # while the plan is still the planner's.
        reasons += [w.message for w in planning.notes if w.code == "search_summary"]
    extra = {
        k: _r(v, 4)
        for k, v in values.items()
        if v is not None
        and k
        not in {
            "target_coverage",
            "tumour_coverage",
            "min_margin_mm",
            "ablation_volume_ml",
            "non_target_liver_ml",
            "coverage_probability",
        }
        and math.isfinite(v)
    }
    p_cov = a.coverage_probability
    metrics = Metrics(
        target_coverage=_r(zm.target_coverage, 4),
        tumour_coverage=_r(zm.tumour_coverage, 4),
        min_margin_mm=_r(zm.min_margin_mm, 2) if math.isfinite(zm.min_margin_mm) else None,
        ablation_volume_ml=_r(zm.ablation_volume_ml, 3),
        non_target_liver_ml=_r(zm.non_target_liver_ml, 3),
        coverage_probability=None if p_cov is None or math.isnan(p_cov) else _r(p_cov, 4),
        extra=extra,
    )
    files = case_input_files(case)
    files.update({k: v for k, v in (inputs or {}).items() if v is not None})
    params = [*run.parameters, *table.parameters()]
    from hepablate.placement.approach import approach_parameters

    opts = run.plan.planning.options if run.plan.planning is not None else {}
    params += approach_parameters(opts.get("patient_position"))
    params += [
        Parameter(name=f"evaluation.{k}", value=v, source="plan evaluation settings")
        for k, v in settings.model_dump().items()
    ]
    plan = run.plan.model_copy(
        update={
            "evaluation": settings,
            "grid": grid_spec(run.grid),
            "metrics": metrics,
            "criteria": rows,
            "warnings": warnings,
            "planning": planning,
            "status": status,
            "status_reason": "; ".join(reasons),
            "runtime_s": round(time.perf_counter() - started_s, 2),
            "provenance": build_provenance(command=command, inputs=files, parameters=params),
        }
    )
    return Evaluation(
        plan, run.grid, run.structures, region, run.zone, run.maps, zm, case, refs, run.details
    )


def nothing_delivered(
    case: Case,
    plan: Plan,
    grid: Volume,
    structures: dict[str, np.ndarray],
    why: PlanWarning,
    refs: dict[str, float],
    parameters: list[Parameter],
    *,
    command: str = "",
) -> Evaluation:
    """The evaluation of a plan that delivers nothing (its planner found no placement): an
    empty zone on `grid`, with the planner's statement `why` as the error that makes it
    infeasible. (`evaluate` itself refuses such a plan: there is nothing to simulate.)"""
    from hepablate.evaluation.criteria import load_criteria
    from hepablate.pipeline import resolve_settings

    t0 = time.perf_counter()
    table = load_criteria()
    run = EngineRun(
        plan=plan,
        grid=grid,
        structures=structures,
        zone=np.zeros(grid.array.shape, dtype=bool),
        maps={},
        metrics={},
        warnings=[why],
        refs=refs,
        parameters=parameters,
    )
    return assemble_evaluation(
        case,
        run,
        resolve_settings(plan.evaluation, table),
        table,
        lambda region, zm: Assessment(),
        started_s=t0,
        command=command,
    )
