"""Structure vocabulary, structure sets, margins (signed distance)."""

from hepablate.anatomy.distance import signed_distance_mm
from hepablate.anatomy.vocabulary import (
    BILE_DUCTS,
    NO_GO,
    STRUCTURE_NAMES,
    VESSELS,
    StructureName,
)

__all__ = [
    "STRUCTURE_NAMES",
    "StructureName",
    "VESSELS",
    "BILE_DUCTS",
    "NO_GO",
    "signed_distance_mm",
]
