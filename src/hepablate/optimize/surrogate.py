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

import numpy as np

from hepablate.placement.geometry import active_segment, perpendicular_basis, unit
from hepablate.plan.model import Probe


def _seg_potential(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    L = float(np.linalg.norm(b - a))
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


def pair_field_v_per_cm(
    points_lps_mm: np.ndarray, anode: Probe, cathode: Probe, voltage_v: float
) -> np.ndarray:
    """|E| (V/cm) at points (n, 3) for one pair in a homogeneous medium."""
    a0, a1 = active_segment(anode)
    c0, c1 = active_segment(cathode)
    ra = anode.diameter_mm / 2
    rc = cathode.diameter_mm / 2
    ua, _ = perpendicular_basis(unit(a1 - a0))
    uc, _ = perpendicular_basis(unit(c1 - c0))
    sa = 0.5 * (a0 + a1) + ra * ua
    sc = 0.5 * (c0 + c1) + rc * uc
    surf = np.stack([sa, sc])
    # Potential difference per unit charge between the two surfaces.
    phi = _seg_potential(surf, a0, a1) - _seg_potential(surf, c0, c1)
    q = voltage_v / float(phi[0] - phi[1])
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


def field_max_v_per_cm(
    points_lps_mm: np.ndarray,
    probes: list[Probe],
    pairs: list[tuple[str, str, float, int]],
) -> np.ndarray:
    """Max over pairs of |E| (V/cm); `pairs` holds (anode, cathode, voltage_v, cycle)."""
    by_key = {(p.cycle, p.id): p for p in probes}
    out = np.zeros(len(points_lps_mm))
    for a, c, v, cyc in pairs:
        out = np.maximum(
            out, pair_field_v_per_cm(points_lps_mm, by_key[(cyc, a)], by_key[(cyc, c)], v)
        )
    return out
