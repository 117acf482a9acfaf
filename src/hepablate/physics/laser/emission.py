"""Where a fibre's power enters the diffuse light field, and the temperature near the emitter.

Bare fibre (forward-peaked): the beam leaves the flat tip face as a cone of half-angle
asin(NA / n) from a core of radius r_c, and each photon enters the diffuse field where it is
first scattered (or absorbed): along the beam the source density falls as
mu_t' exp(-mu_t' z) with mu_t' = mu_a + mu_s', the first-collision source of the
delta-Eddington diffusion theory (Prahl 1988, "Light Transport in Tissue", PhD thesis,
University of Texas at Austin, ch. 4; https://omlc.org/pubs/prahl-pubs/prahl88/). The beam at
depth z is sampled by a ring of radius (r_c + z tan theta) / sqrt(2) (the disc's second
moment); depths up to 5 / mu_t' (99.3 % of the power; the weights are renormalised).

Cylindrical diffuser: the power leaves uniformly along the emitting section, which ends at the
fibre tip and runs `diffuser_length_mm` back along the fibre (a line source).

Both are sampled at points no further apart than a quarter voxel and spread on the grid with
trilinear weights, so the injected power is exact and the source moves smoothly with the tip.

Tip temperature: the diffusion approximation does not hold within about one transport mean
free path (1 / mu_t', about 1 mm in liver at 1064 nm) of a source, and the temperature at the
source point itself depends on the grid (a point source is singular). The figure reported is
the mean temperature on the surface `radius_mm` from the emitter (a sphere round a bare tip,
rings round each 2 mm of a diffuser's section, the hottest of them): a smooth quantity that
converges with the grid (tests/laser/test_emission.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from hepablate.core.volume import Volume

EmitterKind = Literal["bare", "diffuser"]
#: Depth (in transport mean free paths) to which a bare fibre's beam is sampled.
BEAM_DEPTH_MFP = 5.0
#: Points per ring of the beam cross-section / of the tip-temperature surface.
RING_POINTS = 6
#: Spacing (mm) of the rings round a diffuser's section for the tip temperature.
DIFFUSER_RING_STEP_MM = 2.0


@dataclass(frozen=True)
class Emitter:
    """A fibre's emitting end: `kind`, the diffuser's length (mm), the core radius (mm) and
    the beam's half-angle in tissue (rad; asin(NA / n_tissue))."""

    kind: EmitterKind
    length_mm: float = 0.0
    core_radius_mm: float = 0.15
    half_angle_rad: float = 0.16


def _basis(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(d, a)
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def _ring(centre: np.ndarray, d: np.ndarray, radius_mm: float) -> np.ndarray:
    u, v = _basis(d)
    ang = 2.0 * np.pi * np.arange(RING_POINTS) / RING_POINTS
    return centre + radius_mm * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v)


def emission_points(
    tip_lps_mm: np.ndarray,
    direction_lps: np.ndarray,
    emitter: Emitter,
    mu_t_reduced_per_mm: float,
    spacing_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample points (LPS mm, (n, 3)) and weights (sum 1) of the source of one fibre."""
    tip = np.asarray(tip_lps_mm, float)
    d = np.asarray(direction_lps, float)
    d = d / np.linalg.norm(d)
    step = spacing_mm / 4.0
    if emitter.kind == "diffuser":
        n = max(2, math.ceil(emitter.length_mm / step) + 1)
        s = np.linspace(-emitter.length_mm, 0.0, n)
        return tip + s[:, None] * d, np.full(n, 1.0 / n)
    mfp = 1.0 / mu_t_reduced_per_mm
    depth = BEAM_DEPTH_MFP * mfp
    n = max(8, math.ceil(depth / step))
    z = (np.arange(n) + 0.5) * depth / n
    wz = np.exp(-z / mfp)
    pts, ws = [], []
    for zk, wk in zip(z, wz, strict=True):
        r = (emitter.core_radius_mm + zk * math.tan(emitter.half_angle_rad)) / math.sqrt(2.0)
        pts.append(_ring(tip + zk * d, d, r))
        ws.append(np.full(RING_POINTS, wk / RING_POINTS))
    w = np.concatenate(ws)
    return np.vstack(pts), w / w.sum()


def source_density(
    shape: tuple[int, ...], ijk: np.ndarray, weights: np.ndarray, power_w: float, voxel_mm3: float
) -> np.ndarray:
    """Source density S (W/mm^3) on a grid of `shape` (k, j, i) of `power_w` spread over the
    weighted points at continuous indices `ijk` ((n, 3), i j k) with trilinear weights (points
    outside the grid lose their share)."""
    s = np.zeros(shape)
    ijk = np.atleast_2d(np.asarray(ijk, float))
    base = np.floor(ijk).astype(int)
    frac = ijk - base
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                w = (
                    np.where(di, frac[:, 0], 1 - frac[:, 0])
                    * np.where(dj, frac[:, 1], 1 - frac[:, 1])
                    * np.where(dk, frac[:, 2], 1 - frac[:, 2])
                    * weights
                )
                i, j, k = base[:, 0] + di, base[:, 1] + dj, base[:, 2] + dk
                ok = (
                    (w > 0)
                    & (i >= 0)
                    & (i < shape[2])
                    & (j >= 0)
                    & (j < shape[1])
                    & (k >= 0)
                    & (k < shape[0])
                )
                np.add.at(s, (k[ok], j[ok], i[ok]), power_w * w[ok] / voxel_mm3)
    return s


def trilinear(a: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """Trilinear values of `a` (k, j, i) at continuous indices `ijk` ((n, 3), i j k); points
    outside the grid take the nearest edge value."""
    coords = np.atleast_2d(np.asarray(ijk, float))[:, ::-1].T
    return ndimage.map_coordinates(a, coords, order=1, mode="nearest")


def surface_points(
    tip_lps_mm: np.ndarray, direction_lps: np.ndarray, emitter: Emitter, radius_mm: float
) -> list[np.ndarray]:
    """The surfaces `radius_mm` from the emitter over which the tip temperature is averaged
    (LPS mm): one sphere round a bare tip; rings round a diffuser's section every 2 mm."""
    tip = np.asarray(tip_lps_mm, float)
    d = np.asarray(direction_lps, float)
    d = d / np.linalg.norm(d)
    if emitter.kind == "diffuser":
        n = max(1, math.ceil(emitter.length_mm / DIFFUSER_RING_STEP_MM) + 1)
        return [_ring(tip + s * d, d, radius_mm) for s in np.linspace(-emitter.length_mm, 0, n)]
    # A sphere: the two poles and three rings of six (20 points).
    pts = [tip + radius_mm * d, tip - radius_mm * d]
    for c in (-0.5, 0.0, 0.5):
        r = radius_mm * math.sqrt(1.0 - c * c)
        pts.extend(_ring(tip + c * radius_mm * d, d, r))
    return [np.array(pts)]


def tip_temperature_c(temperature_c: np.ndarray, grid: Volume, surfaces: list[np.ndarray]) -> float:
    """Mean temperature on each surface (trilinear), the hottest of them (degC)."""
    return max(float(trilinear(temperature_c, grid.lps_to_index(s)).mean()) for s in surfaces)
