"""The planning grid: an axis-aligned sub-box of a case grid, resampled at an isotropic
spacing, in the case's patient frame (LPS, mm; same direction cosines as the case grid)."""

from __future__ import annotations

import numpy as np

from hepablate.core.volume import Volume, resample_to
from hepablate.errors import InputError
from hepablate.plans.limits import check_grid_limits
from hepablate.plans.model import GridSpec


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


def grid_spec(grid: Volume) -> GridSpec:
    """The record of a planning grid that a plan keeps (`Plan.grid`)."""
    return GridSpec(
        origin_lps_mm=tuple(float(x) for x in grid.origin_lps_mm),  # type: ignore[arg-type]
        spacing_mm=tuple(float(x) for x in grid.spacing_mm),  # type: ignore[arg-type]
        shape_ijk=grid.shape_ijk,
        direction=tuple(float(x) for x in np.asarray(grid.direction).ravel()),  # type: ignore[arg-type]
    )


def grid_from_spec(spec: GridSpec, source: str | None = None) -> Volume:
    """The planning grid a plan recorded (array of zeros)."""
    d = np.asarray(spec.direction, float).reshape(3, 3)
    if not np.all(np.isfinite(d)) or abs(abs(np.linalg.det(d)) - 1.0) > 1e-3:
        raise InputError(
            "direction must be 9 direction cosines (a rotation)",
            source=source,
            field="grid.direction",
        )
    if min(spec.spacing_mm) <= 0 or min(spec.shape_ijk) < 3:
        raise InputError(
            "spacing must be positive and every size at least 3", source=source, field="grid"
        )
    return Volume(
        np.zeros(tuple(reversed(spec.shape_ijk)), dtype=np.uint8),
        spec.spacing_mm,
        spec.origin_lps_mm,
        d,
    )


def contains_points(grid: Volume, pts_lps_mm: np.ndarray, clearance_mm: float) -> bool:
    """Whether every point lies inside `grid` at least `clearance_mm` from its faces."""
    pts = np.atleast_2d(np.asarray(pts_lps_mm, float))
    if pts.size == 0:
        return True
    ijk = grid.lps_to_index(pts)
    sp = np.asarray(grid.spacing_mm)
    lo = clearance_mm / sp
    hi = np.asarray(grid.shape_ijk) - 1 - clearance_mm / sp
    return bool(np.all((ijk >= lo - 1e-9) & (ijk <= hi + 1e-9)))


def evaluation_grid(
    case_grid: Volume,
    spec: GridSpec | None,
    spacing_mm: float,
    default_lo_lps_mm: np.ndarray,
    default_hi_lps_mm: np.ndarray,
    needed_lps_mm: np.ndarray,
    clearance_mm: float,
    source: str | None = None,
) -> tuple[Volume, str | None]:
    """The grid a plan is evaluated on (docs/plan-format.md, "Grid"): the plan's recorded grid
    while every point the engine needs (`needed_lps_mm`: electrode active parts, fibre tips)
    lies inside it at least `clearance_mm` from its faces; otherwise (and for plans that
    record none) the box [lo, hi] at `spacing_mm` (`planning_grid`). Returns the grid and,
    when a recorded grid had to be rebuilt, a note saying why."""
    if spec is not None:
        grid = grid_from_spec(spec, source)
        if contains_points(grid, needed_lps_mm, clearance_mm):
            return grid, None
        note = (
            f"the placement reaches within {clearance_mm:g} mm of the edge of the plan's "
            "recorded grid (or beyond it): the grid was rebuilt around the target and the "
            "placement, so results are not comparable voxel by voxel with the recorded ones"
        )
        return planning_grid(case_grid, spacing_mm, default_lo_lps_mm, default_hi_lps_mm), note
    return planning_grid(case_grid, spacing_mm, default_lo_lps_mm, default_hi_lps_mm), None
