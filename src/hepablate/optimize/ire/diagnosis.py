"""What a plan says about itself: warnings from the engine's results, the protocol and the
planner's thermal choices, and the reason of an infeasible plan. Plain functions of their
inputs (a confirmed plan, the limits, what the search recorded), usable outside the search."""

from __future__ import annotations

import numpy as np

from hepablate.core.volume import Volume
from hepablate.optimize.ire.model import ConfirmedPlan, probes_key
from hepablate.optimize.ire.options import Limits
from hepablate.plans.model import PlanWarning

# ---- warnings --------------------------------------------------------------------------------


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
    engine's own thermal warnings, and the split trains, are the evaluation's): voltage
    raises refused (`refusals`, `fallbacks`: the search record's), and damage it could not
    avoid."""
    out: list[PlanWarning] = []
    thr = float(thermal_damage_omega)
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


def search_summary(
    best: ConfirmedPlan,
    *,
    lim: Limits,
    pair_max_mm: float,
    max_cycles: int,
    refusals: list[dict],
) -> str:
    """What the search could do for a target it did not cover: the device and layout limits
    it searched within, and the voltage raises it refused for predicted thermal damage (where
    and why the target stays uncovered is the evaluation's to say)."""
    parts = [
        f"the best plan the search found within the device limits ({lim.probes_max} "
        f"probes, {spacing_text(lim, pair_max_mm)}, {lim.max_voltage_v:g} V, "
        f"{lim.max_current_a:g} A, {max_cycles} cycles; the plan uses "
        f"{len({p.cycle for p in best.probes})} cycle(s) of {len({p.id for p in best.probes})} "
        "probes)"
    ]
    refused = [r for r in refusals if r["probes"] == probes_key(best.probes)]
    if refused:
        parts.append(
            "voltages not raised further because that predicts thermal damage at "
            + ", ".join(sorted({k for r in refused for k in r["structures"]}))
            + f" (it would cover up to "
            f"{100 * max(r['coverage_refused'] for r in refused):.1f} %)"
        )
    return "; ".join(parts)
