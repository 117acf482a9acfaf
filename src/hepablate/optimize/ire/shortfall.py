"""Where and why a plan leaves the target below threshold: uncovered voxels grouped by the
nearest vessel, duct or other no-go structure, and one line that says so."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Uncovered target within this distance (mm, voxel centre to structure voxel centre) of a
#: vessel, duct or other no-go structure is reported as lying next to it.
NEAR_STRUCTURE_MM = 5.0


@dataclass
class ShortfallGroup:
    """Uncovered target voxels grouped by the nearest no-go structure (or none nearby)."""

    structure: str | None
    """Structure key (e.g. 'portal_vein'); None: farther than NEAR_STRUCTURE_MM from any."""
    volume_ml: float
    tumour_ml: float
    max_distance_mm: float
    field_min_v_per_cm: float
    field_max_v_per_cm: float


def shortfall_groups(
    region: np.ndarray,
    zone: np.ndarray,
    field_max_v_per_cm: np.ndarray,
    structures: dict[str, np.ndarray],
    target_key: str,
    spacing_mm: tuple[float, float, float],
    near_mm: float = NEAR_STRUCTURE_MM,
) -> list[ShortfallGroup]:
    """Where the target is left below threshold: per nearby no-go structure (vessels, ducts,
    gallbladder, ...: `anatomy.vocabulary.NO_GO`), then the rest; largest first."""
    from scipy import ndimage

    from hepablate.anatomy.vocabulary import NO_GO, base_name

    unc = np.asarray(region, bool) & ~np.asarray(zone, bool)
    if not unc.any():
        return []
    vox_ml = float(np.prod(spacing_mm)) / 1000.0
    labels = np.zeros(unc.shape, dtype=np.int16)
    names: list[str] = []
    for key, m in structures.items():
        if key == target_key or base_name(key) not in NO_GO or not np.any(m):
            continue
        names.append(key)
        labels[np.asarray(m, bool) & (labels == 0)] = len(names)
    dist = np.full(unc.shape, np.inf)
    nearest = np.zeros(unc.shape, dtype=np.int16)
    if names:
        d, idx = ndimage.distance_transform_edt(
            labels == 0, sampling=tuple(reversed(spacing_mm)), return_indices=True
        )
        dist, nearest = d, labels[tuple(idx)]
    tumour = np.asarray(structures[target_key], bool)
    fmax = np.asarray(field_max_v_per_cm, float)

    def group(name: str | None, sel: np.ndarray, dist_mm: float) -> ShortfallGroup:
        return ShortfallGroup(
            name,
            float(sel.sum()) * vox_ml,
            float((sel & tumour).sum()) * vox_ml,
            dist_mm,
            float(fmax[sel].min()),
            float(fmax[sel].max()),
        )

    out = []
    near = unc & (dist <= near_mm + 1e-6)
    for k, name in enumerate(names, start=1):
        sel = near & (nearest == k)
        if sel.any():
            out.append(group(name, sel, float(dist[sel].max())))
    rest = unc & ~near
    out.sort(key=lambda g: -g.volume_ml)
    if rest.any():
        finite = np.isfinite(dist[rest]).any()
        out.append(group(None, rest, float(dist[rest].min()) if finite else float("inf")))
    return out


def describe_shortfall(
    groups: list[ShortfallGroup], threshold_v_per_cm: float, safety_mm: float
) -> str:
    """One line saying where and why the target stays below threshold, e.g. 'below the
    600 V/cm threshold: 0.31 ml within 2.8 mm of portal_vein (field 452-598 V/cm; blood
    conducts better than liver and shunts the current past it; ...)'."""
    from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name

    parts = []
    for g in groups:
        fld = f"field {g.field_min_v_per_cm:.0f}-{g.field_max_v_per_cm:.0f} V/cm"
        tum = f", {g.tumour_ml:.2f} ml of it tumour" if g.tumour_ml > 0 else ""
        if g.structure is None:
            parts.append(f"{g.volume_ml:.2f} ml away from vessels and ducts ({fld}{tum})")
            continue
        b = base_name(g.structure)
        if b in VESSELS:
            why = "blood conducts better than liver and shunts the current past it"
        elif b in BILE_DUCTS or b == "gallbladder":
            why = "bile conducts better than liver and shunts the current past it"
        else:
            why = "next to a structure the probes must avoid"
        parts.append(
            f"{g.volume_ml:.2f} ml within {g.max_distance_mm:.1f} mm of {g.structure} "
            f"({fld}{tum}; {why}; probe paths stay {safety_mm:g} mm from it)"
        )
    return (
        f"below the {threshold_v_per_cm:.0f} V/cm threshold: " + "; ".join(parts) if parts else ""
    )
