"""What `hepablate case check` reports about a case."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name
from hepablate.case.model import Case


@dataclass
class StructureSummary:
    key: str
    volume_ml: float
    voxels: int
    bbox_min_lps_mm: list[float] | None
    bbox_max_lps_mm: list[float] | None


@dataclass
class CaseSummary:
    case_id: str
    grid_size_ijk: list[int]
    spacing_mm: list[float]
    origin_lps_mm: list[float]
    has_ct: bool
    structures: list[StructureSummary]
    target_id: str
    margin_mm: float
    target_centre_lps_mm: list[float]
    target_equivalent_diameter_mm: float
    """Diameter of the sphere with the target's volume."""
    target_longest_diameter_mm: float
    """Largest distance between two voxels of the target, plus one voxel."""
    nearest_vessel: str | None
    nearest_vessel_gap_mm: float | None
    nearest_bile_duct_gap_mm: float | None
    notes: list[str] = field(default_factory=list)
    """What validation noticed and accepted (e.g. a subcapsular tumour)."""

    def to_dict(self) -> dict:
        return asdict(self)


def _surface_gap_mm(case: Case, target: np.ndarray, other: np.ndarray) -> float | None:
    """Gap (mm) between two masks: centre-to-centre distance of the closest voxels minus one
    voxel (so touching masks give 0), clamped at 0."""
    if not other.any():
        return None
    sampling = tuple(reversed(case.grid.spacing_mm))
    d = ndimage.distance_transform_edt(~other, sampling=sampling)
    gap = float(d[target].min()) - min(case.grid.spacing_mm)
    return max(gap, 0.0)


def _longest_diameter_mm(case: Case, mask: np.ndarray) -> float:
    surface = mask & ~ndimage.binary_erosion(mask)
    pts = case.grid.index_to_lps(np.argwhere(surface)[:, ::-1].astype(float))
    if len(pts) > 4:
        try:
            pts = pts[ConvexHull(pts).vertices]
        except QhullError:
            pass
    if len(pts) > 4000:
        pts = pts[:: len(pts) // 4000 + 1]
    diff = pts[:, None, :] - pts[None, :, :]
    return float(np.sqrt((diff**2).sum(-1)).max()) + float(np.mean(case.grid.spacing_mm))


def summarise_case(case: Case) -> CaseSummary:
    g = case.grid
    structs = []
    for key, m in case.structures.items():
        bb = g.with_array(m).bounding_box_lps_mm()
        structs.append(
            StructureSummary(
                key=key,
                volume_ml=round(float(m.sum()) * g.voxel_volume_ml, 3),
                voxels=int(m.sum()),
                bbox_min_lps_mm=None if bb is None else [round(float(v), 2) for v in bb[0]],
                bbox_max_lps_mm=None if bb is None else [round(float(v), 2) for v in bb[1]],
            )
        )
    target = case.target_mask
    vol_mm3 = float(target.sum()) * float(np.prod(g.spacing_mm))
    eq_d = (6.0 * vol_mm3 / np.pi) ** (1.0 / 3.0)
    best_vessel, best_gap = None, None
    for key, m in case.structures.items():
        if base_name(key) in VESSELS:
            gap = _surface_gap_mm(case, target, m)
            if gap is not None and (best_gap is None or gap < best_gap):
                best_vessel, best_gap = key, gap
    duct_gap = None
    duct = case.union(BILE_DUCTS)
    if duct.any():
        duct_gap = _surface_gap_mm(case, target, duct)
    return CaseSummary(
        case_id=case.case_id,
        grid_size_ijk=list(g.shape_ijk),
        spacing_mm=[round(s, 4) for s in g.spacing_mm],
        origin_lps_mm=[round(o, 3) for o in g.origin_lps_mm],
        has_ct=case.ct is not None,
        structures=structs,
        target_id=case.target_id,
        margin_mm=case.margin_mm,
        target_centre_lps_mm=[round(float(v), 2) for v in g.with_array(target).centroid_lps_mm()],
        target_equivalent_diameter_mm=round(eq_d, 2),
        target_longest_diameter_mm=round(_longest_diameter_mm(case, target), 2),
        nearest_vessel=best_vessel,
        nearest_vessel_gap_mm=None if best_gap is None else round(best_gap, 2),
        nearest_bile_duct_gap_mm=None if duct_gap is None else round(duct_gap, 2),
        notes=list(case.notes),
    )
