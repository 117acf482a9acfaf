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
    EntryRegion,
    PathCheck,
    PathMap,
    candidate_directions,
)

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
]
