"""What an IRE evaluation says about a plan beyond the shared criteria: the engine's warnings
by cycle, the protocol against the spacing rule, thermal damage at vessels and ducts, needle
path clearance, and where the target stays below threshold. Each is a function of the plan and
its engine run alone, so re-evaluating a plan gives the same words."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name
from hepablate.evaluation.metrics import lumen_mask
from hepablate.physics.ire import IreResult
from hepablate.plans.model import IrePair, PlanWarning, Probe


def engine_warnings(
    cycles: list[int],
    results: list[IreResult],
    omega: np.ndarray | None,
    structures: dict[str, np.ndarray],
    omega_threshold: float,
    voxel_ml: float,
) -> list[PlanWarning]:
    """The engine's warnings, each once, prefixed with its cycle when there are several; a
    vessel/duct lumen warning when the engine raised no thermal warning of its own."""
    out: list[PlanWarning] = []
    seen = set()
    for cyc, res in zip(cycles, results, strict=True):
        for w in res.warnings:
            if len(cycles) > 1 and not w.message.startswith("cycle "):
                w = w.model_copy(update={"message": f"cycle {cyc}: {w.message}"})
            if (w.code, w.message) not in seen:
                seen.add((w.code, w.message))
                out.append(w)
    engine_thermal = any(w.code.startswith("thermal_damage_") for w in out)
    if omega is not None and not engine_thermal:
        hit = (np.asarray(omega) >= omega_threshold) & lumen_mask(structures)
        if hit.any():
            out.append(
                PlanWarning(
                    level="warning",
                    code="thermal_damage_vessel_duct",
                    message=f"predicted thermal damage (Omega >= {omega_threshold:g}) in "
                    f"{hit.sum() * voxel_ml:.3f} ml of vessel/duct lumen; "
                    "consider fewer pulses per train or longer pauses",
                )
            )
    return out


def vessel_duct_walls(structures: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each vessel's and bile duct's lumen plus a one-voxel wall (the engine's rule)."""
    return {
        k: ndimage.binary_dilation(np.asarray(m, bool), iterations=1)
        for k, m in structures.items()
        if (base_name(k) in VESSELS or base_name(k) in BILE_DUCTS) and np.any(m)
    }


def thermal_damage_at_walls(
    omega: np.ndarray | None,
    walls: dict[str, np.ndarray],
    omega_threshold: float,
    voxel_ml: float,
) -> tuple[dict[str, float], float]:
    """ml of each vessel's and duct's lumen and wall where the predicted Arrhenius Omega
    reaches `omega_threshold`, and the largest Omega there."""
    if omega is None:
        return {}, 0.0
    omega = np.asarray(omega)
    dmg = omega >= omega_threshold
    out: dict[str, float] = {}
    peak = 0.0
    for k, wall in walls.items():
        peak = max(peak, float(omega[wall].max()))
        n = int(np.count_nonzero(dmg & wall))
        if n:
            out[k] = n * voxel_ml
    return out, peak


def split_train_cycles(pairs: list[IrePair]) -> list[int]:
    """Cycles whose pairs are delivered as more than one train."""
    out = []
    for c in sorted({p.cycle for p in pairs}):
        keys = [(p.anode, p.cathode) for p in pairs if p.cycle == c]
        if len(set(keys)) < len(keys):
            out.append(c)
    return out


def protocol_warnings(
    probes: list[Probe], pairs: list[IrePair], v_per_cm_low: float, v_per_cm_high: float
) -> list[PlanWarning]:
    """Pairs outside the voltage-per-spacing rule, split trains, more than one cycle."""
    out = []
    seen = set()
    for p in pairs:
        if (p.cycle, p.anode, p.cathode) in seen:
            continue  # a pair delivered as two trains
        seen.add((p.cycle, p.anode, p.cathode))
        if not p.spacing_mm:
            continue
        vpc = p.voltage_v / (p.spacing_mm / 10)
        if vpc < 0.98 * v_per_cm_low:
            out.append(
                PlanWarning(
                    level="info",
                    code="voltage_below_rule",
                    message=f"cycle {p.cycle} {p.anode}-{p.cathode}: {p.voltage_v:.0f} V over "
                    f"{p.spacing_mm:.1f} mm = {vpc:.0f} V/cm, below the {v_per_cm_low:.0f} V/cm "
                    "rule",
                )
            )
        if vpc > v_per_cm_high + 1:
            out.append(
                PlanWarning(
                    level="info",
                    code="voltage_above_rule",
                    message=f"cycle {p.cycle} {p.anode}-{p.cathode}: {p.voltage_v:.0f} V over "
                    f"{p.spacing_mm:.1f} mm = {vpc:.0f} V/cm, above the {v_per_cm_low:.0f}-"
                    f"{v_per_cm_high:.0f} V/cm rule",
                )
            )
    split = split_train_cycles(pairs)
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
    n_cycles = len({p.cycle for p in probes})
    if n_cycles > 1:
        out.append(
            PlanWarning(
                level="info",
                code="multi_cycle",
                message=f"{n_cycles} placement cycles (pull-back or repositioning) are needed",
            )
        )
    return out
