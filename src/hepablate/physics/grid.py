"""The planning grid: an axis-aligned sub-box of a case grid, resampled at an isotropic
spacing, in the case's patient frame (LPS, mm; same direction cosines as the case grid)."""

from __future__ import annotations

import numpy as np

from hepablate.core.volume import Volume, resample_to
from hepablate.errors import InputError
from hepablate.plan.limits import check_grid_limits


def planning_grid(
    case_grid: Volume,
    spacing_mm: float,
    lo_lps_mm: np.ndarray,
    hi_lps_mm: np.ndarray,
) -> Volume:
    """Grid covering the LPS box [lo, hi] (clipped to the case grid), spacing `spacing_mm`.

    The box is expressed along the case axes; the origin is snapped to the case voxel lattice
    so that a planning spacing equal to the case spacing is an exact crop.
    """
    if spacing_mm <= 0:
        raise InputError("must be positive", field="grid_spacing_mm")
    d = case_grid.direction
    o = np.asarray(case_grid.origin_lps_mm)
    sp = np.asarray(case_grid.spacing_mm)
    corners = np.array(
        [
            [x, y, z]
            for x in (lo_lps_mm[0], hi_lps_mm[0])
            for y in (lo_lps_mm[1], hi_lps_mm[1])
            for z in (lo_lps_mm[2], hi_lps_mm[2])
        ]
    )
    u = (corners - o) @ d  # mm along the case axes
    ext = (np.asarray(case_grid.shape_ijk) - 1) * sp
    u_lo = np.clip(u.min(axis=0), 0.0, ext)
    u_hi = np.clip(u.max(axis=0), 0.0, ext)
    u_lo = np.floor(u_lo / sp + 1e-9) * sp
    n = np.floor((u_hi - u_lo) / spacing_mm + 1e-9).astype(int) + 1
    if np.any(n < 3):
        raise InputError(
            "the planning region lies outside the case grid or is too small",
            field="roi",
        )
    check_grid_limits(tuple(int(v) for v in n), spacing_mm)
    origin = o + d @ u_lo
    return Volume(
        np.zeros(tuple(n[::-1]), dtype=np.uint8), (spacing_mm,) * 3, tuple(origin), d.copy()
    )


def resample_structures(
    structures: dict[str, np.ndarray], case_grid: Volume, grid: Volume
) -> dict[str, np.ndarray]:
    """Nearest-neighbour resampling of boolean masks onto `grid` (crop when lattices match)."""
    out: dict[str, np.ndarray] = {}
    exact = _crop_slices(case_grid, grid)
    for key, m in structures.items():
        if exact is not None:
            out[key] = np.ascontiguousarray(m[exact])
        else:
            out[key] = resample_to(case_grid.with_array(m), grid, interpolation="nearest").array
    return out


def _crop_slices(case_grid: Volume, grid: Volume) -> tuple[slice, slice, slice] | None:
    if not np.allclose(case_grid.spacing_mm, grid.spacing_mm) or not np.allclose(
        case_grid.direction, grid.direction
    ):
        return None
    start = case_grid.lps_to_index(np.asarray(grid.origin_lps_mm))
    if not np.allclose(start, np.round(start), atol=1e-6):
        return None
    i0, j0, k0 = (int(round(s)) for s in start)
    ni, nj, nk = grid.shape_ijk
    return (slice(k0, k0 + nk), slice(j0, j0 + nj), slice(i0, i0 + ni))
