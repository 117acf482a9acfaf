"""Imaging I/O in one patient frame (LPS, mm): NIfTI, NRRD, .seg.nrrd, MHA/MHD, DICOM CT,
DICOM SEG and RTSTRUCT. Every reader returns `Volume`s or `Segment`s; every resample goes
through `hepablate.core.volume.resample_to`.
"""

from hepablate.imaging.images import IMAGE_SUFFIXES, read_image, write_image
from hepablate.imaging.segments import Segment

__all__ = ["IMAGE_SUFFIXES", "read_image", "write_image", "Segment"]
