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


#: A target tumour must have at least this fraction of its voxels inside the liver envelope ...
MIN_TUMOUR_FRACTION_IN_LIVER = 0.5
#: ... or at least this fraction of its surface (by area) on the liver: a subcapsular or
#: exophytic tumour. Example from issue 12: a subcapsular tumour drawn as its own label was 16 %
#: inside the liver envelope (a notch in the liver surface is not a hole to fill) while 81 % of
#: its surface touched liver.
MIN_TUMOUR_SURFACE_ON_LIVER = 0.2


def surface_contact_fraction(
    mask: np.ndarray, other: np.ndarray, spacing_mm: tuple[float, float, float]
) -> float:
    """Fraction of the surface area of `mask` (voxel faces, mm2; `spacing_mm` in (i, j, k)
    order) whose neighbour across the face lies in `other` and not in `mask`. Faces on the
    border of the grid count as surface without contact."""
    sx, sy, sz = spacing_mm
    area = {0: sx * sy, 1: sx * sz, 2: sy * sz}  # array axis 0 is k (z), 1 is j (y), 2 is i (x)
    total = 0.0
    touching = 0.0
    for axis in range(3):
        m = np.moveaxis(mask, axis, 0)
        o = np.moveaxis(other & ~mask, axis, 0)
        n_faces = 2 * int(m.sum()) - 2 * int((m[1:] & m[:-1]).sum())
        n_touch = int((m[1:] & o[:-1]).sum()) + int((m[:-1] & o[1:]).sum())
        total += n_faces * area[axis]
        touching += n_touch * area[axis]
    return touching / total if total > 0 else 0.0


def tumour_liver_relation(
    tumour: np.ndarray, liver: np.ndarray, spacing_mm: tuple[float, float, float]
) -> tuple[float, float, str]:
    """(fraction of voxels inside the liver envelope, fraction of the surface on the liver,
    verdict): 'inside', 'subcapsular' (accepted: it touches the liver) or 'outside'."""
    env = liver_envelope(liver)
    n = int(tumour.sum())
    inside = float((tumour & env).sum()) / n if n else 0.0
    contact = surface_contact_fraction(tumour, liver, spacing_mm)
    if inside >= MIN_TUMOUR_FRACTION_IN_LIVER:
        return inside, contact, "inside"
    verdict = "subcapsular" if contact >= MIN_TUMOUR_SURFACE_ON_LIVER else "outside"
    return inside, contact, verdict
