"""Evaluation of a predicted zone against a case (modality-neutral): coverage, minimum margin,
value-volume histograms, zone metrics and acceptance criteria with warning levels."""

from hepablate.evaluate.criteria import (
    Criteria,
    PlanningDefaults,
    check_criteria,
    load_planning_defaults,
)
from hepablate.evaluate.metrics import (
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
    "Criteria",
    "PlanningDefaults",
    "check_criteria",
    "load_planning_defaults",
    "FieldVolumeHistogram",
    "ZoneMetrics",
    "coverage",
    "depth_in_zone_mm",
    "dilate_mm",
    "evaluate_zone",
    "field_volume_histogram",
    "lumen_mask",
    "min_margin_mm",
    "target_region",
]
