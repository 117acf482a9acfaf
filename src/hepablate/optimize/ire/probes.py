"""Probes of a layout: which pairs are energised, needle paths clear of no-go structures,
probes placed shallower next to a structure, and angled probes where a parallel path is
blocked (from the start with `--allow-angled`, else once the search finds parallel paths
blocked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hepablate.core.volume import vec3
from hepablate.optimize.ire.model import SearchState
from hepablate.optimize.ire.options import Limits
from hepablate.placement.geometry import Layout2D, angle_deg, neighbour_pairs, unit
from hepablate.plans.model import Probe

if TYPE_CHECKING:
    from hepablate.optimize.ire.planner import IrePlanner


#: Needle paths the angled placements of one plan may check at most: each blocked probe tries
#: up to 60 directions, so without a bound a search over 8 windows, 5 probe counts and
#: 6 rotations can check millions of paths (minutes, issue 12). Past it, blocked probes
#: drop their layout as without angled placement, and the plan's notes say so.
ANGLED_PATH_BUDGET = 30_000


def unit_dir(v) -> np.ndarray:  # re-export for callers that build probes by hand
    return unit(np.asarray(v, float))


# ---- energised pairs -------------------------------------------------------------------------


def energised_pairs(
    points: np.ndarray, rule_max_mm: float, pair_max_mm: float | None = None
) -> list[tuple[int, int]]:
    """Probe pairs of a layout that are energised (index pairs, shortest first): every pair
    at most `rule_max_mm` apart (the spacing rule's limit at the generator's voltage); with
    `pair_max_mm` above it also the longer pairs up to `pair_max_mm` (the device's maximum
    spacing) that cross an open cell, i.e. that pass no other probe closer than a quarter
    of their length (the diagonals of a square cell, not the diagonal of a square through
    its central probe)."""
    if pair_max_mm is None or pair_max_mm <= rule_max_mm:
        return neighbour_pairs(points, rule_max_mm)
    from hepablate.placement.geometry import segments_distance

    pts = np.asarray(points, float)
    out = []
    for i, j in neighbour_pairs(pts, pair_max_mm):
        dij = float(np.linalg.norm(pts[i] - pts[j]))
        if dij > rule_max_mm * 1.01:
            others = [k for k in range(len(pts)) if k not in (i, j)]
            if others and float(segments_distance(pts[others], [(pts[i], pts[j])]).min()) < (
                0.25 * dij
            ):
                continue
        out.append((i, j))
    return out


def energised(lim: Limits, state: SearchState, points: np.ndarray) -> list[tuple[int, int]]:
    """The energised pairs of a layout's points in this round of the search."""
    return energised_pairs(points, lim.spacing_max_mm, state.pair_max_mm)


# ---- needle paths ----------------------------------------------------------------------------


def check_path(pl: IrePlanner, tip: np.ndarray, d: np.ndarray) -> Any:
    """`PathMap.check_path` with the entry region, remembered: the search meets the same
    needle paths again with other splits, reach estimates and pair sets."""
    key = (tuple(np.round(tip, 3)), tuple(np.round(d, 6)))
    chk = pl.path_cache.get(key)
    if chk is None:
        chk = pl.paths.check_path(
            np.asarray(tip, float), np.asarray(d, float), pl.entry, exact_clearance=False
        )
        pl.path_cache.put(key, chk)
    return chk


def blocked(pl: IrePlanner, why: str) -> tuple[bool, str]:
    """Count what stopped a layout (for the reason of an infeasible plan)."""
    pl.record.blocked[why] = pl.record.blocked.get(why, 0) + 1
    return False, why


def paths_ok(
    pl: IrePlanner,
    state: SearchState,
    probes: list[Probe],
    pairs: list[tuple[int, int]] | None = None,
) -> tuple[bool, str | None]:
    """Every needle path clear (and through the entry region), and with `pairs` (indices into
    `probes`) the angled probes' and the energised pairs' spacings within the limits."""
    for p in probes:
        chk = check_path(pl, np.asarray(p.tip_lps_mm), np.asarray(p.direction_lps))
        if not chk.ok:
            return blocked(pl, chk.blocking or "a no-go structure")
    if pairs is not None and any(max(pair) >= len(probes) for pair in pairs):
        # `make_probes(stop_at_blocked=True)` ended the list at a blocked probe.
        return blocked(pl, "a no-go structure")
    if pairs is not None and not angled_ok(pl, state, probes, pairs):
        return blocked(pl, "angled probe spacing")
    if pairs is not None and not pair_spacing_ok(pl.lim, probes, pairs):
        return blocked(pl, "probe spacing")
    return True, None


def pair_spacing_ok(lim: Limits, probes: list[Probe], pairs: list[tuple[int, int]]) -> bool:
    """Energised pairs stay within the device's spacing range (active centres), also when
    probes next to a no-go structure were placed much shallower than their neighbours."""
    from hepablate.placement.geometry import probe_spacing_mm

    hi = lim.spacing_device_max_mm or lim.spacing_max_mm
    return all(probe_spacing_mm(probes[i], probes[j]) <= hi + 1e-6 for i, j in pairs)


