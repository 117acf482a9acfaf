"""The patient case: `case.yaml` + imaging -> `Case` (structures on one grid in LPS, mm)."""

from hepablate.case.loader import load_case
from hepablate.case.model import Case
from hepablate.case.spec import CaseSpec, SegmentationSpec, StructureSpec
from hepablate.case.summary import CaseSummary, summarise_case

__all__ = [
    "Case",
    "CaseSpec",
    "SegmentationSpec",
    "StructureSpec",
    "load_case",
    "CaseSummary",
    "summarise_case",
]
