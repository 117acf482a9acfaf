"""Needle approaches as clinicians use them (LPS, mm; issue 12): the skin a patient position
exposes, candidate insertion directions sampled finely enough to find intercostal windows,
each classified (intercostal, subcostal, direct) and ordered so that windows of every kind
get tried, shortest clear path first within each.

Directions join the target to skin points sampled every `skin_sample_mm` on the body surface
(not on the faces of the image grid, which are not skin), with craniocaudal tilt up to
planning.yaml `max_tilt_deg`, on skin the position exposes (`positions` of approaches.yaml).
All are screened at once on the voxel-centred distance maps; only those that can be clear get
the exact path check. The settings, with sources, are in
src/hepablate/data/approaches.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict

from hepablate.anatomy.tissues import Quantity
from hepablate.placement.geometry import unit

if TYPE_CHECKING:  # avoids an import cycle with paths.py
    from hepablate.placement.paths import EntryRegion, PathMap

PatientPosition = Literal["supine", "prone", "left_lateral_decubitus"]
POSITIONS: tuple[PatientPosition, ...] = ("supine", "prone", "left_lateral_decubitus")
ApproachKind = Literal["intercostal", "subcostal", "direct"]

#: A canonical direction (15 deg steps, axial plane first) is preferred to a sampled skin point
#: whose path is up to this much shorter (mm): operators set round gantry/needle angles.
LATTICE_PREFERENCE_MM = 3.0
#: Blocked directions kept (after the clear ones), the least blocked first.
MAX_BLOCKED = 64
#: Screened directions that get the exact check, per 45 deg of azimuth and tilt band
#: (below -15, -15 to 15, above 15 deg), shortest first.
EXACT_PER_BUCKET = 12
#: Directions of a cone (`cone_directions`) handed on for the exact check, per needle.
CONE_EXACT = 16
#: Screened cones remembered per `PathMap` (the search meets the same probe positions again).
CONE_CACHE_ENTRIES = 20_000


class PositionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sectors_deg: list[tuple[float, float]]
    source: str


class Crossable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str


class ApproachSettings(BaseModel):
    """approaches.yaml (see there for the source of each value)."""

    model_config = ConfigDict(extra="forbid")
    format_version: int = 1
    skin_sample_mm: Quantity[float]
    window_bone_mm: Quantity[float]
    subcostal_tilt_deg: Quantity[float]
    structure_safety_distance_mm: dict[str, Quantity[float]]
    crossable_with_warning: dict[str, Crossable]
    positions: dict[PatientPosition, PositionSpec]


@lru_cache(maxsize=1)
def load_approach_settings() -> ApproachSettings:
    raw: dict[str, Any] = yaml.safe_load(
        resources.files("hepablate.data").joinpath("approaches.yaml").read_text()
    )
    return ApproachSettings.model_validate(raw)


def azimuth_deg(back: np.ndarray) -> float:
    """Azimuth (deg, (-180, 180]) of a direction towards the skin in the axial plane: 0 =
    patient's left, 90 = posterior, 180 = patient's right, -90 = anterior."""
    return float(np.degrees(np.arctan2(back[1], back[0])))


def tilt_deg(back: np.ndarray) -> float:
    """Craniocaudal tilt (deg) of a direction towards the skin: > 0 entry cranial."""
    return float(np.degrees(np.arcsin(np.clip(unit(back)[2], -1.0, 1.0))))


def accessible(back: np.ndarray, position: PatientPosition) -> bool:
    """Whether an entry in direction `back` (target -> skin) lies on skin that `position`
    exposes (approaches.yaml sectors). A near-vertical direction counts by the sector of its
    small axial part, as before."""
    az = azimuth_deg(np.asarray(back, float))
    sectors = load_approach_settings().positions[position].sectors_deg
    return any(lo - 1e-9 <= az <= hi + 1e-9 for lo, hi in sectors)


def side_of(back: np.ndarray) -> str:
    """anterior / posterior / right lateral / left lateral (45 deg sectors around each)."""
    az = azimuth_deg(back)
    if -135.0 <= az <= -45.0:
        return "anterior"
    if 45.0 <= az <= 135.0:
        return "posterior"
    return "left lateral" if -45.0 < az < 45.0 else "right lateral"


@dataclass
class Approach:
    """One candidate insertion direction with its central path (from the target centre)."""

    direction_lps: np.ndarray
    """Unit vector, skin entry -> tip."""
    entry_lps_mm: np.ndarray
    depth_mm: float
    azimuth_deg: float
    tilt_deg: float
    side: str
    kind: ApproachKind
    clear: bool
    """Whether the central path keeps every safety distance."""
    blocking: str | None
    margin_mm: float = 0.0
    """Smallest clearance minus the structure's own safety distance (mm)."""
    lattice: bool = False
    """A canonical direction (15 deg steps of azimuth and tilt) rather than a skin sample."""

    def describe(self) -> str:
        return (
            f"{self.kind} {self.side} (azimuth {self.azimuth_deg:.0f} deg, craniocaudal "
            f"{self.tilt_deg:+.0f} deg, depth {self.depth_mm:.0f} mm)"
        )


