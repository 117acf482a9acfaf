"""An independent check of needle and fibre paths (test helper; issue 12).

Written without `hepablate.placement.paths` (the planner's own check), so that the tests can
catch that check's errors:

- the clearance of a path is the exact Euclidean distance (mm) from the straight segment
  skin entry -> tip to each no-go voxel, the voxel taken as the box it stands for (centre +-
  half the spacing along each grid axis). Exact: the squared distance from a point moving
  along the segment to a box is piecewise quadratic in the segment parameter, with breaks
  where a coordinate crosses a box face; each piece is minimised in closed form. Brute force
  over the no-go voxels whose boxes can lie within the safety distance of the segment, on any
  grid spacing and any orthonormal grid direction (the segment is expressed in the grid's own
  axes, where the boxes are axis-aligned);
- the skin entry is found by marching back from the tip along the needle through the body
  mask: the first point outside the body. If the line leaves the image while still inside the
  body, there is no skin entry in the image (the body is cut by a face of the grid).

No-go structures: `hepablate.anatomy.vocabulary.NO_GO` and the case's tumours other than the
target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hepablate.anatomy.vocabulary import NO_GO, base_name
from hepablate.case.model import Case
from hepablate.core.volume import Volume

#: The planner samples its paths every 0.5 mm (its check is exact at the samples). Between
#: samples a sampled distance can exceed the segment's by at most the sagitta
#: (0.25 mm)^2 / (2 x 3 mm) ~ 0.01 mm at the 3 mm safety distance; the check allows 0.02 mm.
SAMPLING_TOLERANCE_MM = 0.02


def segment_box_distance(
    a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Exact distance from the segment a-b (shape (3,)) to each axis-aligned box [lo, hi]
    (shape (N, 3)), same units; 0 where the segment touches or enters a box."""
    a = np.asarray(a, float)
    d = np.asarray(b, float) - a
    lo = np.atleast_2d(np.asarray(lo, float))
    hi = np.atleast_2d(np.asarray(hi, float))
    n = len(lo)
    # Parameters where a coordinate crosses a box face, plus the segment's ends.
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lo = np.where(d != 0, (lo - a) / d, 0.0)
        t_hi = np.where(d != 0, (hi - a) / d, 0.0)
    ts = np.concatenate([np.zeros((n, 1)), np.ones((n, 1)), t_lo, t_hi], axis=1)
    ts = np.sort(np.clip(ts, 0.0, 1.0), axis=1)  # (n, 8)
    best = np.full(n, np.inf)
    for k in range(ts.shape[1] - 1):
        t0, t1 = ts[:, k], ts[:, k + 1]
        tm = 0.5 * (t0 + t1)
        pm = a[None, :] + tm[:, None] * d[None, :]
        # On this piece each coordinate stays below, inside or above its box interval.
        below, above = pm < lo, pm > hi
        bound = np.where(below, lo, np.where(above, hi, 0.0))
        w = (below | above).astype(float)
        qa = (w * d[None, :] ** 2).sum(axis=1)
        qb = (w * d[None, :] * (a[None, :] - bound)).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_star = np.where(qa > 0, -qb / qa, tm)
        t_star = np.clip(t_star, t0, t1)
        p = a[None, :] + t_star[:, None] * d[None, :]
        r = w * (p - bound)
        best = np.minimum(best, np.sqrt((r**2).sum(axis=1)))
    return best


def _grid_frame(grid: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, direction, spacing) with the direction checked orthonormal (distances in the
    grid's axes are then LPS distances)."""
    rot = np.asarray(grid.direction, float)
    if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-6):
        raise ValueError("grid direction is not orthonormal")
    return (
        np.asarray(grid.origin_lps_mm, float),
        rot,
        np.asarray(grid.spacing_mm, float),
    )


def to_grid_mm(grid: Volume, pts_lps: np.ndarray) -> np.ndarray:
    """LPS mm -> mm along the grid axes (i, j, k), origin at voxel (0, 0, 0)'s centre."""
    origin, rot, _ = _grid_frame(grid)
    return (np.atleast_2d(pts_lps) - origin) @ rot  # rows: rot.T @ (p - origin)


def mask_segment_distance(
    grid: Volume, mask: np.ndarray, a_lps: np.ndarray, b_lps: np.ndarray, window_mm: float
) -> float:
    """Exact distance (mm) from the segment a-b (LPS mm) to the voxel boxes of `mask` (array
    order k, j, i), looking at voxels whose boxes may lie within `window_mm`; inf if none
    does. The segment is cut into pieces of about 10 mm so that the voxels looked at stay
    near it on long oblique paths."""
    _, _, sp = _grid_frame(grid)
    qa, qb = to_grid_mm(grid, np.stack([a_lps, b_lps]))
    length = float(np.linalg.norm(qb - qa))
    pieces = max(1, int(np.ceil(length / 10.0)))
    shape_ijk = np.array(mask.shape[::-1])
    reach = window_mm + 0.5 * sp  # a box within the window has its centre within this
    best = np.inf
    for s in range(pieces):
        p0 = qa + (qb - qa) * (s / pieces)
        p1 = qa + (qb - qa) * ((s + 1) / pieces)
        lo_mm = np.minimum(p0, p1) - reach
        hi_mm = np.maximum(p0, p1) + reach
        lo_i = np.clip(np.floor(lo_mm / sp).astype(int), 0, shape_ijk - 1)
        hi_i = np.clip(np.ceil(hi_mm / sp).astype(int), 0, shape_ijk - 1)
        if np.any(hi_mm < -0.5 * sp) or np.any(lo_mm > (shape_ijk - 0.5) * sp):
            continue
        sub = mask[lo_i[2] : hi_i[2] + 1, lo_i[1] : hi_i[1] + 1, lo_i[0] : hi_i[0] + 1]
        kji = np.argwhere(sub)
        if kji.size == 0:
            continue
        ijk = kji[:, ::-1] + lo_i[None, :]
        centre = ijk * sp[None, :]
        dist = segment_box_distance(p0, p1, centre - 0.5 * sp, centre + 0.5 * sp)
        best = min(best, float(dist.min()))
    return best if best <= window_mm else np.inf


