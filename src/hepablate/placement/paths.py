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
from scipy.spatial import cKDTree

from hepablate.anatomy.vocabulary import NO_GO, base_name
from hepablate.case.model import Case
from hepablate.errors import InputError
from hepablate.placement.geometry import unit

if TYPE_CHECKING:
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


class PathMap:
    """Distance maps of one case used to find entries and check needle paths."""

    def __init__(self, case: Case, safety_distance_mm: float):
        self.case = case
        self.grid = case.grid
        self.safety_distance_mm = float(safety_distance_mm)
        body = case.structures.get("body")
        self.body: np.ndarray = (
            body if body is not None else np.ones(self.grid.array.shape, dtype=bool)
        )
        nogo = np.zeros(self.grid.array.shape, dtype=bool)
        self._labels = np.zeros(self.grid.array.shape, dtype=np.int16)
        self.names: list[str] = []
        for key, m in case.structures.items():
            is_other_tumour = base_name(key) == "tumour" and key != case.target_key
            if (base_name(key) in NO_GO or is_other_tumour) and m.any():
                self.names.append(key)
                self._labels[m & ~nogo] = len(self.names)
                nogo |= m
        self._nogo = nogo
        self._tree: cKDTree | None = None
        self._surf_idx = np.zeros((0, 3), dtype=np.int64)
        spacing = np.asarray(self.grid.spacing_mm, float)
        #: Half the diagonal of a voxel (mm).
        self._half_diag = 0.5 * float(np.linalg.norm(spacing))
        #: How far the true surface of a structure segmented by voxel centres can lie from the
        #: voxel boxes along its normal: half the largest spacing (mm).
        self.voxel_bound_mm = 0.5 * float(spacing.max())
        sampling = tuple(reversed(self.grid.spacing_mm))
        if nogo.any():
            dist, idx = ndimage.distance_transform_edt(
                ~nogo, sampling=sampling, return_indices=True
            )
            self.nogo_dist_mm = dist.astype(np.float32)
            self._nearest_label = self._labels[tuple(idx)]
        else:
            self.nogo_dist_mm = np.full(self.grid.array.shape, np.inf, dtype=np.float32)
            self._nearest_label = self._labels

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

    def nogo_distance(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coarse (distance mm, nearest no-go label index) at points, read from the
        voxel-centred distance map at the nearest voxel; outside the grid: inf, 0. Within two
        half-diagonals of the exact distance; use `exact_nogo_distance` or `path_clearance`
        for decisions."""
        ijk, inside = self._index(pts)
        d = np.full(len(pts), np.inf)
        lab = np.zeros(len(pts), dtype=int)
        k = ijk[inside]
        d[inside] = self.nogo_dist_mm[k[:, 2], k[:, 1], k[:, 0]]
        lab[inside] = self._nearest_label[k[:, 2], k[:, 1], k[:, 0]]
        return d, lab

    def _tree_of_surface(self) -> cKDTree | None:
        """KD-tree of the centres (LPS mm) of no-go voxels with a face on non-no-go tissue."""
        if self._tree is None and self._nogo.any():
            surf = self._nogo & ~ndimage.binary_erosion(self._nogo, border_value=1)
            self._surf_idx = np.argwhere(surf)  # (k, j, i)
            centres = self.grid.index_to_lps(self._surf_idx[:, ::-1].astype(float))
            self._tree = cKDTree(centres)
        return self._tree

    def exact_nogo_distance(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance mm, no-go label index) from each point to the nearest no-go voxel box:
        exact for any spacing and direction; 0 inside a no-go voxel; inf, 0 without no-go."""
        pts = np.atleast_2d(np.asarray(pts, float))
        d = np.full(len(pts), np.inf)
        lab = np.zeros(len(pts), dtype=int)
        tree = self._tree_of_surface()
        if tree is None:
            return d, lab
        ijk, inside = self._index(pts)
        k = ijk[inside]
        hit = np.zeros(len(pts), dtype=bool)
        hit[inside] = self._nogo[k[:, 2], k[:, 1], k[:, 0]]
        d[hit] = 0.0
        kh = ijk[hit]
        lab[hit] = self._labels[kh[:, 2], kh[:, 1], kh[:, 0]]
        rest = np.flatnonzero(~hit)
        if rest.size == 0:
            return d, lab
        # Work in the grid's own axes (mm along i, j, k), where voxels are axis-aligned boxes.
        rot = np.asarray(self.grid.direction, float)
        half = 0.5 * np.asarray(self.grid.spacing_mm, float)
        origin = np.asarray(self.grid.origin_lps_mm, float)
        n = len(self._surf_idx)
        for p_i in rest:
            p = pts[p_i]
            kq = min(16, n)
            while True:
                dist, nn = tree.query(p, k=kq)
                dist, nn = np.atleast_1d(dist), np.atleast_1d(nn)
                idx = self._surf_idx[nn][:, ::-1].astype(float)  # (i, j, k)
                q = rot.T @ (p - origin)
                rel = np.abs(q[None, :] - idx * (2.0 * half)[None, :]) - half[None, :]
                box = np.sqrt((np.maximum(rel, 0.0) ** 2).sum(axis=1))
                best = int(np.argmin(box))
                # No farther centre can have a nearer box: boxes reach half a diagonal.
                if kq >= n or dist[-1] - self._half_diag >= box[best] or kq >= 4096:
                    break
                kq = min(kq * 4, n)
            d[p_i] = float(box[best])
            kk = self._surf_idx[nn[best]]
            lab[p_i] = int(self._labels[kk[0], kk[1], kk[2]])
        return d, lab

    def path_clearance(self, pts: np.ndarray) -> tuple[float, int, int]:
        """Smallest exact clearance (mm) over the sample points of a path, the no-go label
        index there and the sample's index. The voxel-centred distance map preselects the
        samples within reach of the minimum; only those get an exact distance."""
        if len(pts) == 0:
            return float("inf"), 0, -1
        coarse, _ = self.nogo_distance(pts)
        if not np.isfinite(coarse).any():
            return float("inf"), 0, -1
        # exact is within [coarse - 2 h, coarse + h] (h: half-diagonal): candidates for the
        # minimum are the samples with coarse <= min(coarse) + 3 h.
        cand = np.flatnonzero(coarse <= float(np.min(coarse)) + 3.0 * self._half_diag + 1e-9)
        d, lab = self.exact_nogo_distance(pts[cand])
        i = int(np.argmin(d))
        return float(d[i]), int(lab[i]), int(cand[i])

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
        return pts[first_out - 1], None

    def skin_entry(self, tip: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
        """Where the line through `tip` against `direction` leaves the body (LPS mm); None when
        the tip is outside the body or the body surface is not inside the image along it."""
        return self.skin_entry_or_reason(tip, direction)[0]

    def check_path(
        self, tip: np.ndarray, direction: np.ndarray, entry_region: EntryRegion | None = None
    ) -> PathCheck:
        entry, why = self.skin_entry_or_reason(tip, direction)
        if entry is None:
            return PathCheck(None, float("nan"), 0.0, why or "body", False)
        depth = float(np.linalg.norm(np.asarray(tip) - entry))
        t = np.arange(0.0, depth + 1e-9, PATH_STEP_MM)
        if t[-1] < depth - 1e-9:
            t = np.append(t, depth)  # include the tip itself
        pts = entry[None, :] + t[:, None] * unit(direction)[None, :]
        clearance, lab, _ = self.path_clearance(pts)
        ok = clearance >= self.safety_distance_mm
        blocking = self.names[lab - 1] if (not ok and lab > 0) else None
        if entry_region is not None:
            dist = float(np.linalg.norm(entry - np.asarray(entry_region.centre_lps_mm)))
            if dist > entry_region.radius_mm:
                ok = False
                blocking = blocking or "outside entry region"
        return PathCheck(entry, depth, clearance, blocking, ok)

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
    n_azimuth: int = 24,
    tilts_deg: tuple[float, ...] = (0.0, 15.0, -15.0, 30.0, -30.0),
) -> list[np.ndarray]:
    """Insertion directions (entry -> tip, unit LPS) ordered by path length, shortest first.

    Without an entry region: directions whose reverse points anterior or lateral (patient
    supine: no posterior entries), with craniocaudal tilt up to `max_tilt_deg`. With one: the
    direction from each of a few points of the region towards the target.
    """
    c = np.asarray(target_centre, float)
    dirs: list[np.ndarray] = []
    if entry_region is not None:
        e = np.asarray(entry_region.centre_lps_mm, float)
        dirs.append(unit(c - e))
        r = entry_region.radius_mm
        for off in (
            [r / 2, 0, 0],
            [-r / 2, 0, 0],
            [0, r / 2, 0],
            [0, -r / 2, 0],
            [0, 0, r / 2],
            [0, 0, -r / 2],
        ):
            dirs.append(unit(c - (e + np.asarray(off))))
    else:
        for tilt in tilts_deg:
            if abs(tilt) > max_tilt_deg + 1e-9:
                continue
            for az in np.linspace(0, 2 * np.pi, n_azimuth, endpoint=False):
                back = np.array(
                    [
                        np.cos(az) * np.cos(np.radians(tilt)),
                        np.sin(az) * np.cos(np.radians(tilt)),
                        np.sin(np.radians(tilt)),
                    ]
                )
                if back[1] > 0.2:  # entry would be posterior (y is posterior in LPS)
                    continue
                dirs.append(-back)
    scored = []
    for d in dirs:
        entry = path_map.skin_entry(c, d)
        if entry is None:
            continue
        scored.append((float(np.linalg.norm(entry - c)), d))
    scored.sort(key=lambda x: x[0])
    return [d for _, d in scored]


def needle_clearances(
    case: Case,
    needles: list[tuple[str, np.ndarray, np.ndarray]],
    safety_mm: float,
    paths: PathMap | None = None,
) -> tuple[float | None, list[PlanWarning]]:
    """Smallest clearance (mm) of the needle paths (skin entry to tip) from no-go structures,
    and a warning for each needle (name, tip LPS mm, direction) that comes closer than
    `safety_mm` (error level; 0.1 mm allowed for the rounding of stored coordinates) or whose
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
        c = float(chk.clearance_mm)
        worst = c if worst is None else min(worst, c)
        if c < safety_mm - 0.1:
            d = unit(np.asarray(direction, float))
            t = np.arange(0.0, chk.depth_mm + 1e-9, PATH_STEP_MM)
            pts = np.asarray(chk.entry_lps_mm)[None, :] + t[:, None] * d[None, :]
            _, lab, _ = pm.path_clearance(pts)
            near = pm.names[lab - 1] if lab > 0 else "a no-go structure"
            out.append(
                PlanWarning(
                    level="error",
                    code="needle_path_unsafe",
                    message=f"{name}: the path from the skin passes {c:.1f} mm from {near} "
                    f"({safety_mm:g} mm required)",
                )
            )
    return worst, out
