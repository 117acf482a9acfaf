"""Skin entries and needle-path safety (LPS, mm).

A path is the straight segment from the skin entry to the tip. It is safe when every point
of it keeps at least `safety_distance_mm` from every no-go structure (vessels, bile ducts,
gallbladder, bowel, colon, duodenum, stomach, pancreas, kidney, spleen, bone, cartilage, lung,
pleura, heart, pericardium: `hepablate.anatomy.vocabulary.NO_GO`, plus the case's other
tumours). The needle's own radius is part of that safety distance (planning.yaml states it).

**Clearance is exact in millimetres** on any grid, isotropic or not: it is the Euclidean
distance from the needle axis to the nearest no-go voxel, each voxel taken as the box it stands
for (centre +- half the spacing along each axis), i.e. the distance to the voxelised surface.
The path is sampled every `PATH_STEP_MM`; a voxel-centred distance map only preselects the
samples that can hold the minimum (it is within 2 half-diagonals of the exact value), whose
exact distance then comes from a KD-tree of the no-go surface voxels. A sample inside a no-go
voxel has clearance 0. The voxel boxes are an unbiased estimate of the true surface of a
structure segmented by voxel centres: the true surface lies within half a voxel of them along
its normal (0.8 mm on 1.6 mm slices, 1.25 mm on 2.5 mm slices): `PathMap.voxel_bound_mm` gives
that bound, which the safety distance must absorb. (Before issue 12 each sample was rounded to
the nearest voxel of a centre-to-centre distance map, which misjudged the clearance by up to a
slice on anisotropic grids.)

**Skin entries are on the body surface inside the image.** Where the line from the tip leaves
the image while still in the body (the body mask is cut by a face of the grid, as on the top
and bottom slices of every CT), there is no skin entry along it: the grid face is not skin, and
the path check fails with the reason `ENTRY_OUTSIDE_IMAGE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from hepablate.anatomy.vocabulary import NO_GO, base_name
from hepablate.case.model import Case
from hepablate.errors import InputError
from hepablate.placement.geometry import unit
from hepablate.placement.nogo import NoGoField

if TYPE_CHECKING:
    from hepablate.placement.approach import PatientPosition
    from hepablate.plans.model import PlanWarning

#: Step (mm) for sampling paths.
PATH_STEP_MM = 0.5
#: Reason given when the body surface is not inside the image along a path.
ENTRY_OUTSIDE_IMAGE = "body surface outside the image (the body is cut by the grid face)"
#: Reason given when the tip itself is outside the body.
TIP_OUTSIDE_BODY = "tip outside the body"


@dataclass
class EntryRegion:
    """A user-given skin entry region: a sphere (LPS mm) that must touch the body surface."""

    centre_lps_mm: tuple[float, float, float]
    radius_mm: float


@dataclass
class PathCheck:
    entry_lps_mm: np.ndarray | None
    depth_mm: float
    clearance_mm: float
    """Smallest distance from the path to a no-go structure (mm)."""
    blocking: str | None
    """Name of the closest no-go structure when the path is not clear, or why there is no
    entry (`ENTRY_OUTSIDE_IMAGE`, `TIP_OUTSIDE_BODY`)."""
    ok: bool
    margin_mm: float = 0.0
    """Smallest clearance minus the structure's own safety distance (mm; >= 0 when clear)."""
    crosses: tuple[str, ...] = ()
    """Structures the path may cross with a warning that it does cross (the pleural
    recess)."""


