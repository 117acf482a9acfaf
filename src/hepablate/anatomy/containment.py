"""Containment rules that make a structure set independent of how it was stored.

A label map holds one label per voxel, so a tumour inside the liver is not also liver there.
hepablate's convention (docs/case-format.md): `body` contains every structure, and `liver`
contains the tumours, vessels and ducts that lie within the liver's envelope (the liver with
its holes filled). The loader applies these rules to every format, so a case reads the same
from a label map, per-structure masks, a .seg.nrrd, DICOM SEG or RTSTRUCT.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name


def liver_envelope(liver: np.ndarray) -> np.ndarray:
    """The liver with its internal holes filled, slice by slice along each axis and in 3D."""
    if not liver.any():
        return liver.copy()
    sl = ndimage.find_objects(liver.astype(np.uint8))[0]
    sub = liver[sl]
    filled = ndimage.binary_fill_holes(sub)
    for axis in range(3):
        moved = np.moveaxis(sub, axis, 0)
        per_slice = np.stack([ndimage.binary_fill_holes(s) for s in moved])
        filled |= np.moveaxis(per_slice, 0, axis)
    out = np.zeros_like(liver, dtype=bool)
    out[sl] = filled
    return out


def normalise_containment(structures: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Apply the containment rules in place and return the same dict."""
    if "liver" in structures:
        envelope = liver_envelope(structures["liver"])
        inner = np.zeros_like(envelope)
        for key, m in structures.items():
            name = base_name(key)
            if name == "tumour" or name in VESSELS or name in BILE_DUCTS:
                inner |= m
        structures["liver"] = structures["liver"] | (inner & envelope)
    if "body" in structures:
        body = structures["body"]
        for key, m in structures.items():
            if key != "body":
                body = body | m
        structures["body"] = body
    return structures
