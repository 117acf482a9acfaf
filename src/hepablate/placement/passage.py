"""What a needle path passes and how close it comes to each no-go structure (LPS mm).

`path_structures` lists the structures along the path from the skin entry to the tip (each
sample point named by the highest-priority structure there: the target, other tumours,
no-go structures, diaphragm, liver, muscle, fat, then unlabelled soft tissue).

`structure_clearances` gives the closest distance of the path to each no-go structure
separately, measured by the library's own path check (`PathMap.check_path`, the one the
planners and `evaluate` use) on a case holding only that structure, cropped to the path plus
`CLEARANCE_REACH_MM`: so the smallest of them is the path's clearance, and a structure farther
than the reach is reported as beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepablate.anatomy.vocabulary import NO_GO, base_name
from hepablate.case.model import Case
from hepablate.core.volume import Volume, vec3
from hepablate.placement.geometry import unit
from hepablate.placement.paths import PathMap

#: Structures farther from a path than this (mm) are reported as "> this".
CLEARANCE_REACH_MM = 40.0
#: Order in which overlapping structures name a path sample (first wins).
_PASSABLE_ORDER = ("diaphragm", "liver", "muscle", "fat")


@dataclass
class PassedStructure:
    name: str
    from_mm: float
    """Distance along the path from the skin entry (mm)."""
    to_mm: float


@dataclass
class StructureClearance:
    name: str
    clearance_mm: float | None
    """Closest distance of the path (mm); None: farther than `reach_mm`."""
    reach_mm: float


def _priority(case: Case) -> list[str]:
    keys = list(case.structures)
    out = [case.target_key]
    out += [k for k in keys if base_name(k) == "tumour" and k != case.target_key]
    out += sorted(k for k in keys if base_name(k) in NO_GO)
    out += [k for n in _PASSABLE_ORDER for k in keys if base_name(k) == n]
    return out


def path_structures(
    case: Case, entry_lps_mm: np.ndarray, tip_lps_mm: np.ndarray, step_mm: float = 0.5
) -> list[PassedStructure]:
    """The structures the path passes from skin entry to tip, in order (nearest voxel per
    sample; 'unlabelled soft tissue' where the body has no other label: skin, or tissue the
    case does not segment)."""
    entry = np.asarray(entry_lps_mm, float)
    tip = np.asarray(tip_lps_mm, float)
    depth = float(np.linalg.norm(tip - entry))
    t = np.append(np.arange(0.0, depth, step_mm), depth)
    pts = entry[None, :] + t[:, None] * unit(tip - entry)[None, :]
    ijk = np.rint(case.grid.lps_to_index(pts)).astype(int)
    ijk = np.clip(ijk, 0, np.array(case.grid.shape_ijk) - 1)
    names = np.array(["unlabelled soft tissue"] * len(t), dtype=object)
    named = np.zeros(len(t), bool)
    for key in _priority(case):
        m = case.structures[key][ijk[:, 2], ijk[:, 1], ijk[:, 0]] & ~named
        names[m] = "target tumour" if key == case.target_key else key
        named |= m
    out: list[PassedStructure] = []
    for i, n in enumerate(names):
        if out and out[-1].name == n:
            out[-1].to_mm = float(t[i])
        else:
            start = 0.0 if not out else 0.5 * float(t[i - 1] + t[i])
            if out:
                out[-1].to_mm = start
            out.append(PassedStructure(str(n), start, float(t[i])))
    return out


def _crop(case: Case, lo_lps: np.ndarray, hi_lps: np.ndarray) -> tuple[tuple[slice, ...], Volume]:
    g = case.grid
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
    box = lo_lps[None, :] + corners * (hi_lps - lo_lps)[None, :]
    ijk = g.lps_to_index(box)
    i0 = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, np.array(g.shape_ijk) - 1)
    i1 = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 1, np.array(g.shape_ijk))
    sl = (slice(i0[2], i1[2]), slice(i0[1], i1[1]), slice(i0[0], i1[0]))
    origin = vec3(g.index_to_lps(i0.astype(float)))
    return sl, Volume(g.array[sl], g.spacing_mm, origin, g.direction.copy())


def structure_clearances(
    case: Case,
    tip_lps_mm: np.ndarray,
    direction_lps: np.ndarray,
    entry_lps_mm: np.ndarray,
    reach_mm: float = CLEARANCE_REACH_MM,
) -> list[StructureClearance]:
    """Closest distance (mm) of the path (skin entry to tip) to each no-go structure of the
    case, nearest first (see the module docstring)."""
    tip = np.asarray(tip_lps_mm, float)
    entry = np.asarray(entry_lps_mm, float)
    lo = np.minimum(tip, entry) - reach_mm
    hi = np.maximum(tip, entry) + reach_mm
    sl, grid = _crop(case, lo, hi)
    body = case.structures.get("body")
    sub_body = body[sl] if body is not None else np.ones(grid.array.shape, bool)
    out: list[StructureClearance] = []
    for key, m in case.structures.items():
        is_other_tumour = base_name(key) == "tumour" and key != case.target_key
        if not (base_name(key) in NO_GO or is_other_tumour) or not m.any():
            continue
        sub = m[sl]
        if not sub.any():
            out.append(StructureClearance(key, None, reach_mm))
            continue
        one = Case(
            case_id=case.case_id,
            grid=grid,
            structures={"body": sub_body, key: sub, case.target_key: case.target_mask[sl]},
            target_id=case.target_id,
            margin_mm=case.margin_mm,
        )
        chk = PathMap(one, 0.0).check_path(tip, np.asarray(direction_lps, float))
        c = float(chk.clearance_mm) if chk.entry_lps_mm is not None else None
        out.append(StructureClearance(key, None if c is None or c > reach_mm else c, reach_mm))
    out.sort(key=lambda s: (s.clearance_mm is None, s.clearance_mm or 0.0, s.name))
    return out
