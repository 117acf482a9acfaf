"""IRE planning to the confident zone (issue 13 item 4; `IrePlanOptions.plan_to_confident_zone`).

The confident zone is the field at or above each tissue's `confident_zone_fraction` quantile
of its lethal threshold (modalities/ire/uncertainty.py). Planning to it: plan as usual; if the
nominal plan's confident zone already covers the target, keep it; else plan again on a tissue
table whose thresholds are those quantiles (the search and its confirmation then cover the
confident zone), and evaluate that plan with the real table (a fresh engine, so the plan's
nominal zone, band and criteria are those of every other plan). A planning note compares the
two plans (probes, cycles, energised pairs, highest voltage): what the confidence costs.
"""

from __future__ import annotations

import dataclasses

from hepablate.anatomy.tissues import TissueTable
from hepablate.case.model import Case
from hepablate.core.progress import Progress
from hepablate.devices.catalog import DeviceTable
from hepablate.evaluation import load_planning_defaults
from hepablate.evaluation.evaluation import Evaluation
from hepablate.modalities.ire.uncertainty import threshold_quantiles
from hepablate.optimize.ire.options import IrePlanOptions
from hepablate.plans.model import Plan, PlanWarning


def confident_tissues(tissues: TissueTable, p: float) -> TissueTable:
    """`tissues` with every IRE threshold at its p-quantile (ranges kept)."""
    q = threshold_quantiles(tissues, p)
    out = tissues.model_copy(deep=True)
    for i, name in enumerate(out.tissue_names):
        out.tissues[name].electrical.ire_threshold_v_per_cm.value = float(q[i])
    return out


def _summary(plan: Plan) -> str:
    n_probes = len({p.id for p in plan.probes})
    cycles = len({p.cycle for p in plan.probes})
    v_max = max((pr.voltage_v for pr in plan.pairs), default=0.0)
    return f"{n_probes} probes, {cycles} cycle(s), {len(plan.pairs)} pairs, up to {v_max:.0f} V"


def _with_note(ev: Evaluation, note: PlanWarning) -> Evaluation:
    planning = ev.plan.planning
    if planning is None:
        return ev
    planning = planning.model_copy(
        update={
            "notes": [*planning.notes, note],
            "options": {**planning.options, "plan_to_confident_zone": True},
        }
    )
    return dataclasses.replace(ev, plan=ev.plan.model_copy(update={"planning": planning}))


def plan_to_confident_zone(
    case: Case,
    opts: IrePlanOptions,
    tissues: TissueTable,
    devices: DeviceTable,
    progress: Progress | None,
    command: str,
) -> Evaluation:
    """The plan whose confident zone covers the target (see the module docstring)."""
    from hepablate.optimize.ire.assemble import plan_ire
    from hepablate.pipeline import evaluate

    base = opts.model_copy(update={"plan_to_confident_zone": False})
    nominal = plan_ire(case, base, tissues=tissues, devices=devices, progress=progress)
    ev_settings = nominal.plan.evaluation
    if ev_settings is not None and ev_settings.required_coverage is not None:
        required = float(ev_settings.required_coverage)
    else:
        from hepablate.evaluation.criteria import load_criteria

        required = float(load_criteria().required_coverage.value)
    got = nominal.plan.metrics.extra.get("confident_target_coverage")
    if nominal.plan.status != "feasible" or got is None or got >= required:
        why = (
            "the nominal plan is infeasible, so it was not planned further"
            if nominal.plan.status != "feasible"
            else "no confident zone (a fixed zone threshold)"
            if got is None
            else f"the nominal plan's confident zone already covers {100 * got:.1f} % of tumour "
            "plus margin: no extra cost"
        )
        return _with_note(
            nominal,
            PlanWarning(
                level="info", code="confident_zone_planning", message=f"confident zone: {why}"
            ),
        )
    p_conf = load_planning_defaults().confident_zone_fraction.value
    strict = confident_tissues(tissues, p_conf)
    thr = ", ".join(
        f"{n} {strict.tissues[n].electrical.ire_threshold_v_per_cm.value:.0f} V/cm"
        for n in ("liver", "tumour")
        if n in strict.tissues
    )
    conf = plan_ire(case, base, tissues=strict, devices=devices, progress=progress)
    if conf.plan.status != "feasible" or not conf.plan.probes:
        return _with_note(
            nominal,
            PlanWarning(
                level="warning",
                code="confident_zone_planning",
                message=f"no plan covers the confident zone (thresholds {thr}); the nominal "
                f"plan is kept ({_summary(nominal.plan)}), its confident zone covering "
                f"{100 * got:.1f} % of tumour plus margin",
            ),
        )
    final = evaluate(
        case,
        conf.plan,
        tissues=tissues,
        devices=devices,
        progress=progress,
        command=command,
    )
    now = final.plan.metrics.extra.get("confident_target_coverage", float("nan"))
    return _with_note(
        final,
        PlanWarning(
            level="info" if now >= required else "warning",
            code="confident_zone_planning",
            message=f"planned to the confident zone (thresholds {thr}): {_summary(final.plan)} "
            f"instead of the nominal plan's {_summary(nominal.plan)}; the confident zone covers "
            f"{100 * now:.1f} % of tumour plus margin (nominal plan {100 * got:.1f} %)",
        ),
    )
