"""Needle placement geometry: probe layouts, skin entries and needle-path safety (LPS, mm)."""

from hepablate.placement.geometry import (
    Layout2D,
    active_centre,
    active_segment,
    neighbour_pairs,
    perpendicular_basis,
    polygon_distance,
    probe_spacing_mm,
    segments_distance,
    template_2d,
)
from hepablate.placement.paths import (
    ENTRY_OUTSIDE_IMAGE,
    EntryRegion,
    PathCheck,
    PathMap,
    candidate_directions,
)
from hepablate.placement.tract import TractCheck, check_liver_tract, liver_path_before_target_mm

__all__ = [
    "Layout2D",
    "active_centre",
    "active_segment",
    "neighbour_pairs",
    "perpendicular_basis",
    "polygon_distance",
    "probe_spacing_mm",
    "segments_distance",
    "template_2d",
    "EntryRegion",
    "PathCheck",
    "PathMap",
    "candidate_directions",
    "ENTRY_OUTSIDE_IMAGE",
    "TractCheck",
    "check_liver_tract",
    "liver_path_before_target_mm",
]
