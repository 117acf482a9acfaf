"""Planning defaults (src/hepablate/data/planning.yaml, each with its source): search settings
of the planners and the defaults `evaluate` uses for placement error and path clearance."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from hepablate.anatomy.tissues import Quantity
from hepablate.core.provenance import Parameter, table_parameters


class PlanningDefaults(BaseModel):
    """Planning defaults (see planning.yaml for the source of each)."""

    model_config = ConfigDict(extra="forbid")
    format_version: int = 1
    path_safety_distance_mm: Quantity[float]
    placement_error_mm: Quantity[float]
    monte_carlo_samples: Quantity[int]
    max_tilt_deg: Quantity[float]
    thermal_damage_omega: Quantity[float]
    pullback_overlap_mm: Quantity[float]
    max_probe_angle_deg: Quantity[float]
    min_needle_gap_mm: Quantity[float]
    max_cycles: Quantity[int]
    laser_min_liver_path_mm: Quantity[float]
    confident_zone_fraction: Quantity[float]

    def parameters(self, prefix: str = "planning.") -> list[Parameter]:
        return table_parameters(prefix, ((k, q) for k, q in self if isinstance(q, Quantity)))


@lru_cache(maxsize=1)
def load_planning_defaults() -> PlanningDefaults:
    raw: dict[str, Any] = yaml.safe_load(
        resources.files("hepablate.data").joinpath("planning.yaml").read_text()
    )
    return PlanningDefaults.model_validate(raw)
