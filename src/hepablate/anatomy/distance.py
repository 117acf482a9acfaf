"""Signed Euclidean distance to a mask surface, in mm, honouring anisotropic spacing."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def signed_distance_mm(mask: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Signed distance (mm) to the boundary of `mask` (array order k, j, i).

    Negative inside, positive outside; measured between voxel centres (so a voxel next to the
    boundary is at +-spacing, not +-spacing/2). `spacing_mm` is given in (i, j, k) order.
    """
    sampling = tuple(reversed(spacing_mm))
    mask = mask.astype(bool)
    if not mask.any():
        return np.full(mask.shape, np.inf)
    outside = ndimage.distance_transform_edt(~mask, sampling=sampling)
    inside = ndimage.distance_transform_edt(mask, sampling=sampling)
    return np.where(mask, -inside, outside)