# ---- angled probes ----------------------------------------------------------


def angled_ok(
    pl: IrePlanner,
    state: SearchState,
    probes: list[Probe],
    pairs: list[tuple[int, int]],
    gaps: bool = True,
) -> bool:
    """Every pair of needles of which one is angled keeps `min_needle_gap_mm` between
    the paths (entry to tip; not checked with `gaps` False), and every energised pair
    (`pairs`, indices into `probes`) with an angled probe keeps its spacing along the
    exposure within the limits."""
    from hepablate.placement.geometry import exposure_spacing_mm, segment_distance

    dirs = [np.asarray(p.direction_lps, float) for p in probes]
    angled = [any(float(np.linalg.norm(di - dj)) > 1e-6 for dj in dirs) for di in dirs]
    if not any(angled):
        return True
    gap = pl.defaults.min_needle_gap_mm.value if gaps else -np.inf
    for i, p in enumerate(probes):
        for j in range(i):
            q = probes[j]
            if float(np.linalg.norm(dirs[i] - dirs[j])) <= 1e-6:
                continue
            if p.entry_lps_mm is not None and q.entry_lps_mm is not None:
                g = segment_distance(p.entry_lps_mm, p.tip_lps_mm, q.entry_lps_mm, q.tip_lps_mm)
                if g < gap:
                    return False
    for i, j in pairs:
        if float(np.linalg.norm(dirs[i] - dirs[j])) <= 1e-6:
            continue
        lo, hi = exposure_spacing_mm(probes[i], probes[j])
        if lo < pl.lim.spacing_min_mm - 1e-6 or hi > state.pair_max_mm * 1.01:
            return False
    return True