def no_go_keys(case: Case) -> list[str]:
    """Structure keys a path must keep clear of: NO_GO names and the non-target tumours."""
    return sorted(
        k
        for k in case.structures
        if (base_name(k) in NO_GO) or (base_name(k) == "tumour" and k != case.target_key)
    )


@dataclass
class SkinEntry:
    point_lps_mm: np.ndarray | None
    """First point outside the body going back from the tip; None if the line leaves the
    image inside the body or the tip is outside the body."""
    reason: str | None
    """Why there is no entry: 'tip outside the body' or 'body cut by the grid face'."""


def skin_entry(case: Case, tip_lps: np.ndarray, direction_lps: np.ndarray) -> SkinEntry:
    """March from the tip against the needle direction (steps of a quarter of the smallest
    voxel) through the body mask (nearest voxel); see `SkinEntry`."""
    grid = case.grid
    _, _, sp = _grid_frame(grid)
    body = case.structures["body"]
    shape_ijk = np.array(body.shape[::-1])
    u = np.asarray(direction_lps, float)
    u = u / np.linalg.norm(u)
    step = 0.25 * float(sp.min())
    tip = np.asarray(tip_lps, float)
    for n in range(int(2000.0 / step)):
        p = tip - u * (n * step)
        ijk = np.rint(to_grid_mm(grid, p)[0] / sp).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= shape_ijk):
            return SkinEntry(None, "body cut by the grid face")
        if not body[ijk[2], ijk[1], ijk[0]]:
            return SkinEntry(None, "tip outside the body") if n == 0 else SkinEntry(p, None)
    return SkinEntry(None, "no skin within 2 m")


def distance_to_grid_faces_mm(grid: Volume, p_lps: np.ndarray) -> float:
    """Smallest distance (mm) from a point to the faces of the image (the outer faces of the
    outermost voxels); negative outside."""
    _, _, sp = _grid_frame(grid)
    q = to_grid_mm(grid, p_lps)[0]
    lo = -0.5 * sp
    hi = (np.array(grid.array.shape[::-1]) - 0.5) * sp
    return float(np.min(np.concatenate([q - lo, hi - q])))


@dataclass
class PathReport:
    label: str
    entry_lps_mm: np.ndarray | None
    clearance_mm: dict[str, float]
    """Per no-go structure, the exact distance (mm) where it is within the window, else inf."""
    problems: list[str]


def check_path(
    case: Case,
    label: str,
    tip_lps: np.ndarray,
    direction_lps: np.ndarray,
    safety_mm: float,
    planned_entry_lps: np.ndarray | None = None,
    per_structure_mm: Mapping[str, float | None] | None = None,
) -> PathReport:
    """Check one needle: a skin entry inside the image, the planned entry (if any) on the body
    surface where the needle line crosses it and off the grid boundary, and every no-go
    structure at least `safety_mm` (or its own distance in `per_structure_mm`, by base name;
    None: may be crossed, measured only) from the segment entry -> tip."""
    _, _, sp = _grid_frame(case.grid)
    diag = float(np.linalg.norm(sp))
    problems: list[str] = []
    tip = np.asarray(tip_lps, float)
    se = skin_entry(case, tip, direction_lps)
    if se.point_lps_mm is None:
        problems.append(f"{label}: no skin entry ({se.reason})")
    entry = se.point_lps_mm
    if planned_entry_lps is not None:
        pe = np.asarray(planned_entry_lps, float)
        if distance_to_grid_faces_mm(case.grid, pe) < 0.5 * float(sp.min()):
            problems.append(f"{label}: entry {pe.round(1).tolist()} on or outside the grid face")
        if entry is not None and np.linalg.norm(pe - entry) > diag:
            problems.append(
                f"{label}: planned entry {pe.round(1).tolist()} is "
                f"{np.linalg.norm(pe - entry):.1f} mm from where the needle line leaves the "
                f"body {entry.round(1).tolist()}"
            )
        entry = pe
    clearance: dict[str, float] = {}
    if entry is not None:
        own = dict(per_structure_mm or {})
        for key in no_go_keys(case):
            need = own[base_name(key)] if base_name(key) in own else safety_mm
            d = mask_segment_distance(case.grid, case.structures[key], entry, tip, safety_mm + 1.0)
            clearance[key] = d
            if need is not None and d < need - SAMPLING_TOLERANCE_MM:
                problems.append(f"{label}: path passes {d:.2f} mm from {key} (safety {need:g} mm)")
    return PathReport(label, entry, clearance, problems)


def check_plan_paths(
    case: Case,
    plan: object,
    safety_mm: float,
    per_structure_mm: Mapping[str, float | None] | None = None,
) -> list[PathReport]:
    """`check_path` for every probe (IRE) or fibre (laser) of a plan."""
    needles = list(getattr(plan, "probes", []) or []) + list(getattr(plan, "fibres", []) or [])
    out = []
    for n in needles:
        label = f"{type(n).__name__.lower()} {n.id}" + (
            f" cycle {n.cycle}" if hasattr(n, "cycle") else ""
        )
        out.append(
            check_path(
                case,
                label,
                np.asarray(n.tip_lps_mm),
                np.asarray(n.direction_lps),
                safety_mm,
                None if n.entry_lps_mm is None else np.asarray(n.entry_lps_mm),
                per_structure_mm,
            )
        )
    return out
