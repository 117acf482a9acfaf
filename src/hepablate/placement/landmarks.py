"""Where a needle enters, in the terms a radiologist uses at the table (LPS mm, supine).

- **Ribs** are numbered from the case's `bone` mask: bone lateral to the spine and sternum
  (more than `RIB_LATERAL_FRACTION` of the half-width of the body from the midline) splits into
  one connected component per rib and side; on each side the components are ordered from
  inferior to superior and the lowest is taken as the 12th rib (an abdominal CT that holds the
  liver holds the 12th rib; check against the scout). Costal cartilage (`cartilage`) is the
  costal margin, not numbered.
- **Lines** are estimated from the body outline on the entry's axial level, since the
  clavicles and axillae are outside an abdominal image: the midline is the centre of the
  outline's left-right extent; the midclavicular line (MCL) lies halfway from the midline to
  the lateral skin; the anterior axillary line (AAL) where the anterior skin turns 45 degrees
  laterally; the mid-axillary line (MAL) at the most lateral skin point.
- **The xiphoid tip** is the lowest bone voxel near the midline in the anterior half of the
  body (absent when the sternum is not in the image).
- **Angles**: in-plane is the angle of the needle's axial projection from the vertical
  (anteroposterior) axis, towards the patient's left or right; craniocaudal is the angle
  between the needle and the axial plane, cranial when the tip is superior to the entry.
- **Depths** along the needle from the skin entry: to the liver capsule (first liver or target
  voxel) and to the tip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from hepablate.case.model import Case
from hepablate.placement.geometry import unit

#: Bone farther than this fraction of the body's half-width from the midline counts as rib.
RIB_LATERAL_FRACTION = 0.3
#: Rib components smaller than this (ml) are ignored (fragments at the image edge, noise).
RIB_MIN_ML = 0.3
#: Half-thickness (mm) of the axial slab whose body outline gives the lines.
SLAB_HALF_MM = 4.0
#: Ribs within this horizontal distance (mm) of the needle's chest-wall crossing bound its
#: intercostal space.
RIB_SEARCH_MM = 20.0
#: The chest-wall crossing is searched on this first part of the path (mm from the skin).
WALL_SEARCH_MM = 70.0


@dataclass
class Rib:
    number: int
    side: str
    """'right' or 'left' (the patient's)."""
    points_lps_mm: np.ndarray
    """Voxel centres (n, 3)."""


@dataclass
class RibCage:
    ribs: list[Rib]
    cartilage_lps_mm: np.ndarray
    """Costal cartilage voxel centres (n, 3); may be empty."""
    midline_x_mm: float
    half_voxel_mm: np.ndarray = field(default_factory=lambda: np.full(3, 0.5))
    """Half the voxel size along x, y, z (LPS mm): a path point within it of a rib voxel's
    centre on every axis is inside that voxel."""


@dataclass
class EntryDescription:
    """Landmarks, angles and depths of one needle path (mm, degrees)."""

    side: str
    rib_space: str
    """e.g. '9th intercostal space (between ribs 9 and 10)', 'subcostal (below the costal
    margin)', 'not between ribs (abdominal wall)'; 'no rib labels' without bone."""
    from_midline_mm: float
    """Distance of the entry from the midline, to the patient's `side`."""
    line: str
    """The entry relative to the MCL, AAL and MAL, e.g. '12 mm lateral to the right MCL'."""
    xiphoid: str
    """The entry's height relative to the xiphoid tip, or why it is not given."""
    in_plane_deg: float
    in_plane_towards: str
    """'left', 'right' or '' (vertical)."""
    craniocaudal_deg: float
    """Positive: cranial (tip superior to the entry)."""
    depth_to_capsule_mm: float | None
    """None when the path does not reach the liver."""
    depth_to_tip_mm: float
    notes: list[str] = field(default_factory=list)

    def angles_text(self) -> str:
        ip = f"{abs(self.in_plane_deg):.0f} deg from vertical" + (
            f", tip towards the patient's {self.in_plane_towards}" if self.in_plane_towards else ""
        )
        cc = abs(self.craniocaudal_deg)
        if cc < 0.5:
            return f"{ip}; no craniocaudal angle (axial plane)"
        way = "cranial" if self.craniocaudal_deg > 0 else "caudal"
        rel = "superior" if way == "cranial" else "inferior"
        return f"{ip}; {cc:.0f} deg {way} (tip {rel} to the entry)"


def _points(case: Case, mask: np.ndarray) -> np.ndarray:
    return case.grid.index_to_lps(np.argwhere(mask)[:, ::-1].astype(float))


def skin_points_lps_mm(case: Case) -> np.ndarray:
    """Voxel centres (n, 3) of the body outline (body voxels with a face outside it)."""
    body = case.structures.get("body")
    if body is None or not body.any():
        return np.zeros((0, 3))
    return _points(case, body & ~ndimage.binary_erosion(body, border_value=1))


def _slab(skin: np.ndarray, z_mm: float, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """(x, y) of the skin points within `SLAB_HALF_MM` of the height `z_mm` (n, 2)."""
    near = np.abs(skin[:, 2] - z_mm) <= max(SLAB_HALF_MM, 0.51 * max(spacing_mm))
    return skin[near, :2]


def midline_x_mm(case: Case, z_mm: float | None = None, skin: np.ndarray | None = None) -> float:
    """x (mm) of the midline: the centre of the body's left-right extent (at height `z_mm`,
    else over the whole image)."""
    skin = skin_points_lps_mm(case) if skin is None else skin
    xy = skin[:, :2] if z_mm is None else _slab(skin, z_mm, case.grid.spacing_mm)
    if not len(xy):
        xy = skin[:, :2]
    if not len(xy):
        return 0.0
    return float(0.5 * (xy[:, 0].min() + xy[:, 0].max()))


def number_ribs(case: Case, skin: np.ndarray | None = None) -> RibCage:
    """Ribs numbered from the `bone` mask (see the module docstring)."""
    skin = skin_points_lps_mm(case) if skin is None else skin
    bone = case.structures.get("bone")
    cart = case.structures.get("cartilage")
    cart_pts = _points(case, cart) if cart is not None and cart.any() else np.zeros((0, 3))
    mid = midline_x_mm(case, skin=skin)
    g = case.grid
    half = 0.5 * np.abs(np.asarray(g.direction, float) @ np.asarray(g.spacing_mm, float))
    if bone is None or not bone.any():
        return RibCage([], cart_pts, mid, half)
    half_w = float(np.abs(skin[:, 0] - mid).max()) if len(skin) else 150.0  # mm
    y_mid = 0.5 * float(skin[:, 1].min() + skin[:, 1].max()) if len(skin) else 0.0
    idx = np.argwhere(bone)
    x = case.grid.index_to_lps(idx[:, ::-1].astype(float))[:, 0]
    medial = idx[np.abs(x - mid) <= RIB_LATERAL_FRACTION * half_w]
    lateral = bone.copy()
    lateral[medial[:, 0], medial[:, 1], medial[:, 2]] = False
    lab, _ = ndimage.label(lateral, structure=np.ones((3, 3, 3), bool))
    min_vox = RIB_MIN_ML / case.grid.voxel_volume_ml
    comps: dict[str, list[np.ndarray]] = {"right": [], "left": []}
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        m = lab[sl] == i
        if m.sum() < min_vox:
            continue
        ii = np.argwhere(m) + np.array([s.start for s in sl])
        pts = case.grid.index_to_lps(ii[:, ::-1].astype(float))
        side = "left" if float(np.median(pts[:, 0])) > mid else "right"
        comps[side].append(pts)
    ribs: list[Rib] = []
    for side, lst in comps.items():
        for rank, k in enumerate(_inferior_to_superior(lst, mid, y_mid)):
            ribs.append(Rib(12 - rank, side, lst[k]))
    return RibCage(ribs, cart_pts, mid, half)


def _inferior_to_superior(ribs: list[np.ndarray], mid: float, y_mid: float) -> list[int]:
    """Indices of `ribs` from lowest to highest. Ribs slope, so two are compared at the
    azimuths (angle around the body axis through (`mid`, `y_mid`)) they share; without shared
    azimuths, by mean z."""
    if not ribs:
        return []
    bins = np.radians(np.arange(0.0, 181.0, 10.0))

    def profile(p: np.ndarray) -> dict[int, float]:
        phi = np.arctan2(np.abs(p[:, 0] - mid), p[:, 1] - y_mid)
        b = np.digitize(phi, bins)
        return {int(k): float(p[b == k, 2].mean()) for k in np.unique(b)}

    prof = [profile(p) for p in ribs]

    def below(a: int, b: int) -> bool:
        shared = set(prof[a]) & set(prof[b])
        if shared:
            return float(np.median([prof[a][k] - prof[b][k] for k in shared])) < 0
        return float(ribs[a][:, 2].mean()) < float(ribs[b][:, 2].mean())

    # Rank by how many others lie above (a robust sort for a not-quite-total order).
    score = [sum(below(a, b) for b in range(len(ribs)) if b != a) for a in range(len(ribs))]
    return sorted(range(len(ribs)), key=lambda a: -score[a])


def _ordinal(n: int) -> str:
    suf = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suf}"


def rib_space(cage: RibCage, entry: np.ndarray, tip: np.ndarray) -> str:
    """The intercostal space (or subcostal window) the path from `entry` to `tip` crosses."""
    if not cage.ribs:
        return "no rib labels (bone not segmented)"
    d = unit(tip - entry)
    depth = float(np.linalg.norm(tip - entry))
    t = np.arange(0.0, min(depth, WALL_SEARCH_MM) + 1e-9, 0.5)
    path = entry[None, :] + t[:, None] * d[None, :]
    allpts = np.concatenate([r.points_lps_mm for r in cage.ribs] + [cage.cartilage_lps_mm])
    owner = np.concatenate(
        [np.full(len(r.points_lps_mm), i) for i, r in enumerate(cage.ribs)]
        + [np.full(len(cage.cartilage_lps_mm), -1)]
    )
    tree = cKDTree(allpts)
    dist, nn = tree.query(path)
    # The nearest voxel centre of a regular grid is that of the voxel holding the point.
    inside = np.all(np.abs(path - allpts[nn]) <= cage.half_voxel_mm[None, :] + 1e-9, axis=1)
    hit = np.flatnonzero(inside)
    if hit.size:
        k = int(owner[nn[hit[0]]])
        if k < 0:
            return "through the costal cartilage"
        return f"through rib {cage.ribs[k].number} ({cage.ribs[k].side})"
    i = int(np.argmin(dist))
    p = path[i]
    # Ribs (and cartilage) above and below the crossing point, near it horizontally.
    near = np.linalg.norm(allpts[:, :2] - p[None, :2], axis=1) <= RIB_SEARCH_MM
    above: tuple[float, int] | None = None
    below: tuple[float, int] | None = None
    for k in np.unique(owner[near]):
        zs = allpts[near & (owner == k), 2]
        if np.any(np.abs(zs - p[2]) < 1e-6):
            continue
        if zs.mean() > p[2]:
            gap = float(zs.min() - p[2])
            if above is None or gap < above[0]:
                above = (gap, int(k))
        else:
            gap = float(p[2] - zs.max())
            if below is None or gap < below[0]:
                below = (gap, int(k))
    name = {k: (cage.ribs[k].number if k >= 0 else None) for k in range(-1, len(cage.ribs))}
    a = name[above[1]] if above else None
    b = name[below[1]] if below else None
    if above and below and a is not None and b is not None:
        lo, hi = sorted((a, b))
        if hi - lo == 1:
            return f"{_ordinal(lo)} intercostal space (between ribs {lo} and {hi})"
        return f"between ribs {lo} and {hi}"
    if above and (a is None or below is None):
        if a is None:
            return "subcostal (below the costal margin)"
        return f"subcostal (below rib {a})"
    if below and b is not None:
        return f"above rib {b}"
    return "not between ribs (abdominal wall)"


def _lines(
    case: Case, skin: np.ndarray, entry: np.ndarray, side: str, mid: float
) -> tuple[str, dict[str, float]]:
    """The entry relative to the MCL, AAL and MAL on its axial level, and the lines' x (mm)."""
    xy = _slab(skin, float(entry[2]), case.grid.spacing_mm)
    sgn = 1.0 if side == "left" else -1.0
    if not len(xy):
        return "body outline not in the image at this level", {}
    lat = sgn * (xy[:, 0] - mid)  # distance from the midline towards the entry's side
    xy = xy[lat >= 0]
    lat = lat[lat >= 0]
    half_w = float(lat.max())
    lines = {"MCL": 0.5 * half_w, "MAL": half_w}
    # Anterior skin y per 2 mm of lateral distance; the AAL where its slope reaches 1.
    bins = np.arange(0.0, half_w + 2.0, 2.0)
    b = np.digitize(lat, bins)
    y_ant = np.array(
        [xy[b == k, 1].min() if np.any(b == k) else np.nan for k in range(1, len(bins))]
    )
    centres = bins[:-1] + 1.0
    ok = np.isfinite(y_ant)
    if ok.sum() >= 5:
        ys = ndimage.uniform_filter1d(y_ant[ok], 3)
        slope = np.gradient(ys, centres[ok])
        steep = np.flatnonzero((slope >= 1.0) & (centres[ok] > lines["MCL"]))
        lines["AAL"] = float(centres[ok][steep[0]]) if steep.size else 0.85 * half_w
    else:
        lines["AAL"] = 0.85 * half_w
    e = sgn * (float(entry[0]) - mid)
    where = []
    for name in ("MCL", "AAL", "MAL"):
        off = e - lines[name]
        rel = "on" if abs(off) < 5.0 else ("lateral to" if off > 0 else "medial to")
        where.append(
            f"{abs(off):.0f} mm {rel} the {side} {name}" if rel != "on" else f"on the {side} {name}"
        )
    if e < lines["MCL"] - 5.0:
        text = where[0]
    elif e <= lines["AAL"] + 5.0:
        text = f"{where[0]}, {where[1]}"
    else:
        text = f"{where[1]}, {where[2]}"
    return text, {k: mid + sgn * v for k, v in lines.items()}


def xiphoid_tip_lps_mm(case: Case, mid: float, skin: np.ndarray) -> np.ndarray | None:
    """The lowest bone voxel within 15 mm of the midline in the anterior half of the body."""
    bone = case.structures.get("bone")
    if bone is None or not bone.any() or not len(skin):
        return None
    y_mid = 0.5 * (float(skin[:, 1].min()) + float(skin[:, 1].max()))
    pts = _points(case, bone)
    pts = pts[(np.abs(pts[:, 0] - mid) <= 15.0) & (pts[:, 1] < y_mid)]
    if not len(pts):
        return None
    return pts[int(np.argmin(pts[:, 2]))]


def depth_to_capsule_mm(case: Case, entry: np.ndarray, tip: np.ndarray) -> float | None:
    """Distance (mm) along the path from the skin entry to the first liver or target voxel."""
    liver = case.structures.get("liver")
    m = case.target_mask.copy()
    if liver is not None:
        m |= liver
    d = unit(tip - entry)
    depth = float(np.linalg.norm(tip - entry))
    t = np.arange(0.0, depth + 1e-9, 0.5)
    pts = entry[None, :] + t[:, None] * d[None, :]
    ijk = np.rint(case.grid.lps_to_index(pts)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(case.grid.shape_ijk)), axis=1)
    hit = np.zeros(len(t), bool)
    k = ijk[inside]
    hit[inside] = m[k[:, 2], k[:, 1], k[:, 0]]
    first = np.flatnonzero(hit)
    return float(t[first[0]]) if first.size else None


