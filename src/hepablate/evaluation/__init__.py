"""Evaluation of a predicted zone against a case (modality-neutral): coverage, minimum margin,
value-volume histograms, zone metrics, acceptance criteria as data, and the `Evaluation` that
`hepablate.evaluate(case, plan)` returns."""

from hepablate.evaluation.criteria import (
    CriteriaTable,
    CriterionSpec,
    criteria_warnings,
    evaluate_criteria,
    load_criteria,
    plan_status,
)
from hepablate.evaluation.defaults import PlanningDefaults, load_planning_defaults
from hepablate.evaluation.metrics import (
    FieldVolumeHistogram,
    ZoneMetrics,
    coverage,
    depth_in_zone_mm,
    dilate_mm,
    evaluate_zone,
    field_volume_histogram,
    lumen_mask,
    min_margin_mm,
    target_region,
)

__all__ = [
    "CriteriaTable",
    "CriterionSpec",
    "FieldVolumeHistogram",
    "PlanningDefaults",
    "ZoneMetrics",
    "coverage",
    "criteria_warnings",
    "depth_in_zone_mm",
    "dilate_mm",
    "evaluate_criteria",
    "evaluate_zone",
    "field_volume_histogram",
    "load_criteria",
    "load_planning_defaults",
    "lumen_mask",
    "min_margin_mm",
    "plan_status",
    "target_region",
]
