"""Imaging I/O in one patient frame (LPS, mm): NIfTI, NRRD, .seg.nrrd, MHA/MHD, DICOM CT,
DICOM SEG and RTSTRUCT. Every reader returns `Volume`s or `Segment`s; every resample goes
through `hepablate.core.volume.resample_to`.

The DICOM and Slicer readers/writers are imported on first use (highdicom and scikit-image
cost about half a second to import, which every CLI call would otherwise pay).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hepablate.imaging.images import IMAGE_SUFFIXES, read_image, write_image
from hepablate.imaging.segments import Segment

if TYPE_CHECKING:
    from hepablate.imaging.dicom_ct import write_dicom_ct_series
    from hepablate.imaging.dicom_seg import read_dicom_seg, write_dicom_seg, write_zone_seg
    from hepablate.imaging.rtstruct import read_rtstruct, write_rtstruct
    from hepablate.imaging.slicer_seg import read_slicer_seg, write_slicer_seg

_LAZY = {
    "write_dicom_ct_series": "dicom_ct",
    "read_dicom_seg": "dicom_seg",
    "write_dicom_seg": "dicom_seg",
    "write_zone_seg": "dicom_seg",
    "read_rtstruct": "rtstruct",
    "write_rtstruct": "rtstruct",
    "read_slicer_seg": "slicer_seg",
    "write_slicer_seg": "slicer_seg",
}

__all__ = [
    "IMAGE_SUFFIXES",
    "read_image",
    "write_image",
    "Segment",
    "write_dicom_ct_series",
    "read_dicom_seg",
    "write_dicom_seg",
    "write_zone_seg",
    "read_rtstruct",
    "write_rtstruct",
    "read_slicer_seg",
    "write_slicer_seg",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"hepablate.imaging.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'hepablate.imaging' has no attribute '{name}'")
