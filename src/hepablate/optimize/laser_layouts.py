"""Candidate fibre layouts of the laser planner (LPS, mm): 1 to 4 fibres in a template
(single, line, triangle, square) across a shared insertion direction, at the device spacings,
energies and pull-backs, in a few rotations about the direction; each fibre's path from the
skin checked, and a fibre whose parallel path is blocked tilted about the middle of its
illuminated range (converging or diverging fibres, as placed in practice around a vessel or
through one intercostal window) by up to planning.yaml `max_probe_angle_deg`.

`LaserPlanner` (hepablate.optimize.laser) owns the search; this module only makes and checks
layouts, so the planner's search and its layouts can be read (and tested) apart.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hepablate.core.volume import vec3
from hepablate.placement.geometry import (
    perpendicular_basis,
    segment_distance,
    template_2d,
    tilted_directions,
    unit,
)
from hepablate.placement.tract import check_liver_tract
from hepablate.plans.model import Fibre, Illumination

if TYPE_CHECKING:
    from hepablate.optimize.laser import LaserPlanner
    from hepablate.placement.paths import PathMap

#: Single-fibre zone radius (mm) at 1200 J and its growth per joule, from forward-model runs
#: of one bare fibre at 3 W in homogeneous liver (1 mm grid: 19 mm diameter at 1200 J, 23 mm
#: at 1800 J; docs/planning-laser.md). Only ranks candidates; the forward model decides.
REACH_AT_1200J_MM = 9.5
REACH_PER_J_MM = 2.0 / 600.0
#: Rotations of a multi-fibre template about the direction tried per spacing and energy: the
#: region's principal axis first, then evenly over the template's period (a line of two
#: fibres turned 60 deg passes where the principal orientation meets a vessel).
ROTATIONS = 3
#: Tilted path checks the planner may spend on blocked fibres per insertion direction and
#: per pick of the coarse search (each blocked fibre tries up to ~60 directions; bounded so
#: that a case where nothing passes stays fast: about 2 ms per check).
ANGLED_PATH_BUDGET = 2000


def reach_mm(energy_j: float) -> float:
    """Geometric zone radius (mm) of one tip position at `energy_j` (ranking only)."""
    return REACH_AT_1200J_MM + REACH_PER_J_MM * (energy_j - 1200.0)


@dataclass
class Candidate:
    direction: np.ndarray
    """The layout's common insertion direction (unit, LPS); an angled fibre has its own."""
    fibres: list[Fibre]
    illuminations: list[Illumination]
    n_fibres: int
    spacing_mm: float
    energy_j: float
    est_coverage: float
    shots: np.ndarray | None = None
    base_reach_mm: float = 0.0
    rotation_rad: float = 0.0
    angled: list[str] = field(default_factory=list)
    """Ids of fibres tilted off the common direction because their parallel path was blocked."""

    @property
    def key(self) -> tuple:
        return (self.n_fibres, self.spacing_mm, self.energy_j, len(self.illuminations))

    @property
    def total_energy_j(self) -> float:
        return sum(i.power_w * i.duration_s for i in self.illuminations)


def spacings(pl: LaserPlanner, n: int) -> list[float]:
    if n == 1:
        return [0.0]
    mid = 0.5 * (pl.s_min + pl.s_max)
    return sorted({round(pl.s_min, 2), round(mid, 2), round(pl.s_max, 2)})


def axial_positions(pl: LaserPlanner, a_min: float, a_max: float, reach: float) -> list[float]:
    """Tip positions along the fibre (mm from the centre, deepest first)."""
    first = a_max - 0.8 * reach
    last = a_min + 0.8 * reach
    if last >= first:
        return [0.5 * (a_min + a_max)]
    span = first - last
    n = 1 + math.ceil(span / pl.pb_hi - 1e-9)
    pb = max(span / (n - 1), pl.pb_lo)
    mid = 0.5 * (first + last)
    return [mid + pb * ((n - 1) / 2 - k) for k in range(n)]


def candidates(pl: LaserPlanner, d: np.ndarray, scale: float = 1.0) -> list[Candidate]:
    """Layouts along direction `d` (every fibre count, spacing, rotation and energy);
    `scale` multiplies the geometric zone reach (calibrated on the forward runs as the
    search goes)."""
    u, v = perpendicular_basis(d)
    rel = pl.region_pts - pl.centre
    a = rel @ d
    uv = np.stack([rel @ u, rel @ v], axis=1)
    w, vec = np.linalg.eigh(np.cov(uv.T))
    rot0 = math.atan2(vec[1, -1], vec[0, -1])
    out = []
    for n in range(pl.n_min, pl.n_max + 1):
        period = {2: math.pi, 3: 2 * math.pi / 3}.get(n, math.pi / 2)
        rots = [rot0] if n == 1 else [rot0 + k * period / ROTATIONS for k in range(ROTATIONS)]
        for s in spacings(pl, n):
            for rot in rots:
                c_r, s_r = math.cos(rot), math.sin(rot)
                base = np.zeros((1, 2)) if n == 1 else template_2d(n, s)
                pts2 = base @ np.array([[c_r, -s_r], [s_r, c_r]]).T
                for e in pl.energies:
                    out.append(_candidate(pl, d, u, v, a, pts2, n, s, e, scale, rot))
    return out


