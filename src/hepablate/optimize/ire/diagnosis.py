"""What a plan says about itself: warnings from the engine's results, the protocol and the
planner's thermal choices, and the reason of an infeasible plan. Plain functions of their
inputs (a confirmed plan, the limits, what the search recorded), usable outside the search."""

from __future__ import annotations

import numpy as np

from hepablate.core.volume import Volume
from hepablate.optimize.ire.model import ConfirmedPlan, probes_key
from hepablate.optimize.ire.options import Limits
from hepablate.optimize.ire.shortfall import ShortfallGroup, describe_shortfall
from hepablate.plans.model import PlanWarning

# ---- warnings --------------------------------------------------------------------------------


def engine_warnings(
    conf: ConfirmedPlan,
    structures: dict[str, np.ndarray],
    voxel_volume_ml: float,
    thermal_damage_omega: float,
) -> list[PlanWarning]:
    """The engine's warnings of every cycle (said which cycle, once each), and predicted
    thermal damage in vessel or duct lumen if the engine did not warn of it."""
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
        thr = float(thermal_damage_omega)
        from hepablate.evaluation import lumen_mask

        lum = lumen_mask(structures)
        hit = (np.asarray(conf.thermal_omega) >= thr) & lum
        if hit.any():
            out.append(
                PlanWarning(
                    level="warning",
                    code="thermal_damage_vessel_duct",
                    message=f"predicted thermal damage (Omega >= {thr:g}) in "
                    f"{hit.sum() * voxel_volume_ml:.3f} ml of vessel/duct lumen; "
                    "consider fewer pulses per train or longer pauses",
                )
            )
    return out


