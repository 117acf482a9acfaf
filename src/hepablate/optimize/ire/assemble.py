"""`plan_ire`: the search, then `hepablate.evaluate` of the plan it chose.

The search's own account (options, statistics, notes on what it tried) goes into the plan's
planning record; every metric, warning and the status come from the evaluation, on the
search's engine and grid (its remembered cycle results make that evaluation cheap and exact).
"""

from __future__ import annotations

from hepablate.anatomy.tissues import TissueTable, load_tissue_table
from hepablate.case.model import Case
from hepablate.core.progress import Progress
from hepablate.devices.catalog import DeviceTable, load_device_table
from hepablate.errors import InputError
from hepablate.evaluation import load_planning_defaults
from hepablate.evaluation.evaluation import Evaluation, nothing_delivered
from hepablate.optimize.ire.model import IreEngine
from hepablate.optimize.ire.options import IrePlanOptions, limits_from, search_threshold_v_per_cm
from hepablate.optimize.ire.planner import IrePlanner
from hepablate.physics.grid import grid_spec
from hepablate.physics.ire.session import IreSession
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


def default_engine(
    case: Case, settings: IreSimulationSettings, tissues: TissueTable, devices: DeviceTable
) -> IreEngine:
    """The engine problem the planner searches on: the planning grid around the target."""
    from hepablate.physics.ire import IreProblem

    return IreProblem.from_case(case, settings=settings, tissues=tissues, devices=devices)


def plan_ire(
    case: Case,
    options: IrePlanOptions | None = None,
    *,
    tissues: TissueTable | None = None,
    devices: DeviceTable | None = None,
    engine: IreEngine | None = None,
    progress: Progress | None = None,
    command: str = "",
) -> Evaluation:
    """Plan IRE for `case` (see the package docstring) and evaluate the plan; never raises for
    an infeasible target, which comes back as an infeasible plan with the reason."""
    from hepablate.pipeline import evaluate

    opts = options or IrePlanOptions()
    tissues = tissues or load_tissue_table()
    devices = devices or load_device_table()
    if opts.plan_to_confident_zone:
        if engine is not None:
            raise InputError(
                "planning to the confident zone builds its own engines (nominal and "
                "confident thresholds); give no engine",
                field="plan_to_confident_zone",
            )
        from hepablate.optimize.ire.confident import plan_to_confident_zone

        return plan_to_confident_zone(case, opts, tissues, devices, progress, command)
    settings = IreSimulationSettings(grid_spacing_mm=opts.grid_spacing_mm)
    lim = limits_from(devices, search_threshold_v_per_cm(tissues, settings), opts)
    if not case.target_mask.any():
        raise InputError(f"target tumour '{case.target_id}' is empty", field="target")
    session = IreSession(engine or default_engine(case, settings, tissues, devices))
    planner = IrePlanner(case, session, lim, load_planning_defaults(), opts, progress)
    found = planner.run()
    conf = found.confirmed
    plan = Plan(
        modality="ire",
        case=CaseRef.of(case),
        probes=[] if conf is None else conf.probes,
        pairs=[] if conf is None else conf.pairs,
        ire_simulation=settings,
        evaluation=EvaluationSettings(
            required_coverage=opts.required_coverage,
            placement_error_mm=opts.placement_error_mm,
            monte_carlo_samples=opts.monte_carlo_samples,
            seed=opts.seed,
            path_safety_distance_mm=planner.safety_mm,
        ),
        grid=grid_spec(session.grid),
    )
    record = PlanningRecord(
        planner=PLANNER,
        fingerprint=plan_fingerprint(plan),
        options=opts.model_dump(mode="json"),
        stats={k: float(v) for k, v in found.stats.items()},
        notes=found.notes,
    )
    plan = plan.model_copy(update={"planning": record})
    if conf is None:
        from hepablate.modalities.ire import ire_parameters, ire_refs

        return nothing_delivered(
            case,
            plan,
            session.grid,
            session.structures,
            PlanWarning(level="error", code="no_layout", message=found.reason),
            ire_refs(tissues, devices, settings, planner.safety_mm),
            ire_parameters(tissues, devices, settings),
            command=command,
        )
    return evaluate(
        case,
        plan,
        tissues=tissues,
        devices=devices,
        engine=session,
        command=command,
    )
