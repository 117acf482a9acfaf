"""IRE planning as one call: the planner's search (`hepablate.optimize.ire`), then `evaluate`
of the plan it chose, on the planner's own engine (its remembered solutions make the final
evaluation cheap and exact)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hepablate.anatomy.tissues import TissueTable
from hepablate.case.model import Case
from hepablate.core.progress import Progress
from hepablate.devices.catalog import DeviceTable
from hepablate.evaluation.evaluation import EngineRun, Evaluation
from hepablate.modalities.ire.engine import IreSession
from hepablate.physics.grid import grid_spec
from hepablate.physics.ire import IreProblem
from hepablate.plans.model import (
    CaseRef,
    EvaluationSettings,
    IreSimulationSettings,
    Plan,
    PlanningRecord,
    PlanWarning,
    plan_fingerprint,
)

PLANNER = "hepablate IRE planner"
#: Planner warnings that say what the search did (not what the plan is): kept as notes.
NOTE_CODES = frozenset({"thermal_damage_unavoidable", "voltage_raise_refused", "no_layout"})


def case_ref(case: Case) -> CaseRef:
    return CaseRef(
        case_id=case.case_id,
        path=None if case.root is None else str(case.root),
        target=case.target_id,
        margin_mm=case.margin_mm,
    )


def plan_and_evaluate(
    case: Case,
    options: Any,
    *,
    tissues: TissueTable,
    devices: DeviceTable,
    progress: Progress | None,
    command: str,
) -> Evaluation:
    from hepablate.optimize import ire as planner
    from hepablate.pipeline import evaluate

    settings = IreSimulationSettings(grid_spacing_mm=options.grid_spacing_mm)
    problem = planner.default_engine(case, settings, tissues, devices)
    res = planner.plan_ire(
        case,
        options,
        tissues=tissues,
        devices=devices,
        engine=problem,
        progress=progress,
        command=command,
    )
    draft = res.plan
    notes = [w for w in draft.warnings if w.code in NOTE_CODES and w.code != "no_layout"]
    if draft.status == "infeasible" and draft.status_reason and draft.probes:
        notes.append(PlanWarning(level="info", code="planner_summary", message=draft.status_reason))
    ev_settings = EvaluationSettings(
        placement_error_mm=options.placement_error_mm,
        monte_carlo_samples=options.monte_carlo_samples,
        seed=options.seed,
        path_safety_distance_mm=options.safety_distance_mm,
    )
    base = Plan(
        modality="ire",
        case=case_ref(case),
        probes=draft.probes,
        pairs=draft.pairs,
        ire_simulation=settings,
        evaluation=ev_settings,
        grid=grid_spec(problem.grid),
    )
    record = PlanningRecord(
        planner=PLANNER,
        fingerprint=plan_fingerprint(base),
        options=options.model_dump(mode="json"),
        stats={k: float(v) for k, v in res.outcome.stats.items()},
        notes=notes,
    )
    base = base.model_copy(update={"planning": record})
    if not base.probes:
        no_layout = [w for w in draft.warnings if w.code == "no_layout"]
        return _nothing_planned(case, base, problem, no_layout, tissues, devices, command)
    session = IreSession(problem) if isinstance(problem, IreProblem) else None
    return evaluate(case, base, tissues=tissues, devices=devices, engine=session, command=command)


def _nothing_planned(
    case: Case,
    plan: Plan,
    problem: Any,
    reasons: list[PlanWarning],
    tissues: TissueTable,
    devices: DeviceTable,
    command: str,
) -> Evaluation:
    """The evaluation of a plan that delivers nothing (no layout was found): an empty zone,
    with the planner's reason as the error that makes it infeasible."""
    import time

    from hepablate.evaluation.criteria import load_criteria
    from hepablate.evaluation.evaluation import assemble_evaluation
    from hepablate.modalities.ire import ire_parameters, ire_refs
    from hepablate.pipeline import resolve_settings

    table = load_criteria()
    settings = resolve_settings(plan.evaluation, table)
    sim = plan.ire_simulation or IreSimulationSettings()
    run = EngineRun(
        plan=plan,
        grid=problem.grid,
        structures=problem.structures,
        zone=np.zeros(problem.grid.array.shape, dtype=bool),
        maps={},
        metrics={},
        warnings=reasons,
        refs=ire_refs(tissues, devices, sim, float(settings.path_safety_distance_mm or 0.0)),
        parameters=ire_parameters(tissues, devices, sim),
    )
    from hepablate.evaluation.evaluation import Assessment

    return assemble_evaluation(
        case,
        run,
        settings,
        table,
        lambda region, zm: Assessment(),
        started_s=time.perf_counter(),
        command=command,
    )
