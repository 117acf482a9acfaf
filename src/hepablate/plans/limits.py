"""Limits on the work a plan may ask for, checked before any solve.

The limits are data (src/hepablate/data/plan_limits.yaml, each with a unit and a reason).
`check_plan_limits` checks a whole plan (counts, pulses, simulated time, grid spacing, an
estimate of the planning grid from the probe or fibre positions, and the memory that grid
needs). The pieces are also called where the simulations start, because plans are built in
code too: `check_ire_limits` (from `validate_ire_plan`), `check_laser_limits` (from
`resolve_protocol`) and `check_grid_limits` (from `planning_grid`, with the real grid size).
Each problem raises `InputError` naming the field, the value, the limit and its reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict

from hepablate.errors import InputError

if TYPE_CHECKING:
    from hepablate.plans.model import (
        Fibre,
        Illumination,
        IrePair,
        IreSimulationSettings,
        LaserSimulationSettings,
        Plan,
        Probe,
    )


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    value: float
    unit: str
    reason: str


class PlanLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ire: dict[str, Limit]
    laser: dict[str, Limit]
    grid: dict[str, Limit]


@lru_cache(maxsize=1)
def plan_limits() -> PlanLimits:
    """The packaged limits table."""
    text = resources.files("hepablate.data").joinpath("plan_limits.yaml").read_text()
    return PlanLimits.model_validate(yaml.safe_load(text))


def _over(value: float, limit: Limit, what: str, field: str, source: str | None) -> None:
    if not value <= limit.value:  # also catches NaN
        raise InputError(
            f"{what} {value:g} exceeds the limit of {limit.value:g} {limit.unit} ({limit.reason})",
            source=source,
            field=field,
        )


def check_ire_limits(
    probes: Sequence[Probe], pairs: Sequence[IrePair], source: str | None = None
) -> None:
    """Probe, cycle, pair and pulse counts of an IRE placement and protocol."""
    lim = plan_limits().ire
    _over(len(probes), lim["max_probes"], "number of probes", "probes", source)
    per_cycle: dict[int, int] = {}
    for p in probes:
        per_cycle[p.cycle] = per_cycle.get(p.cycle, 0) + 1
    cycles = {p.cycle for p in probes} | {pr.cycle for pr in pairs}
    _over(len(cycles), lim["max_cycles"], "number of cycles", "probes", source)
    for cycle, n in sorted(per_cycle.items()):
        _over(n, lim["max_probes_per_cycle"], f"probes in cycle {cycle}:", "probes", source)
    _over(len(pairs), lim["max_pairs"], "number of pairs", "pairs", source)
    total = 0
    for k, pr in enumerate(pairs):
        _over(pr.pulses, lim["max_pulses_per_pair"], "pulses", f"pairs[{k}].pulses", source)
        total += pr.pulses
    _over(total, lim["max_total_pulses"], "total pulses", "pairs", source)


def check_laser_limits(
    fibres: Sequence[Fibre],
    illuminations: Sequence[Illumination],
    settings: LaserSimulationSettings | None = None,
    source: str | None = None,
) -> None:
    """Fibre and illumination counts, simulated time and thermal steps of a laser protocol."""
    lim = plan_limits().laser
    _over(len(fibres), lim["max_fibres"], "number of fibres", "fibres", source)
    _over(
        len(illuminations),
        lim["max_illuminations"],
        "number of illuminations",
        "illuminations",
        source,
    )
    steps: dict[int, float] = {}
    for il in illuminations:
        steps[il.step] = max(steps.get(il.step, 0.0), float(il.duration_s))
    cooldown = float(settings.cooldown_s) if settings is not None else 0.0
    total_s = sum(steps.values()) + cooldown
    _over(total_s, lim["max_simulated_time_s"], "simulated time", "illuminations", source)
    if settings is not None:
        n_steps = total_s / float(settings.time_step_s)
        _over(
            n_steps, lim["max_time_steps"], "thermal steps", "laser_simulation.time_step_s", source
        )


def check_grid_limits(
    shape: Sequence[int], spacing_mm: float, source: str | None = None, field: str | None = None
) -> None:
    """Spacing, voxel count and memory estimate of a planning grid of `shape` voxels."""
    lim = plan_limits().grid
    fld = field or "grid_spacing_mm"
    if not spacing_mm >= lim["min_spacing_mm"].value:
        raise InputError(
            f"grid spacing {spacing_mm:g} mm is below the limit of "
            f"{lim['min_spacing_mm'].value:g} mm ({lim['min_spacing_mm'].reason})",
            source=source,
            field=fld,
        )
    voxels = math.prod(int(n) for n in shape)
    _over(voxels, lim["max_voxels"], "planning grid voxels", fld, source)
    memory = voxels * lim["bytes_per_voxel"].value
    _over(memory, lim["max_memory_bytes"], "estimated memory (bytes)", fld, source)


def estimated_grid_shape(
    points_lps_mm: np.ndarray, padding_mm: float, spacing_mm: float
) -> tuple[int, int, int]:
    """Voxels of the box around `points` padded by `padding_mm`: a lower bound of the
    planning grid (the target, not known from the plan alone, can only enlarge it)."""
    pts = np.atleast_2d(np.asarray(points_lps_mm, dtype=float))
    ext = pts.max(axis=0) - pts.min(axis=0) + 2.0 * float(padding_mm)
    n = np.floor(ext / float(spacing_mm)) + 1
    return tuple(int(v) for v in np.minimum(n, 2**40))  # type: ignore[return-value]


def _points(items: Sequence[Any]) -> np.ndarray | None:
    pts = []
    for it in items:
        tip = np.asarray(it.tip_lps_mm, dtype=float)
        d = np.asarray(it.direction_lps, dtype=float)
        norm = float(np.linalg.norm(d))
        pts.append(tip)
        exposure = float(getattr(it, "exposure_mm", 0.0) or 0.0)
        if norm > 0 and np.all(np.isfinite(d)):
            pts.append(tip - exposure * d / norm)
    arr = np.array(pts, dtype=float) if pts else None
    if arr is None or not np.all(np.isfinite(arr)):
        return None
    return arr


def check_plan_limits(plan: Plan, source: str | None = None) -> None:
    """Raise `InputError` when `plan` asks for more work than `plan_limits()` allows."""
    settings: IreSimulationSettings | LaserSimulationSettings | None
    items: Sequence[Probe] | Sequence[Fibre]
    if plan.modality == "ire":
        check_ire_limits(plan.probes, plan.pairs, source)
        settings = plan.ire_simulation
        section, items = "ire_simulation", plan.probes
    else:
        check_laser_limits(plan.fibres, plan.illuminations, plan.laser_simulation, source)
        settings = plan.laser_simulation
        section, items = "laser_simulation", plan.fibres
    if settings is None:
        return
    spacing = float(settings.grid_spacing_mm)
    field = f"{section}.grid_spacing_mm"
    pts = _points(items)
    shape = (
        estimated_grid_shape(pts, float(settings.roi_padding_mm), spacing)
        if pts is not None
        else (1, 1, 1)
    )
    check_grid_limits(shape, spacing, source, field)
