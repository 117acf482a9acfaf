"""Skin entries and needle-path safety (LPS, mm).

A path is the straight segment from the skin entry to the tip. It is safe when every point
of it keeps at least `safety_distance_mm` from every no-go structure (vessels, bile ducts,
gallbladder, bowel, stomach, kidney, bone, spleen, lung: `hepablate.anatomy.vocabulary.NO_GO`,
plus the case's other tumours). The needle's own radius is part of that safety distance
(planning.yaml states it).
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

if TYPE_CHECKING:
    from hepablate.plans.model import PlanWarning

#: Step (mm) for sampling paths.
PATH_STEP_MM = 0.5


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
    """Name of the closest no-go structure when the path is not clear."""
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
        """(distance mm, nearest no-go label index) at points; outside the grid: inf, 0."""
        ijk, inside = self._index(pts)
        d = np.full(len(pts), np.inf)
        lab = np.zeros(len(pts), dtype=int)
        k = ijk[inside]
        d[inside] = self.nogo_dist_mm[k[:, 2], k[:, 1], k[:, 0]]
        lab[inside] = self._nearest_label[k[:, 2], k[:, 1], k[:, 0]]
        return d, lab

    # ---- entries and paths -------------------------------------------------------------------
    def skin_entry(self, tip: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
        """Where the line through `tip` against `direction` leaves the body (LPS mm)."""
        d = unit(direction)
        span = float(np.linalg.norm(np.array(self.grid.shape_ijk) * self.grid.spacing_mm))
        t = np.arange(0.0, span, PATH_STEP_MM)
        pts = np.asarray(tip, float)[None, :] - t[:, None] * d[None, :]
        inb = self.in_body(pts)
        if not inb[0]:
            return None
        outside = np.flatnonzero(~inb)
        if outside.size == 0:
            return None  # the body does not end inside the grid along this line
        return pts[outside[0] - 1]

    def check_path(
        self, tip: np.ndarray, direction: np.ndarray, entry_region: EntryRegion | None = None
    ) -> PathCheck:
        entry = self.skin_entry(tip, direction)
        if entry is None:
            return PathCheck(None, float("nan"), 0.0, "body", False)
        depth = float(np.linalg.norm(np.asarray(tip) - entry))
        t = np.arange(0.0, depth + 1e-9, PATH_STEP_MM)
        pts = entry[None, :] + t[:, None] * unit(direction)[None, :]
        d, lab = self.nogo_distance(pts)
        i = int(np.argmin(d))
        clearance = float(d[i])
        ok = clearance >= self.safety_distance_mm
        blocking = self.names[lab[i] - 1] if (not ok and lab[i] > 0) else None
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
    line leaves the image before the body surface (then its path could not be checked)."""
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
            out.append(
                PlanWarning(
                    level="warning",
                    code="needle_path_unchecked",
                    message=f"{name}: no skin entry along its line inside the image (the tip "
                    "is outside the body, or the body surface is not in the image); its path "
                    "was not checked",
                )
            )
            continue
        c = float(chk.clearance_mm)
        worst = c if worst is None else min(worst, c)
        if c < safety_mm - 0.1:
            d = unit(np.asarray(direction, float))
            t = np.arange(0.0, chk.depth_mm + 1e-9, PATH_STEP_MM)
            pts = np.asarray(chk.entry_lps_mm)[None, :] + t[:, None] * d[None, :]
            dist, lab = pm.nogo_distance(pts)
            i = int(np.argmin(dist))
            near = pm.names[lab[i] - 1] if lab[i] > 0 else "a no-go structure"
            out.append(
                PlanWarning(
                    level="error",
                    code="needle_path_unsafe",
                    message=f"{name}: the path from the skin passes {c:.1f} mm from {near} "
                    f"({safety_mm:g} mm required)",
                )
            )
    return worst, out
