"""The library's entry points: plan a case, evaluate a plan, write the outputs.

    case = hepablate.load_case("examples/ire-perihilar")
    ev = hepablate.plan(case, "ire", grid_spacing_mm=2.0)
    plan = ev.plan.model_copy(deep=True); plan.pairs[0].voltage_v = 2400
    ev2 = hepablate.evaluate(case, plan)
    hepablate.write_outputs(ev2, "out/edited")

`evaluate` is the one evaluation every caller uses (the planner's final confirmation,
`hepablate simulate`, the reports, the web application, batch runs): it runs the modality's
engine on the plan and recomputes every metric, criterion, warning, the status and the
provenance from the plan alone (docs/python-api.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hepablate.anatomy.tissues import TissueTable, load_tissue_table
from hepablate.case.model import Case
from hepablate.core.progress import Progress
from hepablate.devices.catalog import DeviceTable, load_device_table
from hepablate.errors import input_error_from_validation
from hepablate.evaluation.criteria import CriteriaTable, load_criteria
from hepablate.evaluation.defaults import load_planning_defaults
from hepablate.evaluation.evaluation import Evaluation, assemble_evaluation
from hepablate.modalities import get_modality
from hepablate.plans.model import EvaluationSettings, Plan


def resolve_settings(
    settings: EvaluationSettings | None, table: CriteriaTable | None = None
) -> EvaluationSettings:
    """`settings` with every null replaced by its data-file default (criteria.yaml,
    planning.yaml)."""
    s = settings or EvaluationSettings()
    table = table or load_criteria()
    d = load_planning_defaults()
    return s.model_copy(
        update={
            "required_coverage": s.required_coverage
            if s.required_coverage is not None
            else table.required_coverage.value,
            "placement_error_mm": s.placement_error_mm
            if s.placement_error_mm is not None
            else d.placement_error_mm.value,
            "monte_carlo_samples": s.monte_carlo_samples
            if s.monte_carlo_samples is not None
            else d.monte_carlo_samples.value,
            "path_safety_distance_mm": s.path_safety_distance_mm
            if s.path_safety_distance_mm is not None
            else d.path_safety_distance_mm.value,
        }
    )


def evaluate(
    case: Case,
    plan: Plan,
    *,
    tissues: TissueTable | None = None,
    devices: DeviceTable | None = None,
    criteria: CriteriaTable | None = None,
    progress: Progress | None = None,
    engine: Any = None,
    command: str = "",
    source: str | Path | None = None,
) -> Evaluation:
    """Evaluate `plan` on `case` with its modality's engine (see the module docstring).

    `engine` may be a modality engine kept from an earlier call on the same case (e.g. the
    planner's `IreSession`): remembered solutions are reused, with identical results.
    `source` names the plan file in error messages and provenance. Raises InputError for a
    plan that cannot be evaluated (nothing is returned half-done)."""
    t0 = time.perf_counter()
    mod = get_modality(plan.modality)
    tissues = tissues or load_tissue_table()
    devices = devices or load_device_table()
    table = criteria or load_criteria()
    settings = resolve_settings(plan.evaluation, table)
    src = None if source is None else str(source)
    run = mod.run_engine(
        case,
        plan,
        settings,
        tissues=tissues,
        devices=devices,
        progress=progress,
        engine=engine,
        source=src,
    )
    return assemble_evaluation(
        case,
        run,
        settings,
        table,
        lambda region, zm: mod.assess(case, run, region, zm, settings),
        started_s=t0,
        command=command,
        inputs={"plan": source} if source is not None else None,
    )


def plan(
    case: Case,
    modality: str = "ire",
    options: Any = None,
    *,
    tissues: TissueTable | None = None,
    devices: DeviceTable | None = None,
    progress: Progress | None = None,
    command: str = "",
    **option_values: Any,
) -> Evaluation:
    """Plan `case` with the modality's planner; returns `evaluate`'s result for the chosen
    plan (an infeasible target gives an infeasible plan with its reason, not an exception).
    Options are the modality's options model (`IrePlanOptions`, `LaserPlanOptions`) or its
    fields as keyword arguments, e.g. ``plan(case, "ire", grid_spacing_mm=2.0, robust=True)``."""
    from pydantic import ValidationError

    mod = get_modality(modality)
    if options is None:
        try:
            options = mod.options_model(**option_values)
        except ValidationError as exc:
            raise input_error_from_validation(exc, default_field="options") from None
    return mod.plan(
        case,
        options,
        tissues=tissues or load_tissue_table(),
        devices=devices or load_device_table(),
        progress=progress,
        command=command,
    )


def write_outputs(
    evaluation: Evaluation, out_dir: str | Path, *, report: bool = True
) -> list[Path]:
    """Write an evaluation's files into `out_dir`, atomically (all or nothing): plan.json,
    zone.nii.gz and the maps, zone_seg.dcm for DICOM cases, report.html and report.pdf.
    Returns the paths as they are once written."""
    from hepablate.core.output import atomic_output_dir

    out = Path(out_dir)
    mod = get_modality(evaluation.plan.modality)
    with atomic_output_dir(out) as tmp:
        written = mod.write_outputs(tmp, evaluation.case, evaluation, report=report)
    return [out / p.relative_to(tmp) for p in written]
