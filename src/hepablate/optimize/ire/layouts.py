"""Candidate layouts (step 2 of the search): for each insertion direction, the smallest layout
of 2 to 6 probes whose pair bands, grown by the zone-reach estimate, contain the target
region projected across the needles; pull-back cycles along the needles, and repositioning
splits for targets no single placement covers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from hepablate.optimize.ire.model import Candidate, CycleLayout, SearchState
from hepablate.optimize.ire.probes import (
    blocked,
    energised,
    energised_pairs,
    make_probes,
    pair_spacing_ok,
    paths_ok,
)
from hepablate.placement.geometry import Layout2D, perpendicular_basis, template_2d
from hepablate.placement.paths import candidate_directions

if TYPE_CHECKING:
    from hepablate.optimize.ire.planner import IrePlanner

#: Most repositioning placements the region may be split into (along its principal axis in
#: the plane across the needles); each may need pull-back cycles as well (`max_cycles` in all).
MAX_SPLITS = 3
#: Insertion directions tried per round (`placement.approach.approaches` order: windows of
#: every kind, shortest clear path first within each).
MAX_DIRECTIONS = 8
#: With angled placement each blocked probe tries many directions: the first 4 windows only.
ANGLED_DIRECTIONS = 4
#: Lattice (mm) of the clear-path fraction that orders the windows for angled probes.
OPEN_STEP_MM = 4.0


# ---- fitting one layout ----------------------------------------------------------------------


def _pair_segments(
    n: int, spacing_mm: float, max_spacing_mm: float, pair_max_mm: float | None = None
) -> list[tuple[int, int]]:
    pts = Layout2D(n, spacing_mm, 0.0, (0.0, 0.0)).points()
    return energised_pairs(pts, max_spacing_mm, pair_max_mm)


def _fit_layout(
    pts: np.ndarray,
    n: int,
    s: float,
    rot: float,
    max_spacing_mm: float,
    tumour_pts: np.ndarray | None = None,
    tumour_weight: float = 1.0,
    pair_max_mm: float | None = None,
) -> tuple[float, Layout2D]:
    """Place an (n, s, rot) layout over the projected region points `pts` (2D, mm): centre on
    their bounding box in the layout frame, refined by a short pattern search. Returns the
    largest distance of a point from the nearest energised pair (segment between the two
    probes; each pair's zone is a band around it) and the layout.

    With `tumour_pts` and `tumour_weight` > 1 the tumour's own points count `tumour_weight`
    times their distance: the tumour must lie deeper inside the pair bands than the margin
    (a pair's field is weakest at the middle of a layout cell, which is where a small tumour
    with a wide margin ends up when only the region's outline is fitted)."""
    from hepablate.placement.geometry import max_segments_distance

    pairs = _pair_segments(n, s, max_spacing_mm, pair_max_mm)
    if not pairs:
        return np.inf, Layout2D(n, s, rot, (0.0, 0.0))
    c, sn = np.cos(rot), np.sin(rot)
    rmat = np.array([[c, -sn], [sn, c]])
    local = pts @ rmat
    tum_local = None
    if tumour_pts is not None and len(tumour_pts) and tumour_weight > 1.0 + 1e-9:
        tum_local = np.asarray(tumour_pts, float) @ rmat
    ctr = 0.5 * (local.min(axis=0) + local.max(axis=0))
    base = Layout2D(n, s, 0.0, (0.0, 0.0)).points()

    def cost(centre_local: np.ndarray) -> float:
        q = base + centre_local
        segs = [(q[i], q[j]) for i, j in pairs]
        val = max_segments_distance(local, segs)
        if tum_local is not None:
            val = max(val, tumour_weight * max_segments_distance(tum_local, segs))
        return val

    best = cost(ctr)
    if tum_local is not None:
        # The weighted cost is flat while the middle of a cell covers the tumour: also start
        # from the placements that put the middle of each energised pair on the tumour.
        tc = tum_local.mean(axis=0)
        for i, j in pairs:
            cand = tc - 0.5 * (base[i] + base[j])
            val = cost(cand)
            if val < best - 1e-6:
                best, ctr = val, cand
    step = 1.0
    while step >= 0.5:
        improved = False
        for dc in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
            cand = ctr + np.asarray(dc)
            val = cost(cand)
            if val < best - 1e-6:
                best, ctr, improved = val, cand, True
        if not improved:
            step /= 2
    centre = rmat @ ctr
    return best, Layout2D(n, s, rot, (float(centre[0]), float(centre[1])))


def _layout_area(lay: Layout2D, reach: float) -> float:
    """Area (mm^2) of the layout polygon grown by `reach`: a proxy for the zone's size."""
    from hepablate.placement.geometry import template_hull_order

    pts = lay.points()
    if len(pts) == 2:
        return 2 * reach * lay.spacing_mm + math.pi * reach**2
    h = pts[template_hull_order(lay.n)]
    x, y = h[:, 0], h[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    perim = float(np.linalg.norm(h - np.roll(h, -1, axis=0), axis=1).sum())
    return area + perim * reach + math.pi * reach**2


# ---- along the needles: pull-back cycles -----------------------------------------------------


def axial_cycles(pl: IrePlanner, t: np.ndarray, axial_reach: float) -> list[tuple[float, float]]:
    """(tip_t, exposure) per pull-back cycle covering [t.min(), t.max()]; a pull-back moves
    the needles back by the exposure minus the overlap."""
    lim = pl.lim
    # Consecutive cycles overlap (planning.yaml `pullback_overlap_mm`): the zone tapers at
    # the needle ends, and abutting cycles leave a waist below threshold at the junction.
    ov = min(pl.defaults.pullback_overlap_mm.value, 0.5 * lim.exposure_practice_max_mm)
    tmin, tmax = float(t.min()), float(t.max())
    length = max(tmax - tmin - 2 * axial_reach, lim.exposure_min_mm)
    m = max(1, math.ceil((length - ov) / (lim.exposure_practice_max_mm - ov) - 1e-9))
    exp = max((length + (m - 1) * ov) / m, lim.exposure_min_mm)
    tip0 = tmax - axial_reach
    return [(tip0 - k * (exp - ov), exp) for k in range(m)]


def axial_mask(
    pl: IrePlanner, d: np.ndarray, tip_t: float, exp: float, axial: list[tuple[float, float]]
) -> np.ndarray:
    """Region voxels assigned to the pull-back cycle whose active part ends at tip_t."""
    mask = np.zeros(pl.region.shape, dtype=bool)
    idx = np.argwhere(pl.search_region)
    t = pl.grid.index_to_lps(idx[:, ::-1].astype(float)) @ d
    first = tip_t == max(a for a, _ in axial)
    last = tip_t == min(a for a, _ in axial)
    hi = np.inf if first else tip_t
    lo = -np.inf if last else tip_t - exp
    sel = (t <= hi) & (t > lo)
    mask[idx[sel, 0], idx[sel, 1], idx[sel, 2]] = True
    return mask


# ---- across the needles: the smallest layout per probe count ---------------------------------


def best_layout(
    pl: IrePlanner,
    state: SearchState,
    uv: np.ndarray,
    tuv: np.ndarray,
    d: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    t: np.ndarray,
    exclude: set[tuple],
    tag: tuple,
) -> tuple[list[tuple[float, Layout2D, list]], bool]:
    """Per probe count, the layout with the smallest zone proxy that fits the projected part
    `uv` (tumour points `tuv`) by the reach estimate and whose needle paths are clear, as
    (area, layout, pull-back cycles), smallest first; and whether any layout fits this part
    by the reach estimate (paths aside)."""
    # Thin the projected points to a 2 mm 2D grid (keeps the fit cheap).
    cell = np.unique(np.round(uv / 2.0).astype(int), axis=0)
    pts2 = cell * 2.0
    tpts2 = np.unique(np.round(tuv / 2.0).astype(int), axis=0) * 2.0 if len(tuv) else None
    tw = state.tumour_weight
    reach_factor = state.reach_factor
    pts_key = (pts2.tobytes(), None if tpts2 is None else tpts2.tobytes())
    smin, smax = pl.lim.spacing_min_mm, pl.lim.spacing_max_mm

    def fit(n: int, s: float, rot: float) -> tuple[float, Layout2D]:
        # The search meets the same fits again in later rounds (other reach estimates,
        # the next candidate): remembered.
        key = (pts_key, n, float(s), float(rot), smax, tw, state.pair_max_mm)
        got = pl.fit_cache.get(key)
        if got is None:
            got = _fit_layout(pts2, n, s, rot, smax, tpts2, tw, state.pair_max_mm)
            pl.fit_cache.put(key, got)
        return got

    axial = axial_cycles(pl, t, state.axial_reach)
    cov = np.cov((uv - uv.mean(axis=0)).T)
    w, vecs = np.linalg.eigh(cov)
    major = vecs[:, int(np.argmax(w))]
    rot0 = float(np.arctan2(major[1], major[0]))
    fits = False
    per_n: list[tuple[float, Layout2D, list]] = []
    for n in range(pl.lim.probes_min, pl.lim.probes_max + 1):
        best = None
        unit_pts = template_2d(n, 1.0)
        dd = np.linalg.norm(unit_pts[:, None] - unit_pts[None], axis=-1)
        nearest = float(dd[~np.eye(n, dtype=bool)].min())
        # Every probe pair (e.g. the centre spokes of the 5-probe layout) respects the
        # minimum spacing.
        spacings = np.arange(max(smin, math.ceil(smin / nearest - 1e-9)), smax + 1e-9, 1.0)
        if spacings.size == 0:
            continue
        period = {2: np.pi, 3: 2 * np.pi / 3, 4: np.pi / 2, 5: np.pi / 2, 6: np.pi}[n]
        for rot in rot0 + np.linspace(0, period, 6, endpoint=False):
            # Smallest spacing that fits (the fit improves with spacing): bisection.
            lo, hi = 0, len(spacings) - 1
            fit_hi, lay_hi = fit(n, spacings[hi], rot)
            if fit_hi > reach_factor * spacings[hi]:
                continue
            found = (spacings[hi], lay_hi)
            while lo < hi:
                mid = (lo + hi) // 2
                f, lay = fit(n, spacings[mid], rot)
                if f <= reach_factor * spacings[mid]:
                    hi, found = mid, (spacings[mid], lay)
                else:
                    lo = mid + 1
            s, lay = found
            fits = True
            key = (n, round(float(s), 1), round(lay.rotation_rad, 2), tag, round(tw, 2))
            if key in exclude:
                continue
            area = _layout_area(lay, reach_factor * s)
            if best is not None and area >= best[0] - 1e-6:
                continue
            probes = make_probes(
                pl, state, 1, d, lay, axial[0][0], axial[0][1], u, v, stop_at_blocked=True
            )
            ok, _ = paths_ok(pl, state, probes, energised(pl.lim, state, lay.points()))
            if ok:
                best = (area, lay, axial)
        if best is not None:
            per_n.append(best)
    per_n.sort(key=lambda x: x[0])
    return per_n, fits


# ---- candidate multi-cycle layouts -----------------------------------------------------------


def candidate_layouts(
    pl: IrePlanner, state: SearchState, exclude: set[tuple]
) -> tuple[list[Candidate], bool]:
    """Candidate multi-cycle layouts, best first: fewest repositionings, then the smallest
    zone proxy; and whether a single placement fits the target by the zone-reach estimate
    (paths aside: if not, the target is large, see `search`)."""
    pts = pl.grid.index_to_lps(np.argwhere(pl.search_region)[:, ::-1].astype(float))
    centre = pts.mean(axis=0)
    dirs = candidate_directions(
        centre, pl.paths, pl.defaults.max_tilt_deg.value, pl.entry, pl.opts.patient_position
    )[:MAX_DIRECTIONS]
    if state.angled:
        dirs = most_open(pl, dirs, pts)[:ANGLED_DIRECTIONS]
    out: list[Candidate] = []
    single_fits = False
    mask_idx = np.argwhere(pl.search_region)
    is_tum = pl.structures[pl.case.target_key][
        mask_idx[:, 0], mask_idx[:, 1], mask_idx[:, 2]
    ].astype(bool)
    for di, d in enumerate(dirs):
        u, v = perpendicular_basis(d)
        uv = np.stack([pts @ u, pts @ v], axis=1)
        t = pts @ d
        # Principal axis of the projected region (for repositioning splits).
        cov = np.cov((uv - uv.mean(axis=0)).T)
        w, vecs = np.linalg.eigh(cov)
        major = vecs[:, int(np.argmax(w))]
        coord = (uv - uv.mean(axis=0)) @ major
        added = False
        for n_split in range(1, MAX_SPLITS + 1):
            if n_split > pl.max_cycles:
                break
            edges = np.quantile(coord, np.linspace(0, 1, n_split + 1))
            sels = [
                (coord >= edges[pi] - 1e-9) & (coord <= edges[pi + 1] + 1e-9)
                for pi in range(n_split)
            ]
            options = []
            for pi, sel in enumerate(sels):
                per_n, fits = best_layout(
                    pl,
                    state,
                    uv[sel],
                    uv[sel & is_tum],
                    d,
                    u,
                    v,
                    t[sel],
                    exclude,
                    (di, n_split, pi),
                )
                single_fits |= fits and n_split == 1
                options.append(per_n)
            if not all(options):
                continue
            # One candidate per probe count for a single placement; the best layout of
            # each part when the region is split.
            variants = range(len(options[0])) if n_split == 1 else range(1)
            for var in variants:
                chosen = [options[0][var]] if n_split == 1 else [o[0] for o in options]
                cycles = _cycles_of(pl, state, d, u, v, sels, chosen, mask_idx)
                if cycles is None:
                    continue
                score = sum(c[0] for c in chosen)
                key = (
                    di,
                    n_split,
                    tuple(
                        (c[1].n, round(float(c[1].spacing_mm), 1), round(c[1].rotation_rad, 2))
                        for c in chosen
                    ),
                    round(state.tumour_weight, 2),
                )
                if key not in exclude:
                    out.append((score * (1 + 0.05 * di), cycles, key))
                    added = True
            if added:
                break  # fewer repositionings first
    # Fewest repositionings first (each adds a placement and its cycles), then the zone
    # proxy (three small layouts can have less area than two larger ones).
    out.sort(key=lambda x: (x[2][1], x[0]))
    return out, single_fits


def in_range_pairs(
    pl: IrePlanner, state: SearchState, probes: list, pairs: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The energised pairs (indices into `probes`) whose spacing along the exposure stays
    within the limits (`probes.angled_ok`); empty if a probe would be left without a pair."""
    from hepablate.optimize.ire.probes import angled_ok

    keep = [pr for pr in pairs if angled_ok(pl, state, probes, [pr], gaps=False)]
    if {k for pr in keep for k in pr} != {k for pr in pairs for k in pr}:
        return []
    return keep


def most_open(pl: IrePlanner, dirs: list[np.ndarray], pts: np.ndarray) -> list[np.ndarray]:
    """`dirs` ordered by the fraction of the target's cross-section with a clear parallel path
    (`placement.paths.clear_cross_section` on an `OPEN_STEP_MM` lattice), most open first
    (stable: the approach order breaks ties): with angled probes the search tries the windows
    where most probes need no angle, or a small one, first."""
    from hepablate.placement.paths import clear_cross_section

    def frac(d: np.ndarray) -> float:
        key = tuple(np.round(d, 6))
        if key not in pl.open_fraction:
            pl.open_fraction[key] = clear_cross_section(pl.paths, pts, d, OPEN_STEP_MM, pl.entry)
        return pl.open_fraction[key]

    order = sorted(range(len(dirs)), key=lambda i: -frac(dirs[i]))
    pl.record.stats["open_fraction_best"] = round(frac(dirs[order[0]]), 3) if dirs else 0.0
    return [dirs[i] for i in order]


def _cycles_of(
    pl: IrePlanner,
    state: SearchState,
    d: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    sels: list[np.ndarray],
    chosen: list[tuple[float, Layout2D, list]],
    mask_idx: np.ndarray,
) -> list[CycleLayout] | None:
    """The cycles of one placement per region part (`sels`, `chosen`), each with its pull-back
    cycles; None if a cycle's probes break the spacing rules or there are too many cycles."""
    cycles: list[CycleLayout] = []
    bad_cycle = False
    for sel, (_, lay, axial) in zip(sels, chosen, strict=True):
        part = np.zeros(pl.region.shape, dtype=bool)
        mi = mask_idx[sel]
        part[mi[:, 0], mi[:, 1], mi[:, 2]] = True
        prev = None
        for tip_t, exp in axial:
            cyc = len(cycles) + 1
            probes = make_probes(pl, state, cyc, d, lay, tip_t, exp, u, v, prev)
            pulled_back = prev is not None
            prev = probes
            pairs = energised(pl.lim, state, lay.points())
            if state.angled and pulled_back:
                # Pulled back along converging or diverging lines, an angled pair's spacing
                # changes with depth: pairs that leave the range are not energised in this
                # cycle, while every probe keeps a pair.
                pairs = in_range_pairs(pl, state, probes, pairs)
            if (
                not pairs
                or (state.angled and not paths_ok(pl, state, probes, pairs)[0])
                or not pair_spacing_ok(pl.lim, probes, pairs)
            ):
                bad_cycle = True
            sub = part & axial_mask(pl, d, tip_t, exp, axial)
            cycles.append(CycleLayout(cyc, d, lay, tip_t, exp, probes, pairs, sub))
    if len(cycles) > pl.max_cycles:
        blocked(pl, f"more than {pl.max_cycles} cycles")
        return None
    if bad_cycle:
        return None
    return cycles