def _candidate(
    pl: LaserPlanner,
    d: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    pts2: np.ndarray,
    n: int,
    s: float,
    e: float,
    scale: float,
    rot: float,
) -> Candidate:
    reach = scale * reach_mm(e)
    axial = axial_positions(pl, float(a.min()), float(a.max()), reach)
    shots = np.array([pl.centre + p[0] * u + p[1] * v + ax * d for ax in axial for p in pts2])
    dist = np.linalg.norm(pl.region_pts[:, None, :] - shots[None], axis=-1)
    est = float((dist.min(axis=1) <= reach).mean())
    fibres = [
        Fibre(
            id=f"F{i + 1}",
            tip_lps_mm=vec3(
                round(float(x), 2) for x in pl.centre + p[0] * u + p[1] * v + axial[0] * d
            ),
            direction_lps=vec3(d),
        )
        for i, p in enumerate(pts2)
    ]
    dur = round(e / pl.power_w, 1)
    ills = [
        Illumination(
            step=k + 1,
            fibre=f.id,
            power_w=pl.power_w,
            duration_s=dur,
            energy_j=round(pl.power_w * dur, 3),
            pullback_mm=round(axial[0] - axial[k], 2),
        )
        for k in range(len(axial))
        for f in fibres
    ]
    return Candidate(d, fibres, ills, n, s, e, est, shots, reach_mm(e), rot)


# ---- paths -----------------------------------------------------------------------------------


def _check(pl: LaserPlanner, pm: PathMap, tip: np.ndarray, d: np.ndarray) -> Any:
    """`PathMap.check_path` and the liver tract, remembered per (tip, direction): the search
    meets the same fibre paths again at other energies and reach estimates."""
    key = (tuple(np.round(tip, 2)), tuple(np.round(d, 5)))
    got = pl.path_cache.get(key)
    if got is None:
        chk = pm.check_path(tip, d, exact_clearance=False)
        why = None
        if not chk.ok or chk.entry_lps_mm is None:
            why = chk.blocking or "a no-go structure"
        elif not check_liver_tract(pl.case, tip, d, pl.min_liver_mm).ok:
            why = "liver tract"
        got = (chk, why)
        pl.path_cache[key] = got
    return got


def _gap_ok(pl: LaserPlanner, placed: list[tuple[np.ndarray, np.ndarray]], entry, tip) -> bool:
    gap = pl.defaults.min_needle_gap_mm.value
    return all(segment_distance(entry, tip, e2, t2) >= gap for e2, t2 in placed)


def with_paths(pl: LaserPlanner, pm: PathMap, cand: Candidate) -> Candidate | None:
    """The candidate with skin entries and depths filled, or None if a fibre's path is
    unsafe (parallel and every allowed tilt) or crosses less than `min_liver_mm` of normal
    liver before the tumour (the fibre would sit in the capsule: planning.yaml
    `laser_min_liver_path_mm`). A blocked fibre keeps the middle of its illuminated range and
    turns by up to `max_probe_angle_deg`, smallest angle first, keeping
    `min_needle_gap_mm` from the other fibres' paths."""
    d = np.asarray(cand.direction, float)
    span = max((il.pullback_mm for il in cand.illuminations), default=0.0)
    max_deg = pl.defaults.max_probe_angle_deg.value
    fibres: list[Fibre] = []
    placed: list[tuple[np.ndarray, np.ndarray]] = []
    angled: list[str] = []
    centre2 = np.mean([np.asarray(f.tip_lps_mm, float) for f in cand.fibres], axis=0)
    for f in cand.fibres:
        tip = np.asarray(f.tip_lps_mm, float)
        chk, why = _check(pl, pm, tip, d)
        dirn = d
        ok = why is None and _gap_ok(pl, placed, chk.entry_lps_mm, tip)
        if not ok and cand.n_fibres > 1:
            pivot = tip - 0.5 * span * d
            off = tip - centre2
            for dd in tilted_directions(d, off, max_deg):
                if pl.angled_checks >= ANGLED_PATH_BUDGET:
                    pl.angled_budget_exhausted = True
                    break
                pl.angled_checks += 1
                # Checked as stored in the plan (rounded): a tip on the target's boundary can
                # flip the liver tract check by a rounding.
                dd = np.round(unit(dd), 6)
                t2 = np.round(pivot + 0.5 * span * dd, 2)
                c2, w2 = _check(pl, pm, t2, dd)
                if w2 is None and _gap_ok(pl, placed, c2.entry_lps_mm, t2):
                    tip, dirn, chk, why, ok = t2, dd, c2, None, True
                    angled.append(f.id)
                    break
        if not ok:
            why = why or "fibre gap"
            pl.blocked[why] = pl.blocked.get(why, 0) + 1
            return None
        placed.append((np.asarray(chk.entry_lps_mm, float), tip))
        fibres.append(
            f.model_copy(
                update={
                    "tip_lps_mm": vec3(round(float(x), 2) for x in tip),
                    "direction_lps": vec3(round(float(x), 6) for x in dirn),
                    "entry_lps_mm": tuple(round(float(x), 2) for x in chk.entry_lps_mm),
                    "depth_mm": round(chk.depth_mm, 2),
                }
            )
        )
    return dataclasses.replace(cand, fibres=fibres, angled=angled)


def clear_candidates(pl: LaserPlanner, pm: PathMap, cands: list[Candidate]) -> list[Candidate]:
    """The candidates whose fibre paths are clear, one rotation per (fibres, spacing,
    energy): the parallel one first, else the one with the best geometric estimate."""
    best: dict[tuple, Candidate] = {}
    for c in cands:
        got = with_paths(pl, pm, c)
        if got is None:
            continue
        k = got.key
        old = best.get(k)
        if old is None or (len(got.angled), -got.est_coverage) < (
            len(old.angled),
            -old.est_coverage,
        ):
            best[k] = got
    return list(best.values())
