"""Acceptance criteria with warning/error levels, shared by the IRE and laser planners.

Defaults come from src/hepablate/data/planning.yaml (each with its source).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from hepablate.anatomy.tissues import Quantity
from hepablate.core.units import unit_of
from hepablate.evaluate.metrics import ZoneMetrics
from hepablate.plan.model import Parameter, PlanWarning


class PlanningDefaults(BaseModel):
    """Planning defaults (see planning.yaml for the source of each)."""

    model_config = ConfigDict(extra="forbid")
    format_version: int = 1
    coverage_required: Quantity
    coverage_warning_below: Quantity
    coverage_error_below: Quantity
    min_margin_warning_mm: Quantity
    path_safety_distance_mm: Quantity
    placement_error_mm: Quantity
    monte_carlo_samples: Quantity
    max_tilt_deg: Quantity
    thermal_damage_omega: Quantity
    pullback_overlap_mm: Quantity
    max_probe_angle_deg: Quantity
    min_needle_gap_mm: Quantity
    max_cycles: Quantity

    def parameters(self, prefix: str = "planning.") -> list[Parameter]:
        out = []
        for name in type(self).model_fields:
            q = getattr(self, name)
            if isinstance(q, Quantity):
                out.append(
                    Parameter(
                        name=prefix + name, value=q.value, unit=unit_of(name), source=q.source
                    )
                )
        return out


@lru_cache(maxsize=1)
def load_planning_defaults() -> PlanningDefaults:
    raw: dict[str, Any] = yaml.safe_load(
        resources.files("hepablate.data").joinpath("planning.yaml").read_text()
    )
    return PlanningDefaults.model_validate(raw)


class Criteria(BaseModel):
    """Thresholds turning metrics into warnings (fractions 0-1, mm, ml)."""

    model_config = ConfigDict(extra="forbid")
    coverage_warning_below: float = 0.99
    coverage_error_below: float = 0.95
    min_margin_warning_mm: float = 0.0
    vessel_damage_ml_warning: float = 0.0

    @classmethod
    def from_defaults(cls, d: PlanningDefaults | None = None) -> Criteria:
        d = d or load_planning_defaults()
        return cls(
            coverage_warning_below=float(d.coverage_warning_below.value),
            coverage_error_below=float(d.coverage_error_below.value),
            min_margin_warning_mm=float(d.min_margin_warning_mm.value),
        )


def check_criteria(m: ZoneMetrics, criteria: Criteria | None = None) -> list[PlanWarning]:
    """Warnings for coverage and margin; an `error` level means the plan is not acceptable."""
    c = criteria or Criteria.from_defaults()
    out: list[PlanWarning] = []
    if m.target_coverage < c.coverage_error_below:
        out.append(
            PlanWarning(
                level="error",
                code="coverage_low",
                message=f"zone covers {100 * m.target_coverage:.1f} % of tumour plus margin "
                f"(< {100 * c.coverage_error_below:.0f} %); {m.uncovered_target_ml:.2f} ml uncovered",
            )
        )
    elif m.target_coverage < c.coverage_warning_below:
        out.append(
            PlanWarning(
                level="warning",
                code="coverage_below_required",
                message=f"zone covers {100 * m.target_coverage:.1f} % of tumour plus margin "
                f"(< {100 * c.coverage_warning_below:.0f} %); {m.uncovered_target_ml:.2f} ml uncovered",
            )
        )
    if m.tumour_coverage < 1.0:
        out.append(
            PlanWarning(
                level="error" if m.tumour_coverage < c.coverage_warning_below else "warning",
                code="tumour_not_covered",
                message=f"{100 * (1 - m.tumour_coverage):.2f} % of the tumour lies outside the zone",
            )
        )
    if m.min_margin_mm < c.min_margin_warning_mm:
        out.append(
            PlanWarning(
                level="warning",
                code="margin_negative",
                message=f"minimum margin {m.min_margin_mm:.1f} mm: part of the tumour surface is "
                "outside the zone",
            )
        )
    return out