def protocol_warnings(conf: ConfirmedPlan, lim: Limits) -> list[PlanWarning]:
    """Pairs below or above the V/cm spacing rule, and plans of several cycles."""
    out = []
    seen = set()
    for p in conf.pairs:
        if (p.cycle, p.anode, p.cathode) in seen:
            continue  # a pair delivered as two trains
        seen.add((p.cycle, p.anode, p.cathode))
        if p.spacing_mm and p.voltage_v / (p.spacing_mm / 10) < 0.98 * lim.v_per_cm_low:
            out.append(
                PlanWarning(
                    level="info",
                    code="voltage_below_rule",
                    message=f"cycle {p.cycle} {p.anode}-{p.cathode}: {p.voltage_v:.0f} V over "
                    f"{p.spacing_mm:.1f} mm = {p.voltage_v / (p.spacing_mm / 10):.0f} V/cm, below "
                    f"the {lim.v_per_cm_low:.0f} V/cm rule",
                )
            )
        if p.spacing_mm and p.voltage_v / (p.spacing_mm / 10) > lim.v_per_cm_high + 1:
            out.append(
                PlanWarning(
                    level="info",
                    code="voltage_above_rule",
                    message=f"cycle {p.cycle} {p.anode}-{p.cathode}: {p.voltage_v:.0f} V over "
                    f"{p.spacing_mm:.1f} mm = {p.voltage_v / (p.spacing_mm / 10):.0f} V/cm, above "
                    f"the {lim.v_per_cm_low:.0f}-{lim.v_per_cm_high:.0f} V/cm rule",
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


def thermal_plan_warnings(
    best: ConfirmedPlan,
    attempts: int,
    *,
    thermal_damage_omega: float,
    refusals: list[dict],
    fallbacks: list[ConfirmedPlan],
    split_train_trials: float = 0,
) -> list[PlanWarning]:
    """What the planner did about predicted thermal damage at vessels and ducts (the
    engine's own thermal warnings are kept as they are): trains split in two, voltage
    raises refused (`refusals`, `fallbacks`: the search record's), and damage it could not
    avoid."""
    out: list[PlanWarning] = []
    thr = float(thermal_damage_omega)
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
    is_fallback = any(best is f for f in fallbacks)
    key = probes_key(best.probes)
    seen = set()
    for r in refusals:
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
        if split_train_trials:
            tried.append("trains split in two")
        if refusals:
            tried.append(f"{len(refusals)} voltage raise(s) refused")
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


def shortfall_warnings(
    groups: list[ShortfallGroup], threshold_v_per_cm: float, safety_mm: float
) -> list[PlanWarning]:
    """One warning per shortfall next to a vessel, duct or other no-go structure."""
    return [
        PlanWarning(
            level="warning",
            code="shortfall_near_structure",
            message=describe_shortfall([g], threshold_v_per_cm, safety_mm),
        )
        for g in groups
        if g.structure is not None
    ]


# ---- the reason of an infeasible plan --------------------------------------------------------


def spacing_text(lim: Limits, pair_max_mm: float) -> str:
    """The layout spacing range, and why its top is below the device's (`pair_max_mm`: the
    widest energised pair the search allowed in the end)."""
    txt = f"spacing {lim.spacing_min_mm:g}-{lim.spacing_max_mm:g} mm"
    dev = lim.spacing_device_max_mm
    if dev is not None and dev > lim.spacing_max_mm + 1e-9:
        txt += (
            f" (the device allows {dev:g} mm, but {lim.max_voltage_v:g} V give the "
            f"{lim.v_per_cm_low:g} V/cm rule only up to {lim.spacing_max_mm:g} mm"
            + (
                f"; cell diagonals up to {dev:g} mm energised"
                if pair_max_mm > lim.spacing_max_mm + 1e-9
                else ""
            )
            + ")"
        )
    return txt


def no_layout_reason(
    *,
    grid: Volume,
    region: np.ndarray,
    region_pts: np.ndarray,
    tumour: np.ndarray,
    lim: Limits,
    pair_max_mm: float,
    max_cycles: int,
    safety_mm: float,
    blocked: dict[str, int],
    direction_found: bool,
) -> str:
    """Why no layout was confirmed at all: no straight needle path reaches the target
    (`direction_found` False), or what stopped the layouts (`blocked`: reason -> count);
    with how much target that leaves uncovered (`region_pts`: LPS mm of the region's voxels)."""
    vox = grid.voxel_volume_ml
    ext = region_pts.max(axis=0) - region_pts.min(axis=0) + grid.spacing_mm
    tumour_ml = float(np.count_nonzero(tumour)) * vox
    whole = (
        f"the whole target is left uncovered ({float(region.sum()) * vox:.1f} ml of "
        f"tumour plus margin, {tumour_ml:.1f} ml of it tumour, extent "
        f"{ext[0]:.0f} x {ext[1]:.0f} x {ext[2]:.0f} mm)"
    )
    if not direction_found:
        return f"no straight needle path from the body surface reaches the target: {whole}"
    why = ", ".join(
        f"{k} ({n} layout{'s' if n > 1 else ''})"
        for k, n in sorted(blocked.items(), key=lambda kv: -kv[1])
    )
    return (
        f"no layout of {lim.probes_min}-{lim.probes_max} parallel probes with "
        f"{spacing_text(lim, pair_max_mm)}, in at most {max_cycles} cycles, has needle "
        f"paths clear of no-go structures by {safety_mm:g} mm and covers the target: "
        f"{whole}" + (f"; layouts were stopped by: {why}" if why else "")
    )


def infeasible_reason(
    best: ConfirmedPlan,
    *,
    groups: list[ShortfallGroup] | None,
    over: list[int],
    required: float,
    lim: Limits,
    pair_max_mm: float,
    max_cycles: int,
    safety_mm: float,
    refusals: list[dict],
) -> str:
    """Why the best plan is not acceptable: how much it leaves uncovered (`groups`: where,
    None if it meets the coverage requirement), pairs at the generator limit, voltage raises
    refused for thermal damage, pairs over the current limit (`over`)."""
    parts = []
    if groups is not None:
        where = describe_shortfall(groups, lim.threshold_v_per_cm, safety_mm)
        parts.append(
            f"best plan covers {100 * best.metrics.target_coverage:.1f} % of tumour plus "
            f"margin and {100 * best.metrics.tumour_coverage:.1f} % of the tumour "
            f"({best.metrics.uncovered_target_ml:.2f} ml left uncovered; "
            f"{100 * required:.0f} % required) within the device limits "
            f"({lim.probes_max} probes, {spacing_text(lim, pair_max_mm)}, "
            f"{lim.max_voltage_v:g} V, {lim.max_current_a:g} A, "
            f"{max_cycles} cycles; the plan uses "
            f"{len({p.cycle for p in best.probes})} cycle(s) of "
            f"{len({p.id for p in best.probes})} probes)" + (f"; {where}" if where else "")
        )
        keys = {(p.cycle, p.anode, p.cathode): p for p in best.pairs}
        at_cap = sum(p.voltage_v >= lim.max_voltage_v - 1 for p in keys.values())
        if at_cap:
            parts.append(
                f"{at_cap} of {len(keys)} pairs already at the "
                f"{lim.max_voltage_v:g} V generator limit"
            )
        refused = [r for r in refusals if r["probes"] == probes_key(best.probes)]
        if refused:
            parts.append(
                "voltages not raised further because that predicts thermal damage at "
                + ", ".join(sorted({k for r in refused for k in r["structures"]}))
                + f" (it would cover up to "
                f"{100 * max(r['coverage_refused'] for r in refused):.1f} %)"
            )
    if over:
        parts.append(f"{len(over)} pair(s) exceed the {lim.max_current_a:g} A current limit")
    return "; ".join(parts)