def skin_points(pm: PathMap) -> np.ndarray:
    """Body-surface points (LPS mm), one per `skin_sample_mm` cube, off the grid faces."""
    from scipy import ndimage

    body = pm.body
    surf = body & ~ndimage.binary_erosion(body, border_value=1)
    # A body voxel on a face of the grid is where the image cuts the body, not skin.
    surf[[0, -1], :, :] = surf[:, [0, -1], :] = surf[:, :, [0, -1]] = False
    idx = np.argwhere(surf)
    pts = pm.grid.index_to_lps(idx[:, ::-1].astype(float))
    cell = load_approach_settings().skin_sample_mm.value
    _, first = np.unique(np.floor(pts / cell).astype(np.int64), axis=0, return_index=True)
    return pts[np.sort(first)]


def _screen(pm: PathMap, c: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Coarse margin (mm; clearance minus required, smallest over the path) of the segments
    from each skin point to `c`, read from `PathMap.margin_map` about once per voxel along
    each (in index space, where the segments stay straight). Exact margins lie within one
    half-diagonal above and two below."""
    grid = pm.grid
    mmap = pm.margin_map()
    n = len(skin)
    a = grid.lps_to_index(skin)
    b = grid.lps_to_index(c[None, :])[0]
    m = int(np.ceil(float(np.abs(a - b[None, :]).max()))) + 1
    frac = np.linspace(0.0, 1.0, m, dtype=np.float32)
    shape = np.array(grid.shape_ijk) - 1
    margin = np.full(n, np.inf, dtype=np.float32)
    chunk = max(1, 2_000_000 // m)
    for s0 in range(0, n, chunk):
        aa = a[s0 : s0 + chunk].astype(np.float32)
        ijk = aa[:, None, :] + frac[None, :, None] * (b.astype(np.float32) - aa)[:, None, :]
        ijk = np.clip(np.rint(ijk), 0, shape).astype(np.intp)
        vals = mmap[ijk[..., 2], ijk[..., 1], ijk[..., 0]]
        margin[s0 : s0 + chunk] = vals.min(axis=1)
    return margin.astype(float)


def cone_directions(
    pm: PathMap,
    point: np.ndarray,
    d: np.ndarray,
    max_angle_deg: float,
    position: PatientPosition = "supine",
    entry_region: EntryRegion | None = None,
    limit: int = CONE_EXACT,
    prefer: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Insertion directions (skin -> `point`, unit LPS) within `max_angle_deg` of `d` whose
    straight path from a skin point the patient `position` exposes (and inside `entry_region`,
    if given) to `point` screens clear on `PathMap.margin_map`: entry-first placement of one
    needle whose own parallel path is blocked. Surely clear paths first, the smallest deviation
    from `prefer` (default `d`; e.g. the direction of the needles it is paired with) first;
    then those within the screen's uncertainty, the largest screened margin first; at most
    `limit` (they still need the exact path check)."""
    d = unit(np.asarray(d, float))
    p = np.asarray(point, float)
    region = None if entry_region is None else (entry_region.centre_lps_mm, entry_region.radius_mm)
    key = (tuple(np.round(p, 3)), tuple(np.round(d, 6)), float(max_angle_deg), position, region)
    got = pm.cone_cache.get(key)
    if got is None:
        got = _screen_cone(pm, p, d, max_angle_deg, position, entry_region)
        if len(pm.cone_cache) >= CONE_CACHE_ENTRIES:
            pm.cone_cache.clear()
        pm.cone_cache[key] = got
    to, margin = got
    if len(to) == 0:
        return []
    half = 0.5 * float(np.linalg.norm(pm.grid.spacing_mm))
    pref = d if prefer is None else unit(np.asarray(prefer, float))
    # Exact margins lie within [coarse - 2 h, coarse + h]: above 2 h the path is surely clear.
    # Surely clear: the smallest deviation first; the rest: the likeliest to be clear first.
    sure = np.flatnonzero(margin >= 2.0 * half)
    rest = np.flatnonzero(margin < 2.0 * half)
    a = sure[np.argsort(-(to[sure] @ pref), kind="stable")]
    b = rest[np.argsort(-margin[rest], kind="stable")]
    return [to[i].copy() for i in np.concatenate([a, b])[:limit]]


def _screen_cone(
    pm: PathMap,
    p: np.ndarray,
    d: np.ndarray,
    max_angle_deg: float,
    position: PatientPosition,
    entry_region: EntryRegion | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(directions skin -> p, coarse margins) of the skin points within the cone whose margin
    may be clear (above minus one half-diagonal)."""
    skin = pm.skin_points()
    to = p[None, :] - skin
    dist = np.linalg.norm(to, axis=1)
    ok = dist > 1e-9
    to[ok] /= dist[ok, None]
    ok &= to @ d >= np.cos(np.radians(max_angle_deg)) - 1e-12
    if entry_region is not None:
        c = np.asarray(entry_region.centre_lps_mm, float)
        ok &= np.linalg.norm(skin - c[None, :], axis=1) <= entry_region.radius_mm
    idx = np.array([i for i in np.flatnonzero(ok) if accessible(-to[i], position)], dtype=int)
    if idx.size == 0:
        return np.zeros((0, 3)), np.zeros(0)
    margin = _screen(pm, p, skin[idx])
    half = 0.5 * float(np.linalg.norm(pm.grid.spacing_mm))
    keep = margin >= -half - 1e-9
    return to[idx[keep]], margin[keep]


def _lattice(max_tilt_deg: float) -> list[np.ndarray]:
    """Directions towards the skin at 15 deg steps of azimuth (24) and tilt (0, +-15, ...)."""
    tilts = [0.0] + [sg * t for t in np.arange(15.0, max_tilt_deg + 1e-9, 15.0) for sg in (1, -1)]
    out = []
    for tilt in tilts:
        c, sz = np.cos(np.radians(tilt)), np.sin(np.radians(tilt))
        for az in np.linspace(0, 2 * np.pi, 24, endpoint=False):
            out.append(np.array([np.cos(az) * c, np.sin(az) * c, sz]))
    return out


def _approach(pm: PathMap, d: np.ndarray, chk: Any, lattice: bool = False) -> Approach:
    back = -d
    return Approach(
        lattice=lattice,
        direction_lps=d,
        entry_lps_mm=chk.entry_lps_mm,
        depth_mm=chk.depth_mm,
        azimuth_deg=azimuth_deg(back),
        tilt_deg=tilt_deg(back),
        side=side_of(back),
        kind=classify(pm, chk.entry_lps_mm, d, chk.depth_mm),  # type: ignore[arg-type]
        clear=chk.ok,
        blocking=chk.blocking,
        margin_mm=chk.margin_mm,
    )


def classify(pm: PathMap, entry: np.ndarray, direction: np.ndarray, depth_mm: float) -> str:
    """intercostal (the path passes within `window_bone_mm` of a rib or costal cartilage),
    subcostal (it does not, and points cranially by more than `subcostal_tilt_deg`) or
    direct (also every path of a case without segmented ribs)."""
    s = load_approach_settings()
    d = unit(direction)
    t = np.arange(0.0, depth_mm + 1e-9, 2.0)
    pts = entry[None, :] + t[:, None] * d[None, :]
    bone = pm.distance_to_bases(pts, {"bone", "cartilage"})
    if bone is None:
        return "direct"  # no ribs segmented: no costal margin to go under or between
    if float(np.min(bone)) <= s.window_bone_mm.value:
        return "intercostal"
    if -tilt_deg(-d) > s.subcostal_tilt_deg.value:
        return "subcostal"
    return "direct"


def _spread(items: list[Approach], min_deg: float = 10.0) -> list[Approach]:
    """Reorder so that consecutive picks differ by at least `min_deg` where possible (the
    shortest first, then the shortest that is not a near duplicate of those taken, ...)."""
    rest = list(range(len(items)))
    out: list[int] = []
    cos_min = np.cos(np.radians(min_deg))
    dirs = np.array([a.direction_lps for a in items]).reshape(-1, 3)
    while rest:
        taken = [i for i in rest if all(float(dirs[i] @ dirs[j]) < cos_min for j in out)]
        pick = taken[0] if taken else rest[0]
        out.append(pick)
        rest.remove(pick)
    return [items[i] for i in out]


def approaches(
    target_centre: np.ndarray,
    pm: PathMap,
    max_tilt_deg: float,
    position: PatientPosition = "supine",
    entry_region: EntryRegion | None = None,
) -> list[Approach]:
    """Candidate approaches to `target_centre`, ordered: those whose central path is clear
    first, windows of the different kinds (intercostal, subcostal, direct; per side)
    interleaved, each kind shortest first and spread over distinct directions; then the
    blocked ones by depth (a layout's other probes may still pass). With an entry region: the
    directions from a few of its points, shortest first."""
    c = np.asarray(target_centre, float)
    region = None if entry_region is None else (entry_region.centre_lps_mm, entry_region.radius_mm)
    key = (tuple(np.round(c, 3)), float(max_tilt_deg), position, region)
    cache = pm.approach_cache
    if key not in cache:
        cache[key] = _approaches(c, pm, max_tilt_deg, position, entry_region)
    return list(cache[key])


def _approaches(
    c: np.ndarray,
    pm: PathMap,
    max_tilt_deg: float,
    position: PatientPosition,
    entry_region: EntryRegion | None,
) -> list[Approach]:
    found: list[Approach] = []
    if entry_region is not None:
        e = np.asarray(entry_region.centre_lps_mm, float)
        r = entry_region.radius_mm
        offs = [np.zeros(3)] + [
            np.asarray(o, float) * r / 2
            for o in ([1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1])
        ]
        dirs = [unit(c - (e + o)) for o in offs]
        for d in dirs:
            chk = pm.check_path(c, d, entry_region, exact_clearance=False)
            if chk.entry_lps_mm is not None:
                found.append(_approach(pm, d, chk))
        return sorted(found, key=lambda a: (not a.clear, a.depth_mm))
    skin = pm.skin_points()
    back = skin - c[None, :]
    back /= np.linalg.norm(back, axis=1)[:, None]
    sin_max = np.sin(np.radians(max_tilt_deg)) + 1e-9
    keep = np.array([abs(b[2]) <= sin_max and accessible(b, position) for b in back], bool)
    skin, back = skin[keep], back[keep]
    margin = _screen(pm, c, skin)
    half = 0.5 * float(np.linalg.norm(pm.grid.spacing_mm))
    maybe = np.flatnonzero(margin >= -half - 1e-9)
    # Exact checks for the shortest few of each side and tilt band (bounded work).
    depth = np.linalg.norm(skin - c[None, :], axis=1)
    az = np.degrees(np.arctan2(back[:, 1], back[:, 0]))
    band = np.digitize(back[:, 2], [-np.sin(np.radians(15.0)), np.sin(np.radians(15.0))])
    bucket = (np.floor((az + 180.0) / 45.0).astype(int) % 8) * 3 + band
    picked = []
    for b in np.unique(bucket[maybe]):
        mine = maybe[bucket[maybe] == b]
        picked += mine[np.argsort(depth[mine], kind="stable")][:EXACT_PER_BUCKET].tolist()
    maybe = np.array(sorted(picked), dtype=int)
    for i in maybe:
        d = -back[i]
        chk = pm.check_path(c, d, exact_clearance=False)
        if chk.entry_lps_mm is not None:
            found.append(_approach(pm, d, chk))
    # The canonical directions too (axial plane and 15 deg steps of azimuth and tilt: the
    # angles a CT operator sets, preferred where they are about as short, see below).
    for b in _lattice(max_tilt_deg):
        if not accessible(b, position):
            continue
        chk = pm.check_path(c, -b, exact_clearance=False)
        if chk.entry_lps_mm is not None:
            found.append(_approach(pm, -b, chk, lattice=True))
    # The blocked rest: the least blocked first (a layout's other probes may still pass).
    rest = np.setdiff1d(np.arange(len(skin)), maybe)
    for i in rest[np.argsort(-margin[rest], kind="stable")][:MAX_BLOCKED]:
        d = -back[i]
        chk = pm.check_path(c, d, exact_clearance=False)
        if chk.entry_lps_mm is not None:
            found.append(_approach(pm, d, chk))
    groups: dict[tuple[str, str], list[Approach]] = {}
    # Shortest first; a canonical direction counts `LATTICE_PREFERENCE_MM` shorter.
    for a in sorted(
        (a for a in found if a.clear),
        key=lambda a: a.depth_mm - (LATTICE_PREFERENCE_MM if a.lattice else 0.0),
    ):
        groups.setdefault((a.kind, a.side), []).append(a)
    lists = sorted((_spread(g) for g in groups.values()), key=lambda g: g[0].depth_mm)
    ordered: list[Approach] = []
    k = 0
    while any(k < len(g) for g in lists):
        ordered += [g[k] for g in lists if k < len(g)]
        k += 1
    ordered += sorted((a for a in found if not a.clear), key=lambda a: -a.margin_mm)
    return ordered


def openings(
    target_centre: np.ndarray,
    pm: PathMap,
    max_tilt_deg: float,
    position: PatientPosition,
) -> list[str]:
    """What would open a path when none is found in `position`: for each other position,
    its best clear central path (a cheap check of the paths from the target centre only)."""
    out = []
    for other in POSITIONS:
        if other == position:
            continue
        clear = [a for a in approaches(target_centre, pm, max_tilt_deg, other) if a.clear]
        if clear:
            out.append(f"{other.replace('_', ' ')}: {clear[0].describe()}")
    return out


def approach_parameters(position: str | None) -> list[Any]:
    """Provenance parameters of the approach rules (approaches.yaml): the patient position the
    plan was made for (when the planner recorded one), the per-structure safety distances and
    the sampling (for the plan's assumptions)."""
    from hepablate.core.provenance import Parameter, table_parameters

    s = load_approach_settings()
    out: list[Parameter] = []
    if position in s.positions:
        spec = s.positions[position]
        out.append(
            Parameter(
                name="approach.patient_position",
                value=position,
                source=f"planning option; accessible skin: {spec.source}",
            )
        )
    out += table_parameters(
        "approach.safety_distance.",
        ((f"{k}_mm", q) for k, q in s.structure_safety_distance_mm.items()),
    )
    out += [
        Parameter(name=f"approach.crossable_with_warning.{k}", value=True, source=c.source)
        for k, c in s.crossable_with_warning.items()
    ]
    out += table_parameters(
        "approach.",
        [(k, getattr(s, k)) for k in ("skin_sample_mm", "window_bone_mm", "subcostal_tilt_deg")],
    )
    return out
