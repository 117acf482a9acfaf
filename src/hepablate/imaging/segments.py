"""`Segment`: one named structure read from a multi-structure segmentation file."""

from __future__ import annotations

from dataclasses import dataclass

from hepablate.core.volume import Volume


@dataclass
class Segment:
    """A segment of a .seg.nrrd, DICOM SEG or RTSTRUCT (or a label of a label map).

    `number` is the segment number (DICOM SEG SegmentNumber, RTSTRUCT ROINumber, Slicer
    LabelValue or the label-map value); `name` the segment label / ROI name; `mask` a boolean
    volume in LPS.
    """

    number: int
    name: str
    mask: Volume
