"""Needle geometry and parallel-probe layouts (LPS, mm).

A layout is a set of points in the plane perpendicular to the insertion direction; each point
becomes a probe whose active part ends at the tip depth. Templates follow IRE practice
(2 to 6 needles; 3 in a triangle, 4 in a square, 5 as a square with a central probe, 6 in
a 2 x 3 rectangle; Kos et al. 2015, NICE IPG
overview): every pair of probes closer than the maximum spacing is energised ("neighbouring
pairs": the perimeter and, for a square, the diagonals).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hepablate.plan.model import Probe


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    n = float(np.linalg.norm(v))
    if n == 0:
        raise ValueError("zero vector has no direction")
    return v / n


def perpendicular_basis(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors (u, v) with (u, v, d) right-handed and orthonormal."""
    d = unit(d)
    helper = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = unit(np.cross(helper, d))
    v = np.cross(d, u)
    return u, v


def active_segment(p: Probe) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of the active part in LPS mm; `end` is the tip."""
    tip = np.asarray(p.tip_lps_mm, float)
    d = unit(np.asarray(p.direction_lps, float))
    return tip - p.exposure_mm * d, tip


def active_centre(p: Probe) -> np.ndarray:
    a, b = active_segment(p)
    return 0.5 * (a + b)


def probe_spacing_mm(a: Probe, b: Probe) -> float:
    """Distance between the centres of the active parts (mm)."""
    return float(np.linalg.norm(active_centre(a) - active_centre(b)))


def template_2d(n: int, spacing_mm: float) -> np.ndarray:
    """Probe positions (n, 2) in mm, centred on the origin, neighbours `spacing_mm` apart.

    2: a line; 3: equilateral triangle; 4: square; 5: square with a central probe;
    6: 2 x 3 rectangle.
    """
    s = float(spacing_mm)
    if n == 2:
        pts = np.array([[-s / 2, 0.0], [s / 2, 0.0]])
    elif n in (3, 4):
        r = s / (2 * np.sin(np.pi / n))
        ang = 2 * np.pi * np.arange(n) / n + (np.pi / 4 if n == 4 else np.pi / 2)
        pts = np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)
    elif n == 5:
        # A square of side s with a central probe (a common 5-probe IRE configuration).
        h = s / 2
        pts = np.array([[-h, -h], [h, -h], [h, h], [-h, h], [0.0, 0.0]])
    elif n == 6:
        pts = np.array([[x, y] for y in (-s / 2, s / 2) for x in (-s, 0.0, s)])
    else:
        raise ValueError(f"layouts have 2 to 6 probes, got {n}")
    return pts - pts.mean(axis=0)


def neighbour_pairs(points: np.ndarray, max_spacing_mm: float) -> list[tuple[int, int]]:
    """Index pairs (i < j) closer than `max_spacing_mm` (+1 % tolerance), perimeter first."""
    n = len(points)
    pairs = []
    for i in range(n):
        for j in range(i + 1, n):
            if np.linalg.norm(points[i] - points[j]) <= max_spacing_mm * 1.01:
                pairs.append((i, j))
    # Deliver the shortest (perimeter) pairs first, then the longer ones (diagonals).
    pairs.sort(key=lambda ij: (round(float(np.linalg.norm(points[ij[0]] - points[ij[1]])), 1), ij))
    return pairs


@dataclass
class Layout2D:
    """A layout in the plane perpendicular to the insertion direction (mm)."""

    n: int
    spacing_mm: float
    rotation_rad: float
    centre_uv_mm: tuple[float, float]

    def points(self) -> np.ndarray:
        c, s = np.cos(self.rotation_rad), np.sin(self.rotation_rad)
        rot = np.array([[c, -s], [s, c]])
        return template_2d(self.n, self.spacing_mm) @ rot.T + np.asarray(self.centre_uv_mm)


def _ccw_hull(verts: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull, QhullError

    if len(verts) < 3:
        return verts
    try:
        return verts[ConvexHull(verts).vertices]
    except QhullError:
        return verts


def polygon_distance(points_2d: np.ndarray, poly: np.ndarray, hull: bool = True) -> np.ndarray:
    """Distance (mm) of each 2D point from the convex hull of `poly` (0 inside).

    `poly` holds 2 or more vertices (2: a segment). With `hull=False` the vertices must
    already be the convex hull in counter-clockwise order.
    """
    pts = np.asarray(points_2d, float)
    verts = np.asarray(poly, float)
    if hull:
        verts = _ccw_hull(verts)
    a = verts
    b = np.roll(verts, -1, axis=0) if len(verts) >= 3 else verts[::-1][:1]
    a = a if len(verts) >= 3 else verts[:1]
    ab = b - a  # (m, 2)
    rel = pts[:, None, :] - a[None, :, :]  # (n, m, 2)
    t = np.clip((rel * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)[None], 0, 1)
    diff = rel - t[..., None] * ab[None]
    d = np.sqrt((diff * diff).sum(-1)).min(axis=1)
    if len(verts) >= 3:
        cross = ab[None, :, 0] * rel[..., 1] - ab[None, :, 1] * rel[..., 0]
        d[np.all(cross >= -1e-9, axis=1)] = 0.0
    return d


@lru_cache(maxsize=8)
def template_hull_order(n: int) -> np.ndarray:
    """Indices of `template_2d(n, s)` forming its convex hull counter-clockwise."""
    from scipy.spatial import ConvexHull

    pts = template_2d(n, 10.0)
    if n == 2:
        return np.arange(2)
    return ConvexHull(pts).vertices


def segments_distance(
    points_2d: np.ndarray, segs: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Distance (mm) of each 2D point from the nearest of the segments (a, b)."""
    pts = np.asarray(points_2d, float)
    a = np.array([x[0] for x in segs], float)
    b = np.array([x[1] for x in segs], float)
    ab = b - a
    rel = pts[:, None, :] - a[None, :, :]
    t = np.clip((rel * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)[None], 0, 1)
    diff = rel - t[..., None] * ab[None]
    return np.sqrt((diff * diff).sum(-1)).min(axis=1)