class PathMap:
    """Distance maps of one case used to find entries and check needle paths.

    Each no-go structure is held to `safety_distance_mm` or, where approaches.yaml gives one
    (e.g. bone: the needle must not hit a rib, but the vessels' distance need not apply), to
    its own distance, never more than the general one; structures that may be crossed with a
    warning (approaches.yaml `crossable_with_warning`: the pleural recess) are not no-go.
    Structures with the same distance share one `NoGoField`."""

    def __init__(
        self,
        case: Case,
        safety_distance_mm: float,
        structure_safety_mm: dict[str, float] | None = None,
        crossable: set[str] | None = None,
    ):
        from hepablate.placement.approach import load_approach_settings

        self.case = case
        self.grid = case.grid
        self.safety_distance_mm = float(safety_distance_mm)
        settings = load_approach_settings()
        if structure_safety_mm is None:
            structure_safety_mm = {
                k: q.value for k, q in settings.structure_safety_distance_mm.items()
            }
        if crossable is None:
            crossable = set(settings.crossable_with_warning)
        self.crossable = crossable
        body = case.structures.get("body")
        self.body: np.ndarray = (
            body if body is not None else np.ones(self.grid.array.shape, dtype=bool)
        )
        shape = self.grid.array.shape
        nogo = np.zeros(shape, dtype=bool)
        self._labels = np.zeros(shape, dtype=np.int16)
        self.names: list[str] = []
        self.required_mm: dict[str, float] = {}
        """Safety distance (mm) per no-go structure key."""
        for key, m in case.structures.items():
            b = base_name(key)
            is_other_tumour = b == "tumour" and key != case.target_key
            if (b in NO_GO or is_other_tumour) and b not in crossable and m.any():
                self.names.append(key)
                self._labels[m & ~nogo] = len(self.names)
                nogo |= m
                self.required_mm[key] = min(
                    self.safety_distance_mm, structure_safety_mm.get(b, self.safety_distance_mm)
                )
        self._nogo = nogo
        self._crossable = np.zeros(shape, dtype=bool)
        for key, m in case.structures.items():
            if base_name(key) in crossable:
                self._crossable |= m
        self._margin_map: np.ndarray | None = None
        self._skin_points: np.ndarray | None = None
        self.approach_cache: dict[tuple, list] = {}
        """`hepablate.placement.approach.approaches` per (centre, tilt, position, region)."""
        self.cone_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        """`hepablate.placement.approach.cone_directions`' screened skin points per cone."""
        self.fields: list[NoGoField] = []
        for req in sorted(set(self.required_mm.values()), reverse=True):
            mask = np.zeros(shape, dtype=bool)
            for i, key in enumerate(self.names):
                if self.required_mm[key] == req:
                    mask |= self._labels == i + 1
            self.fields.append(NoGoField(self.grid, mask, self._labels, req))
        self._field_labels = [
            {i + 1 for i, k in enumerate(self.names) if self.required_mm[k] == f.required_mm}
            for f in self.fields
        ]
        spacing = np.asarray(self.grid.spacing_mm, float)
        #: How far the true surface of a structure segmented by voxel centres can lie from the
        #: voxel boxes along its normal: half the largest spacing (mm).
        self.voxel_bound_mm = 0.5 * float(spacing.max())

    # ---- sampling ----------------------------------------------------------------------------
    def _index(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ijk = np.rint(self.grid.lps_to_index(pts)).astype(int)
        shape_ijk = np.array(self.grid.shape_ijk)
        inside = np.all((ijk >= 0) & (ijk < shape_ijk), axis=-1)
        return ijk, inside

    def in_body(self, pts: np.ndarray) -> np.ndarray:
        ijk, inside = self._index(pts)
        out = np.zeros(len(pts), dtype=bool)
        k = ijk[inside]
        out[inside] = self.body[k[:, 2], k[:, 1], k[:, 0]]
        return out

    def in_structures(self, pts: np.ndarray, bases: set[str]) -> np.ndarray:
        """Whether each point lies in a structure of one of the base names `bases`."""
        ijk, inside = self._index(pts)
        out = np.zeros(len(pts), dtype=bool)
        k = ijk[inside]
        hit = np.zeros(len(k), dtype=bool)
        for key, m in self.case.structures.items():
            if base_name(key) in bases:
                hit |= m[k[:, 2], k[:, 1], k[:, 0]]
        out[inside] = hit
        return out

    def margin_map(self) -> np.ndarray:
        """Voxel-centred coarse margin (mm): the smallest over the fields of the distance to
        its no-go voxels minus its safety distance (for screening many paths at once)."""
        if self._margin_map is None:
            out = np.full(self.grid.array.shape, np.inf, dtype=np.float32)
            for f in self.fields:
                np.minimum(out, f.dist_mm - np.float32(f.required_mm), out=out)
            self._margin_map = out
        return self._margin_map

    def skin_points(self) -> np.ndarray:
        """Body-surface points (LPS mm) candidate entries are drawn from
        (`hepablate.placement.approach.skin_points`), computed once."""
        if self._skin_points is None:
            from hepablate.placement.approach import skin_points

            self._skin_points = skin_points(self)
        return self._skin_points

    def _present_crossable(self) -> set[str]:
        return {base_name(k) for k, m in self.case.structures.items() if m.any()}

    @staticmethod
    def _min_over(results: list[tuple[np.ndarray, np.ndarray]], n: int):
        d = np.full(n, np.inf)
        lab = np.zeros(n, dtype=int)
        for dd, ll in results:
            better = dd < d
            d[better], lab[better] = dd[better], ll[better]
        return d, lab

    def nogo_distance(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coarse (distance mm, nearest no-go label index) at points, read from the
        voxel-centred distance maps at the nearest voxel; outside the grid: inf, 0. Within two
        half-diagonals of the exact distance; use `exact_nogo_distance` or `path_clearance`
        for decisions."""
        return self._min_over([f.coarse(pts) for f in self.fields], len(pts))

    def exact_nogo_distance(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance mm, no-go label index) from each point to the nearest no-go voxel box:
        exact for any spacing and direction; 0 inside a no-go voxel; inf, 0 without no-go."""
        pts = np.atleast_2d(np.asarray(pts, float))
        return self._min_over([f.exact(pts) for f in self.fields], len(pts))

    def path_clearance(self, pts: np.ndarray) -> tuple[float, int, int]:
        """Smallest exact clearance (mm) over the sample points of a path from any no-go
        structure, the no-go label index there and the sample's index."""
        best: tuple[float, int, int] = (float("inf"), 0, -1)
        for f in self.fields:
            got = f.path_clearance(pts)
            if got[0] < best[0]:
                best = got
        return best

    def path_margins(self, pts: np.ndarray, exact: bool = True) -> list[tuple[float, float, int]]:
        """Per field: (clearance mm, required mm, label index) of the path samples `pts`;
        with `exact` False a clearance surely above the required one is the coarse value."""
        out = []
        for f in self.fields:
            c, lab, _ = f.path_clearance(pts, None if exact else f.required_mm)
            out.append((c, f.required_mm, lab))
        return out

    def distance_to_bases(self, pts: np.ndarray, bases: set[str]) -> np.ndarray | None:
        """Coarse distance (mm) from each point to the structures of base names `bases`, when
        they have a field of their own (else None)."""
        keys = {i + 1 for i, k in enumerate(self.names) if base_name(k) in bases}
        for f, labs in zip(self.fields, self._field_labels, strict=True):
            if labs and labs <= keys:
                return f.coarse(pts)[0]
        return None

    # ---- entries and paths -------------------------------------------------------------------
    def skin_entry_or_reason(
        self, tip: np.ndarray, direction: np.ndarray
    ) -> tuple[np.ndarray | None, str | None]:
        """Where the line through `tip` against `direction` leaves the body (LPS mm), or None
        and why: the tip is outside the body, or the line leaves the image while still in the
        body (the body surface is not in the image along it; the grid face is not skin)."""
        d = unit(direction)
        span = float(np.linalg.norm(np.array(self.grid.shape_ijk) * self.grid.spacing_mm))
        t = np.arange(0.0, span, PATH_STEP_MM)
        pts = np.asarray(tip, float)[None, :] - t[:, None] * d[None, :]
        ijk, inside = self._index(pts)
        inb = self.in_body(pts)
        if not inb[0]:
            return None, TIP_OUTSIDE_BODY
        outside = np.flatnonzero(~inb)
        if outside.size == 0:
            return None, ENTRY_OUTSIDE_IMAGE
        first_out = int(outside[0])
        if not inside[first_out]:
            return None, ENTRY_OUTSIDE_IMAGE  # left the grid while in the body
        # The line crossed from body to non-body inside the image: that is the skin.
        # A copy: a view would keep the whole sampled line alive in the path caches.
        return pts[first_out - 1].copy(), None

    def skin_entry(self, tip: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
        """Where the line through `tip` against `direction` leaves the body (LPS mm); None when
        the tip is outside the body or the body surface is not inside the image along it."""
        return self.skin_entry_or_reason(tip, direction)[0]

    def check_path(
        self,
        tip: np.ndarray,
        direction: np.ndarray,
        entry_region: EntryRegion | None = None,
        exact_clearance: bool = True,
    ) -> PathCheck:
        """The path from the skin entry to `tip` along `direction`: clear when every no-go
        structure keeps its safety distance (decided on exact distances). With
        `exact_clearance` False (the planners' many checks) `clearance_mm` is the coarse value
        where it is surely above the safety distance."""
        entry, why = self.skin_entry_or_reason(tip, direction)
        if entry is None:
            return PathCheck(None, float("nan"), 0.0, why or "body", False)
        depth = float(np.linalg.norm(np.asarray(tip) - entry))
        t = np.arange(0.0, depth + 1e-9, PATH_STEP_MM)
        if t[-1] < depth - 1e-9:
            t = np.append(t, depth)  # include the tip itself
        pts = entry[None, :] + t[:, None] * unit(direction)[None, :]
        margins = self.path_margins(pts, exact_clearance)
        clearance = min((c for c, _, _ in margins), default=float("inf"))
        # The structure that falls shortest of its own safety distance blocks the path.
        margin, lab = min(((c - r, lab) for c, r, lab in margins), default=(float("inf"), 0))
        ok = margin >= -1e-9
        blocking = self.names[lab - 1] if (not ok and lab > 0) else None
        crosses: tuple[str, ...] = ()
        if self._crossable.any():
            ijk, inside = self._index(pts)
            k = ijk[inside]
            if self._crossable[k[:, 2], k[:, 1], k[:, 0]].any():
                crosses = tuple(sorted(self.crossable & self._present_crossable()))
        if entry_region is not None:
            dist = float(np.linalg.norm(entry - np.asarray(entry_region.centre_lps_mm)))
            if dist > entry_region.radius_mm:
                ok = False
                blocking = blocking or "outside entry region"
        return PathCheck(entry, depth, clearance, blocking, ok, margin, crosses)

    def validate_entry_region(self, region: EntryRegion, source: str = "--entry") -> None:
        """The region must contain body-surface voxels, else an InputError."""
        if region.radius_mm <= 0:
            raise InputError("entry region radius must be positive (mm)", field=source)
        surface = self.body & ~ndimage.binary_erosion(self.body)
        pts = self.grid.index_to_lps(np.argwhere(surface)[:, ::-1].astype(float))
        d = np.linalg.norm(pts - np.asarray(region.centre_lps_mm), axis=1)
        if d.size == 0 or float(d.min()) > region.radius_mm:
            near = float(d.min()) if d.size else float("inf")
            raise InputError(
                f"entry region {list(region.centre_lps_mm)} (radius {region.radius_mm:g} mm) "
                f"does not reach the body surface (nearest skin {near:.1f} mm away); give a "
                "point on the skin in LPS mm",
                field=source,
            )


def candidate_directions(
    target_centre: np.ndarray,
    path_map: PathMap,
    max_tilt_deg: float,
    entry_region: EntryRegion | None = None,
    position: PatientPosition = "supine",
) -> list[np.ndarray]:
    """Insertion directions (entry -> tip, unit LPS) in the order of
    `hepablate.placement.approach.approaches`: clear central paths first, windows of every
    kind interleaved, shortest first within each; skin the patient `position` exposes."""
    from hepablate.placement.approach import approaches

    return [
        a.direction_lps
        for a in approaches(target_centre, path_map, max_tilt_deg, position, entry_region)
    ]


def clear_cross_section(
    pm: PathMap,
    region_pts: np.ndarray,
    direction: np.ndarray,
    step_mm: float = 2.0,
    entry_region: EntryRegion | None = None,
) -> float:
    """Fraction of the target's cross-section across `direction` (LPS points `region_pts`
    projected on the plane perpendicular to it, on a `step_mm` lattice) through which a
    parallel needle, its tip at the target's deep end, has a clear path: how much room a
    parallel layout has along this direction (an infeasible plan's reason quotes it)."""
    from hepablate.placement.geometry import perpendicular_basis

    d = unit(np.asarray(direction, float))
    u, v = perpendicular_basis(d)
    pts = np.asarray(region_pts, float)
    c = pts.mean(axis=0)
    deep = float((pts @ d).max())
    uv = np.unique(np.round(np.stack([(pts - c) @ u, (pts - c) @ v], axis=1) / step_mm), axis=0)
    if len(uv) == 0:
        return 0.0
    base = c + (deep - float(c @ d)) * d
    ok = 0
    for a, b in uv * step_mm:
        ok += bool(pm.check_path(base + a * u + b * v, d, entry_region, exact_clearance=False).ok)
    return ok / len(uv)


def needle_clearances(
    case: Case,
    needles: list[tuple[str, np.ndarray, np.ndarray]],
    safety_mm: float,
    paths: PathMap | None = None,
) -> tuple[float | None, list[PlanWarning]]:
    """Smallest clearance (mm) of the needle paths (skin entry to tip) from the no-go
    structures held to the general safety distance,
    and a warning for each needle (name, tip LPS mm, direction) that comes closer than
    `safety_mm` to a structure, or than that structure's own distance (approaches.yaml, e.g.
    bone), (error level; 0.1 mm allowed for the rounding of stored coordinates), that crosses
    the pleural recess (warning), or whose
    line leaves the image before the body surface (then its path could not be checked; the
    grid face is never taken as skin)."""
    from hepablate.plans.model import PlanWarning

    pm = paths or PathMap(case, safety_mm)
    worst: float | None = None
    out: list[PlanWarning] = []
    seen: set[tuple] = set()
    for name, tip, direction in needles:
        key = (tuple(np.round(tip, 6)), tuple(np.round(direction, 9)))
        if key in seen:
            continue
        seen.add(key)
        chk = pm.check_path(np.asarray(tip, float), np.asarray(direction, float))
        if chk.entry_lps_mm is None:
            why = (
                "the body surface is not inside the image along its line (the body is cut by "
                "the grid face, which is not skin)"
                if chk.blocking == ENTRY_OUTSIDE_IMAGE
                else "its tip is outside the body"
            )
            out.append(
                PlanWarning(
                    level="warning",
                    code="needle_path_unchecked",
                    message=f"{name}: no skin entry along its line inside the image: {why}; "
                    "its path was not checked",
                )
            )
            continue
        d = unit(np.asarray(direction, float))
        t = np.arange(0.0, chk.depth_mm + 1e-9, PATH_STEP_MM)
        pts = np.asarray(chk.entry_lps_mm)[None, :] + t[:, None] * d[None, :]
        for c, req, lab in pm.path_margins(pts):
            if req >= pm.safety_distance_mm - 1e-9:
                # The plan's clearance metric: structures held to the general distance.
                worst = c if worst is None else min(worst, c)
            if c < req - 0.1:
                near = pm.names[lab - 1] if lab > 0 else "a no-go structure"
                out.append(
                    PlanWarning(
                        level="error",
                        code="needle_path_unsafe",
                        message=f"{name}: the path from the skin passes {c:.1f} mm from "
                        f"{near} ({req:g} mm required)",
                    )
                )
        for b in chk.crosses:
            out.append(
                PlanWarning(
                    level="warning",
                    code="needle_crosses_pleura" if b == "pleura" else f"needle_crosses_{b}",
                    message=f"{name}: the path crosses the {b} (the pleural recess below the "
                    "lung edge: risk of pneumothorax; aerated lung is not crossed)"
                    if b == "pleura"
                    else f"{name}: the path crosses the {b}",
                )
            )
    return worst, out
