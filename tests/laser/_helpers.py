"""Small laser cases and plans for the tests (2 mm grids, short illuminations)."""

from __future__ import annotations

import json
from pathlib import Path

from hepablate.case.writer import write_case
from hepablate.phantoms import build_phantom, laser_example_spec
from hepablate.plans.model import Fibre, Illumination, LaserSimulationSettings, Plan

TUMOUR_CENTRE = (-55.0, -5.0, 0.0)


def small_case(spacing_mm: float = 2.0, diameter_mm: float | None = None):
    spec = laser_example_spec().model_copy(deep=True)
    spec.spacing_mm = (spacing_mm,) * 3
    if diameter_mm is not None:
        spec.tumours[0].diameter_mm = diameter_mm
    return build_phantom(spec)


def settings(**kw) -> LaserSimulationSettings:
    base = dict(
        grid_spacing_mm=2.0,
        roi_padding_mm=15.0,
        cooldown_s=30.0,
        optical_updates_per_step=1,
        time_step_s=4.0,
    )
    base.update(kw)
    return LaserSimulationSettings(**base)


def two_fibre_plan(power_w: float = 3.0, duration_s: float = 200.0, **ill) -> Plan:
    cx, cy, cz = TUMOUR_CENTRE
    fibres = [
        Fibre(id="F1", tip_lps_mm=(cx - 6.0, cy, cz), direction_lps=(1.0, 0.0, 0.0)),
        Fibre(id="F2", tip_lps_mm=(cx - 6.0, cy, cz + 12.0), direction_lps=(1.0, 0.0, 0.0)),
    ]
    ills = [
        Illumination(step=1, fibre=f.id, power_w=power_w, duration_s=duration_s, **ill)
        for f in fibres
    ]
    return Plan(modality="laser", fibres=fibres, illuminations=ills, laser_simulation=settings())


def write_case_dir(tmp: Path, case) -> Path:
    d = tmp / "case"
    write_case(case, d)
    return d


def write_plan_json(path: Path, plan: Plan | dict) -> Path:
    raw = plan if isinstance(plan, dict) else json.loads(plan.model_dump_json())
    path.write_text(json.dumps(raw))
    return path
