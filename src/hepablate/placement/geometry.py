"""Needle geometry, probe layouts and angled-probe helpers (LPS, mm).

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

import numba as nb
import numpy as np

from hepablate.plans.model import Probe


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


@nb.njit(cache=True)
def _max_segments_distance(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    best = 0.0
    for i in range(pts.shape[0]):
        px, py = pts[i, 0], pts[i, 1]
        near = np.inf
        for k in range(a.shape[0]):
            abx, aby = b[k, 0] - a[k, 0], b[k, 1] - a[k, 1]
            rx, ry = px - a[k, 0], py - a[k, 1]
            t = (rx * abx + ry * aby) / max(abx * abx + aby * aby, 1e-12)
            t = min(max(t, 0.0), 1.0)
            dx, dy = rx - t * abx, ry - t * aby
            d2 = dx * dx + dy * dy
            if d2 < near:
                near = d2
        if near > best:
            best = near
    return np.sqrt(best)


def max_segments_distance(
    points_2d: np.ndarray, segs: list[tuple[np.ndarray, np.ndarray]]
) -> float:
    """max over points of `segments_distance` (compiled; the layout fit's inner loop)."""
    pts = np.ascontiguousarray(points_2d, dtype=float)
    if not len(pts):
        return 0.0
    a = np.array([x[0] for x in segs], float).reshape(-1, 2)
    b = np.array([x[1] for x in segs], float).reshape(-1, 2)
    return float(_max_segments_distance(pts, a, b))


# ---- angled (non-parallel) probes ----------------------------------------------------------


def segment_distance(p0, p1, q0, q1) -> float:
    """Smallest distance (mm) between the segments p0-p1 and q0-q1 (any orientation)."""
    p0, p1, q0, q1 = (np.asarray(x, float) for x in (p0, p1, q0, q1))
    u, v, w = p1 - p0, q1 - q0, p0 - q0
    a, b, c, d, e = u @ u, u @ v, v @ v, u @ w, v @ w
    cands = []
    den = a * c - b * b
    if a > 1e-12 and c > 1e-12 and den > 1e-9 * a * c:
        s = float(np.clip((b * e - c * d) / den, 0.0, 1.0))
        t = float(np.clip((b * s + e) / c, 0.0, 1.0))
        s = float(np.clip((b * t - d) / a, 0.0, 1.0))
        cands.append(float(np.linalg.norm(p0 + s * u - (q0 + t * v))))
    # End points against the other segment.
    for x, y0, y1 in ((p0, q0, q1), (p1, q0, q1), (q0, p0, p1), (q1, p0, p1)):
        yy = y1 - y0
        n2 = float(yy @ yy)
        t = 0.0 if n2 < 1e-12 else float(np.clip((x - y0) @ yy / n2, 0.0, 1.0))
        cands.append(float(np.linalg.norm(x - (y0 + t * yy))))
    return min(cands)


def exposure_spacing_mm(a: Probe, b: Probe) -> tuple[float, float]:
    """(smallest, largest) spacing of two probes along their exposures (mm): the smallest
    distance between the two active segments, and the largest distance between
    corresponding points of them (same fraction of the exposure from the tip; for straight
    segments the largest is at one of the two ends). Parallel probes side by side: both equal
    the spacing."""
    a0, a1 = active_segment(a)
    b0, b1 = active_segment(b)
    lo = segment_distance(a0, a1, b0, b1)
    hi = max(float(np.linalg.norm(a0 - b0)), float(np.linalg.norm(a1 - b1)))
    return lo, hi


def tilted_directions(
    d: np.ndarray,
    radial: np.ndarray | None,
    max_angle_deg: float,
    step_deg: float = 3.0,
    n_azimuth: int = 12,
) -> list[np.ndarray]:
    """Unit directions within `max_angle_deg` of `d` (not `d` itself), smallest angle first;
    at each angle the tilt along `radial` (a vector across `d`, e.g. from the layout centre
    to the probe: tips diverging, entries converging) and against it come first."""
    d = unit(d)
    u, v = perpendicular_basis(d)
    if radial is not None:
        r = np.asarray(radial, float) - (np.asarray(radial, float) @ d) * d
        if np.linalg.norm(r) > 1e-9:
            u = unit(r)
            v = np.cross(d, u)
    n_steps = int(np.floor(max_angle_deg / step_deg + 1e-9))
    angles = [step_deg * k for k in range(1, n_steps + 1)]
    if not angles or angles[-1] < max_angle_deg - 1e-9:
        angles.append(float(max_angle_deg))
    others = np.linspace(0, 2 * np.pi, n_azimuth, endpoint=False)[1:]
    az = [0.0, np.pi] + [a for a in others if abs(a - np.pi) > 1e-9]
    out = []
    for th in np.radians(angles):
        for phi in az:
            w = np.cos(phi) * u + np.sin(phi) * v
            out.append(unit(np.cos(th) * d + np.sin(th) * w))
    return out


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees) between two directions."""
    c = float(np.clip(unit(a) @ unit(b), -1.0, 1.0))
    return float(np.degrees(np.arccos(c)))