def needle_angles_deg(direction_lps: np.ndarray) -> tuple[float, str, float]:
    """(in-plane angle from vertical, 'left'/'right'/'' the tip points towards, craniocaudal
    angle, + cranial) of an insertion direction (entry -> tip, LPS; patient supine)."""
    d = unit(direction_lps)
    horiz = float(np.hypot(d[0], d[1]))
    cc = float(np.degrees(np.arctan2(d[2], horiz)))
    if horiz < 1e-9:
        return 0.0, "", cc
    # From the vertical: an anterior entry goes posterior (+y), a posterior one anterior.
    ip = float(np.degrees(np.arctan2(abs(d[0]), abs(d[1]))))
    towards = "" if ip < 0.5 else ("left" if d[0] > 0 else "right")
    return ip, towards, cc


def describe_entry(
    case: Case,
    entry_lps_mm: np.ndarray,
    tip_lps_mm: np.ndarray,
    cage: RibCage | None = None,
    skin: np.ndarray | None = None,
) -> EntryDescription:
    """Landmarks, angles and depths of the path from `entry_lps_mm` (on the skin) to
    `tip_lps_mm` (see the module docstring for how each is estimated). `cage` and `skin`
    (from `number_ribs`, `skin_points_lps_mm`) may be kept for several needles of one case."""
    entry = np.asarray(entry_lps_mm, float)
    tip = np.asarray(tip_lps_mm, float)
    skin = skin_points_lps_mm(case) if skin is None else skin
    cage = cage or number_ribs(case, skin)
    mid = midline_x_mm(case, float(entry[2]), skin)
    side = "left" if entry[0] > mid else "right"
    line, _ = _lines(case, skin, entry, side, mid)
    xt = xiphoid_tip_lps_mm(case, midline_x_mm(case, skin=skin), skin)
    bone = case.structures.get("bone")
    if bone is None or not bone.any():
        xiph = "xiphoid not known (bone not segmented)"
    elif xt is None:
        xiph = "xiphoid not in the image"
    else:
        dz = float(entry[2] - xt[2])
        xiph = f"{abs(dz):.0f} mm {'below' if dz < 0 else 'above'} the xiphoid tip"
    ip, towards, cc = needle_angles_deg(tip - entry)
    return EntryDescription(
        side=side,
        rib_space=rib_space(cage, entry, tip),
        from_midline_mm=abs(float(entry[0]) - mid),
        line=line,
        xiphoid=xiph,
        in_plane_deg=ip,
        in_plane_towards=towards,
        craniocaudal_deg=cc,
        depth_to_capsule_mm=depth_to_capsule_mm(case, entry, tip),
        depth_to_tip_mm=float(np.linalg.norm(tip - entry)),
    )