def angled_candidates(
    pl: IrePlanner,
    centre: np.ndarray,
    d: np.ndarray,
    offset: np.ndarray,
    prefer: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Directions to try for a probe whose parallel path is blocked, the active centre
    kept at `centre`: with an entry region first those that bring its entry into the
    region in the layout's arrangement (converging probes sharing a window); then entry-first,
    the skin entries within `max_probe_angle_deg` of `d` whose path to the centre screens
    clear (`placement.approach.cone_directions`, closest to `prefer` first: the direction of
    the probes it is paired with)."""
    from hepablate.placement.approach import cone_directions

    max_deg = pl.defaults.max_probe_angle_deg.value
    out: list[np.ndarray] = []
    if pl.entry is not None:
        e = np.asarray(pl.entry.centre_lps_mm, float)
        o = offset - (offset @ d) * d
        o = o / np.linalg.norm(o) if np.linalg.norm(o) > 1e-9 else o
        for rho in (0.6, 0.35, 0.8, 0.0):
            target = e + rho * pl.entry.radius_mm * o
            dd = unit_dir(centre - target)
            if angle_deg(dd, d) <= max_deg + 1e-9:
                out.append(dd)
    pl.record.count("angled_cone_screens")
    return out + cone_directions(
        pl.paths,
        centre,
        d,
        max_deg,
        pl.opts.patient_position,
        pl.entry,
        prefer=prefer,
    )


def place_angled(
    pl: IrePlanner,
    state: SearchState,
    centre: np.ndarray,
    d: np.ndarray,
    offset: np.ndarray,
    exposure: float,
    placed: list[Probe],
    partners: list[int],
    prev: Probe | None,
    tip_t: float,
) -> tuple[np.ndarray, np.ndarray, Any] | None:
    """An angled placement for a probe whose parallel path is blocked: its active centre
    stays where the layout puts it, its direction deviates by at most
    `max_probe_angle_deg`; the first direction (smallest deviation) whose path is clear
    and that keeps the spacing rules with the probes already placed wins. A pull-back
    cycle keeps the direction of the probe's previous cycle."""
    if pl.record.stats.get("angled_path_checks", 0) >= ANGLED_PATH_BUDGET:
        pl.record.stats["angled_budget_exhausted"] = 1
        return None
    tries: list[tuple[np.ndarray, np.ndarray, bool]] = []
    if prev is not None:
        dp = np.asarray(prev.direction_lps, float)
        if float(np.linalg.norm(dp - d)) > 1e-6:
            # Pulled back along its own line to this cycle's depth.
            ptip = np.asarray(prev.tip_lps_mm, float)
            back = float((ptip @ d - tip_t) / max(float(dp @ d), 1e-6))
            tries.append((ptip - back * dp, dp, False))
    prefer = None
    if partners:
        prefer = unit_dir(d + sum(np.asarray(placed[j].direction_lps, float) for j in partners))
    for dd in angled_candidates(pl, centre, d, offset, prefer):
        tries.append((centre + 0.5 * exposure * dd, dd, True))
    # A path clear to the active centre but not to the tip (the deep end next to a vessel
    # or duct) is placed shallower, as parallel probes are (`make_probes`).
    backs = [f * exposure for f in (0.25, 0.5, 0.75, 0.9) if f <= state.max_back_fraction + 1e-9]
    for tip, dd, can_back in tries:
        pl.record.count("angled_path_checks")
        chk = check_path(pl, tip, dd)
        if not chk.ok and can_back and chk.entry_lps_mm is not None:
            for back in backs:
                pl.record.count("angled_path_checks")
                chk = check_path(pl, tip - back * dd, dd)
                if chk.ok:
                    tip = tip - back * dd
                    break
        if not chk.ok:
            pl.record.count("angled_tries_blocked")
            continue
        cand = make_probe(pl.lim, len(placed), 1, tip, dd, exposure, chk)
        probes = [*placed, cand]
        pairs = [(j, len(placed)) for j in partners]
        if angled_ok(pl, state, probes, pairs):
            return tip, dd, chk
        pl.record.count("angled_tries_spacing")
    return None


# ---- making the probes of a layout -----------------------------------------------------------


def make_probe(lim: Limits, i: int, cycle: int, tip, d, exposure: float, chk) -> Probe:
    return Probe(
        id=f"P{i + 1}",
        cycle=cycle,
        tip_lps_mm=vec3(round(float(x), 2) for x in tip),
        direction_lps=vec3(round(float(x), 6) for x in d),
        exposure_mm=round(float(exposure), 1),
        diameter_mm=lim.diameter_mm,
        entry_lps_mm=None
        if chk.entry_lps_mm is None
        else vec3(round(float(x), 2) for x in chk.entry_lps_mm),
        depth_mm=None if chk.entry_lps_mm is None else round(chk.depth_mm, 1),
    )


def make_probes(
    pl: IrePlanner,
    state: SearchState,
    cycle: int,
    d: np.ndarray,
    lay: Layout2D,
    tip_t: float,
    exposure: float,
    u: np.ndarray,
    v: np.ndarray,
    prev: list[Probe] | None = None,
    stop_at_blocked: bool = False,
) -> list[Probe]:
    """The probes of one cycle of layout `lay` (plane spanned by u, v; needles along d, tips
    at depth `tip_t`); with `prev` the probes of the previous pull-back cycle. With
    `stop_at_blocked` the list ends at the first probe whose path stays blocked (the layout
    is lost anyway; `paths_ok` still names what blocked it)."""
    pts = lay.points()
    pairs = energised(pl.lim, state, pts)
    centre2 = pts.mean(axis=0)
    out: list[Probe] = []
    for i, (a, b) in enumerate(pts):
        tip0 = a * u + b * v + tip_t * d
        before = None if prev is None or i >= len(prev) else prev[i]
        if before is not None and angle_deg(np.asarray(before.direction_lps), d) > 1e-4:
            # A pull-back cycle: an angled probe is withdrawn along its own line (its path is
            # part of the previous cycle's), not reinserted along the layout's direction.
            dp = np.asarray(before.direction_lps, float)
            ptip = np.asarray(before.tip_lps_mm, float)
            tip = ptip - max(float((ptip @ d - tip_t) / max(float(dp @ d), 1e-6)), 0.0) * dp
            chk = check_path(pl, tip, dp)
            out.append(make_probe(pl.lim, i, cycle, tip, dp, exposure, chk))
            if stop_at_blocked and not placed_ok(pl, out[-1]):
                break
            continue
        tip = tip0
        chk = check_path(pl, tip, d)
        # A probe whose deep end comes too close to a no-go structure is placed shallower
        # (as done in practice next to a vessel), by up to half its exposure (more once
        # the search finds the shortfall next to such a structure).
        back = 0.0
        while (
            not chk.ok
            and chk.entry_lps_mm is not None
            and back < exposure * state.max_back_fraction
        ):
            back += 1.0
            chk = check_path(pl, tip - back * d, d)
        if chk.ok:
            tip = tip - back * d
        dirn = d
        if state.angled:
            partners = [j for j, k in pairs if k == i] + [k for j, k in pairs if j == i]
            partners = [j for j in partners if j < i]
            probe = make_probe(pl.lim, i, cycle, tip, d, exposure, chk)
            if not chk.ok or not angled_ok(pl, state, [*out, probe], [(j, i) for j in partners]):
                off = (a - centre2[0]) * u + (b - centre2[1]) * v
                got = place_angled(
                    pl,
                    state,
                    tip0 - 0.5 * exposure * d,
                    d,
                    off,
                    exposure,
                    out,
                    partners,
                    None if prev is None or i >= len(prev) else prev[i],
                    tip_t,
                )
                if got is not None:
                    tip, dirn, chk = got
        out.append(make_probe(pl.lim, i, cycle, tip, dirn, exposure, chk))
        if stop_at_blocked and not placed_ok(pl, out[-1]):
            break
    return out


def placed_ok(pl: IrePlanner, probe: Probe) -> bool:
    """The path of a placed probe clear, checked at its stored (rounded) tip and direction
    as `paths_ok` checks it: a path on the edge of clear may flip with the rounding."""
    return bool(check_path(pl, np.asarray(probe.tip_lps_mm), np.asarray(probe.direction_lps)).ok)
