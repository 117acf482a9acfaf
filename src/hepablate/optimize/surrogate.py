"""Analytic field of finite line electrodes in a homogeneous medium, used only for the Monte
Carlo robustness estimate (thousands of perturbed layouts, where a PDE solve per sample is too
slow). Its threshold is calibrated per plan against the engine's nonlinear zone, so it stands
in for the engine's *shape* of the zone, never for its scale.

Model: each active part is a uniformly charged segment; the potential of a segment of length
L with ends A, B at a point with distances r1, r2 is ln((r1 + r2 + L) / (r1 + r2 - L)) (per
unit line charge, up to 1/(4 pi sigma)). A pair's charges are set so that the potential
difference between the two electrode surfaces (at the segment midpoints, one radius out)
equals the pair voltage. Non-active probes are ignored (floating probes in the engine).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from hepablate.physics.kernels import _variant, use_parallel
from hepablate.placement.geometry import active_segment, perpendicular_basis, unit
from hepablate.plans.model import Probe


def _seg_potential(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """At points x (..., 3) of the segments a-b ((3,) or (..., 3), broadcast)."""
    L = np.linalg.norm(b - a, axis=-1)
    r1 = np.linalg.norm(x - a, axis=-1)
    r2 = np.linalg.norm(x - b, axis=-1)
    s = r1 + r2
    return np.log((s + L) / np.maximum(s - L, 1e-9))


def _seg_gradient(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    L = float(np.linalg.norm(b - a))
    d1 = x - a
    d2 = x - b
    r1 = np.maximum(np.linalg.norm(d1, axis=-1), 1e-9)
    r2 = np.maximum(np.linalg.norm(d2, axis=-1), 1e-9)
    s = r1 + r2
    coef = -2.0 * L / np.maximum(s * s - L * L, 1e-12)
    return coef[:, None] * (d1 / r1[:, None] + d2 / r2[:, None])


def _pair_charge(
    a0: np.ndarray, a1: np.ndarray, ra: float, c0: np.ndarray, c1: np.ndarray, rc: float, v: float
) -> float:
    """Line charge (potential units per unit charge) that puts `v` between the surfaces."""
    ua, _ = perpendicular_basis(unit(a1 - a0))
    uc, _ = perpendicular_basis(unit(c1 - c0))
    sa = 0.5 * (a0 + a1) + ra * ua
    sc = 0.5 * (c0 + c1) + rc * uc
    surf = np.stack([sa, sc])
    # Potential difference per unit charge between the two surfaces.
    phi = _seg_potential(surf, a0, a1) - _seg_potential(surf, c0, c1)
    return v / float(phi[0] - phi[1])


def pair_field_v_per_cm(
    points_lps_mm: np.ndarray, anode: Probe, cathode: Probe, voltage_v: float
) -> np.ndarray:
    """|E| (V/cm) at points (n, 3) for one pair in a homogeneous medium (the reference
    implementation of the model; `PairFields` evaluates the same field in compiled code)."""
    a0, a1 = active_segment(anode)
    c0, c1 = active_segment(cathode)
    ra = anode.diameter_mm / 2
    rc = cathode.diameter_mm / 2
    q = _pair_charge(a0, a1, ra, c0, c1, rc, voltage_v)
    x = np.array(points_lps_mm, dtype=float, copy=True)
    for s0, s1, r in ((a0, a1, ra), (c0, c1, rc)):
        # Points inside a needle take the field at its surface (the line-source field is
        # singular on the axis).
        d = unit(s1 - s0)
        rel = x - s0
        t = rel @ d
        perp = rel - t[:, None] * d
        rho = np.linalg.norm(perp, axis=1)
        inside = (rho < r) & (t >= 0) & (t <= float(np.linalg.norm(s1 - s0)))
        if inside.any():
            u0, _ = perpendicular_basis(d)
            dirs = np.where(
                rho[inside, None] > 1e-9, perp[inside] / np.maximum(rho[inside, None], 1e-12), u0
            )
            x[inside] = s0 + t[inside, None] * d + r * dirs
    g = _seg_gradient(x, a0, a1) - _seg_gradient(x, c0, c1)
    return np.abs(q) * np.linalg.norm(g, axis=-1) * 10.0  # V/mm -> V/cm


# ---- compiled evaluation ---------------------------------------------------------------
# One row per pair: anode start (3), tip (3), perpendicular u (3), radius; cathode likewise;
# |charge| x 10 (V/mm -> V/cm). Same formulas as `pair_field_v_per_cm`.
_ROW = 21


def _pair_params(
    probes: list[Probe], pairs: list[tuple[str, str, float, int]], offsets: dict | None = None
) -> np.ndarray:
    """The rows (`_ROW`) of `pairs`, vectorised over pairs (the Monte Carlo loop calls this
    once per sample)."""
    keys = {(p.cycle, p.id): i for i, p in enumerate(probes)}
    seg = np.array([active_segment(p) for p in probes])  # (P, 2, 3): start, tip
    if offsets is not None:
        seg = seg + np.array([offsets[(p.cycle, p.id)] for p in probes])[:, None, :]
    u = np.array([perpendicular_basis(unit(np.asarray(p.direction_lps)))[0] for p in probes])
    r = np.array([p.diameter_mm / 2 for p in probes])
    ia = np.array([keys[(cyc, a)] for a, _, _, cyc in pairs])
    ic = np.array([keys[(cyc, c)] for _, c, _, cyc in pairs])
    v = np.array([x[2] for x in pairs], float)
    a0, a1, c0, c1 = seg[ia, 0], seg[ia, 1], seg[ic, 0], seg[ic, 1]

    # Potential per unit charge at the two surface points (as `_pair_charge`).
    sa = 0.5 * (a0 + a1) + r[ia, None] * u[ia]
    sc = 0.5 * (c0 + c1) + r[ic, None] * u[ic]
    pot = _seg_potential
    dphi = (pot(sa, a0, a1) - pot(sa, c0, c1)) - (pot(sc, a0, a1) - pot(sc, c0, c1))
    q = v / dphi
    return np.concatenate(
        [a0, a1, u[ia], r[ia, None], c0, c1, u[ic], r[ic, None], np.abs(q)[:, None] * 10.0],
        axis=1,
    )


def _pair_e_py(x0: float, x1: float, x2: float, prm: np.ndarray, k: int) -> float:
    # Points inside a needle take the field at its surface (anode first, then cathode, as in
    # the reference implementation).
    for o in (0, 10):
        s0x, s0y, s0z = prm[k, o], prm[k, o + 1], prm[k, o + 2]
        dx, dy, dz = prm[k, o + 3] - s0x, prm[k, o + 4] - s0y, prm[k, o + 5] - s0z
        ln = math.sqrt(dx * dx + dy * dy + dz * dz)
        dx, dy, dz = dx / ln, dy / ln, dz / ln
        rx, ry, rz = x0 - s0x, x1 - s0y, x2 - s0z
        t = rx * dx + ry * dy + rz * dz
        px, py, pz = rx - t * dx, ry - t * dy, rz - t * dz
        rho = math.sqrt(px * px + py * py + pz * pz)
        r = prm[k, o + 9]
        if rho < r and t >= 0.0 and t <= ln:
            if rho > 1e-9:
                ux, uy, uz = px / rho, py / rho, pz / rho
            else:
                ux, uy, uz = prm[k, o + 6], prm[k, o + 7], prm[k, o + 8]
            x0 = s0x + t * dx + r * ux
            x1 = s0y + t * dy + r * uy
            x2 = s0z + t * dz + r * uz
    gx = 0.0
    gy = 0.0
    gz = 0.0
    for o, sign in ((0, 1.0), (10, -1.0)):
        ax, ay, az = prm[k, o], prm[k, o + 1], prm[k, o + 2]
        bx, by, bz = prm[k, o + 3], prm[k, o + 4], prm[k, o + 5]
        ln = math.sqrt((bx - ax) ** 2 + (by - ay) ** 2 + (bz - az) ** 2)
        d1x, d1y, d1z = x0 - ax, x1 - ay, x2 - az
        d2x, d2y, d2z = x0 - bx, x1 - by, x2 - bz
        r1 = max(math.sqrt(d1x * d1x + d1y * d1y + d1z * d1z), 1e-9)
        r2 = max(math.sqrt(d2x * d2x + d2y * d2y + d2z * d2z), 1e-9)
        s = r1 + r2
        coef = sign * -2.0 * ln / max(s * s - ln * ln, 1e-12)
        gx += coef * (d1x / r1 + d2x / r2)
        gy += coef * (d1y / r1 + d2y / r2)
        gz += coef * (d1z / r1 + d2z / r2)
    return prm[k, 20] * math.sqrt(gx * gx + gy * gy + gz * gz)


_pair_e = nb.njit(cache=True, inline="always")(_pair_e_py)


def _field_max_py(pts: np.ndarray, prm: np.ndarray, out: np.ndarray) -> None:
    for i in nb.prange(pts.shape[0]):
        m = 0.0
        for k in range(prm.shape[0]):
            e = _pair_e(pts[i, 0], pts[i, 1], pts[i, 2], prm, k)
            if e > m:
                m = e
        out[i] = m


def _covered_py(pts: np.ndarray, prm: np.ndarray, thr: float, out: np.ndarray) -> None:
    # Stops at the first pair that reaches the threshold.
    for i in nb.prange(pts.shape[0]):
        hit = 0
        for k in range(prm.shape[0]):
            if _pair_e(pts[i, 0], pts[i, 1], pts[i, 2], prm, k) >= thr:
                hit = 1
                break
        out[i] = hit


_KERNELS = {
    par: {
        f.__name__[:-3]: nb.njit(parallel=par, cache=True)(_variant(f, "_par" if par else "_ser"))
        for f in (_field_max_py, _covered_py)
    }
    for par in (False, True)
}

#: Point counts below this use the serial kernels.
PARALLEL_MIN_POINTS = 4096


def field_max_v_per_cm(
    points_lps_mm: np.ndarray,
    probes: list[Probe],
    pairs: list[tuple[str, str, float, int]],
    offsets: dict[tuple[int, str], np.ndarray] | None = None,
) -> np.ndarray:
    """Max over pairs of |E| (V/cm); `pairs` holds (anode, cathode, voltage_v, cycle).
    `offsets` (mm, LPS) moves probes, keyed by (cycle, probe id)."""
    pts = np.ascontiguousarray(points_lps_mm, dtype=float)
    out = np.zeros(len(pts))
    if not pairs or not len(pts):
        return out
    prm = _pair_params(probes, pairs, offsets)
    _KERNELS[use_parallel(len(pts), PARALLEL_MIN_POINTS)]["_field_max"](pts, prm, out)
    return out


def covered_fraction(
    points_lps_mm: np.ndarray,
    probes: list[Probe],
    pairs: list[tuple[str, str, float, int]],
    threshold_v_per_cm: float,
    offsets: dict[tuple[int, str], np.ndarray] | None = None,
) -> float:
    """Fraction of the points where some pair reaches `threshold_v_per_cm`."""
    pts = np.ascontiguousarray(points_lps_mm, dtype=float)
    if not len(pts):
        return float("nan")
    if not pairs:
        return 0.0
    hit = np.zeros(len(pts), np.uint8)
    prm = _pair_params(probes, pairs, offsets)
    _KERNELS[use_parallel(len(pts), PARALLEL_MIN_POINTS)]["_covered"](
        pts, prm, float(threshold_v_per_cm), hit
    )
    return float(hit.mean())
