"""Synthetic liver cases: an ellipsoidal liver in an elliptic body, ellipsoidal tumours,
straight tubular vessels and ducts at chosen gaps from the target, a gallbladder, and CT-like
intensities. Everything is in LPS mm with an identity direction; the grid is centred on the
body so the origin is at minus half the field of view.

The shapes are voxelised by testing voxel centres, so the volumes converge to the analytic
ones as the spacing falls (tested).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hepablate.anatomy.containment import normalise_containment
from hepablate.case.model import Case
from hepablate.core.volume import Volume, vec3

Vec3 = tuple[float, float, float]

#: CT numbers (HU) for the synthetic image: typical portal-venous phase values, for display
#: only; no physics uses them.
CT_HU = {
    "air": -1000,
    "body": 40,
    "liver": 100,
    "tumour": 55,
    "portal_vein": 180,
    "hepatic_vein": 170,
    "hepatic_artery": 200,
    "ivc": 160,
    "aorta": 200,
    "bile_duct": 10,
    "gallbladder": 5,
    "bone": 700,
    "stomach": 30,
    "bowel": 30,
    "kidney": 150,
}


class TumourSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = "T1"
    centre_lps_mm: Vec3 = (-45.0, 0.0, 0.0)
    diameter_mm: float | None = Field(25.0, gt=0)
    semi_axes_mm: Vec3 | None = Field(
        None, description="ellipsoid semi-axes (x, y, z); overrides diameter_mm"
    )

    @property
    def semi_axes(self) -> np.ndarray:
        if self.semi_axes_mm is not None:
            return np.asarray(self.semi_axes_mm, dtype=float)
        assert self.diameter_mm is not None
        return np.full(3, self.diameter_mm / 2.0)


class TubeSpec(BaseModel):
    """A straight tube (vessel or duct) placed `gap_mm` from the target tumour's surface.

    The axis runs along `direction`; the tube lies on the `side` of the target (a vector that
    is made perpendicular to `direction`). The tube spans the whole liver and is clipped to it
    (plus 10 mm for vessels that leave the liver).
    """

    model_config = ConfigDict(extra="forbid")
    name: str = "portal_vein"
    radius_mm: float = Field(4.0, gt=0)
    direction: Vec3 = (0.0, 0.0, 1.0)
    side: Vec3 = (1.0, 0.0, 0.0)
    gap_mm: float = Field(0.0, description="wall-to-tumour-surface gap; 0 means abutting")


class PhantomSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: str = "phantom"
    description: str = "synthetic liver phantom"
    spacing_mm: Vec3 = (1.0, 1.0, 1.0)
    fov_mm: Vec3 = (220.0, 170.0, 120.0)
    body_semi_axes_mm: tuple[float, float] = (105.0, 80.0)
    liver_centre_lps_mm: Vec3 = (-45.0, 0.0, 0.0)
    liver_semi_axes_mm: Vec3 = (55.0, 55.0, 50.0)
    tumours: list[TumourSpec] = Field(default_factory=lambda: [TumourSpec()])
    tubes: list[TubeSpec] = Field(default_factory=list)
    gallbladder_centre_lps_mm: Vec3 | None = (-30.0, -40.0, -25.0)
    gallbladder_semi_axes_mm: Vec3 = (12.0, 10.0, 18.0)
    target: str = "T1"
    margin_mm: float = 5.0
    with_ct: bool = True

    @model_validator(mode="after")
    def _check(self) -> PhantomSpec:
        ids = [t.id for t in self.tumours]
        if self.target not in ids:
            raise ValueError(f"target '{self.target}' is not among tumour ids {ids}")
        if len(set(ids)) != len(ids):
            raise ValueError("tumour ids must be unique")
        return self


class BlockSpec(BaseModel):
    """A homogeneous block of one tissue (for physics verification), with a small central
    target marker so it is a valid case."""

    model_config = ConfigDict(extra="forbid")
    case_id: str = "block"
    tissue: str = "liver"
    size_mm: Vec3 = (80.0, 80.0, 80.0)
    spacing_mm: Vec3 = (1.0, 1.0, 1.0)
    target_diameter_mm: float = 10.0
    margin_mm: float = 5.0


def _grid(spacing: Vec3, fov: Vec3) -> Volume:
    # Odd sizes put a voxel centre on the grid centre, so centred shapes are symmetric.
    shape_ijk = [max(1, int(round(f / s))) | 1 for f, s in zip(fov, spacing, strict=True)]
    origin = [-(n - 1) * s / 2.0 for n, s in zip(shape_ijk, spacing, strict=True)]
    return Volume(np.zeros(shape_ijk[::-1], dtype=np.int16), spacing, vec3(origin))


def _coords(grid: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable LPS coordinate arrays (x along axis 2, y axis 1, z axis 0)."""
    nk, nj, ni = grid.array.shape
    sx, sy, sz = grid.spacing_mm
    ox, oy, oz = grid.origin_lps_mm
    x = (ox + sx * np.arange(ni))[None, None, :]
    y = (oy + sy * np.arange(nj))[None, :, None]
    z = (oz + sz * np.arange(nk))[:, None, None]
    return x, y, z


def _ellipsoid(coords, centre, semi) -> np.ndarray:
    x, y, z = coords
    return ((x - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2 + (
        (z - centre[2]) / semi[2]
    ) ** 2 <= 1.0


def _radius_along(semi: np.ndarray, u: np.ndarray) -> float:
    """Distance from an ellipsoid's centre to its surface along unit vector u."""
    return float(1.0 / np.sqrt(np.sum((u / semi) ** 2)))


def tube_axis_point(spec: PhantomSpec, tube: TubeSpec) -> tuple[np.ndarray, np.ndarray]:
    """A point on the tube's axis and its unit direction (LPS mm)."""
    target = next(t for t in spec.tumours if t.id == spec.target)
    d = np.asarray(tube.direction, float)
    d /= np.linalg.norm(d)
    side = np.asarray(tube.side, float)
    side = side - side.dot(d) * d
    if np.linalg.norm(side) < 1e-9:
        raise ValueError(f"tube '{tube.name}': side must not be parallel to direction")
    side /= np.linalg.norm(side)
    # The closest approach of a line along d offset along side: for a sphere it is exact; for
    # an ellipsoid we use the radius along `side` (the generator's documented convention).
    r = _radius_along(target.semi_axes, side)
    centre = np.asarray(target.centre_lps_mm, float)
    return centre + side * (r + tube.gap_mm + tube.radius_mm), d


def _tube(coords, point, d, radius) -> np.ndarray:
    x, y, z = coords
    rel = [x - point[0], y - point[1], z - point[2]]
    along = rel[0] * d[0] + rel[1] * d[1] + rel[2] * d[2]
    dist2 = (rel[0] ** 2 + rel[1] ** 2 + rel[2] ** 2) - along**2
    return dist2 <= radius**2


def build_phantom(spec: PhantomSpec | None = None) -> Case:
    """Build the phantom described by `spec` as an in-memory `Case` (deterministic)."""
    spec = spec or PhantomSpec()
    grid = _grid(spec.spacing_mm, spec.fov_mm)
    c = _coords(grid)
    x, y, _ = c
    shape = grid.array.shape
    a, b = spec.body_semi_axes_mm
    body = np.broadcast_to((x / a) ** 2 + (y / b) ** 2 <= 1.0, shape).copy()
    liver = _ellipsoid(c, spec.liver_centre_lps_mm, spec.liver_semi_axes_mm) & body
    structures: dict[str, np.ndarray] = {"body": body, "liver": liver}
    tumours = {}
    for t in spec.tumours:
        tumours[f"tumour:{t.id}"] = _ellipsoid(c, t.centre_lps_mm, t.semi_axes) & body
    # Tubes span the liver (vessels reach 10 mm beyond it); they are painted over other tissue.
    liver_grown = _ellipsoid(
        c, spec.liver_centre_lps_mm, np.asarray(spec.liver_semi_axes_mm) + 10.0
    )
    for tube in spec.tubes:
        point, d = tube_axis_point(spec, tube)
        m = _tube(c, point, d, tube.radius_mm)
        m &= liver if tube.name == "bile_duct" else liver_grown & body
        key = tube.name
        structures[key] = structures.get(key, np.zeros(shape, bool)) | m
    if spec.gallbladder_centre_lps_mm is not None:
        gb = _ellipsoid(c, spec.gallbladder_centre_lps_mm, spec.gallbladder_semi_axes_mm) & body
        structures["gallbladder"] = gb
    # Painting order: structures painted later take precedence where they overlap.
    tubes_union = np.zeros(shape, bool)
    for tube in spec.tubes:
        tubes_union |= structures[tube.name]
    for key, m in tumours.items():
        structures[key] = m & ~tubes_union
    if "gallbladder" in structures:
        gb = structures["gallbladder"] & ~tubes_union
        for key in tumours:
            gb &= ~structures[key]
        structures["gallbladder"] = gb
        structures["liver"] = structures["liver"] & ~gb
    ct_arr = None
    if spec.with_ct:
        ct_arr = np.full(shape, CT_HU["air"], dtype=np.int16)
        ct_arr[body] = CT_HU["body"]
        ct_arr[structures["liver"]] = CT_HU["liver"]
        for key in ("gallbladder",):
            if key in structures:
                ct_arr[structures[key]] = CT_HU[key]
        for key in tumours:
            ct_arr[structures[key]] = CT_HU["tumour"]
        for tube in spec.tubes:
            ct_arr[structures[tube.name]] = CT_HU.get(tube.name, 150)
    normalise_containment(structures)
    ct = grid.with_array(ct_arr) if ct_arr is not None else None
    ref = ct if ct is not None else grid
    return Case(
        case_id=spec.case_id,
        grid=ref,
        structures=structures,
        target_id=spec.target,
        margin_mm=spec.margin_mm,
        ct=ct,
    )


def build_block(spec: BlockSpec | None = None) -> Case:
    """A homogeneous block: body and `tissue` fill the grid; a central sphere marks the target.

    When `tissue` is "liver" the target is also inside the liver so the case validates.
    """
    spec = spec or BlockSpec()
    grid = _grid(spec.spacing_mm, spec.size_mm)
    c = _coords(grid)
    shape = grid.array.shape
    full = np.ones(shape, dtype=bool)
    target = _ellipsoid(c, (0.0, 0.0, 0.0), np.full(3, spec.target_diameter_mm / 2))
    structures = {"body": full.copy(), "liver": full.copy(), "tumour:T1": target}
    if spec.tissue != "liver":
        structures[spec.tissue] = full.copy()
    return Case(
        case_id=spec.case_id,
        grid=grid,
        structures=structures,
        target_id="T1",
        margin_mm=spec.margin_mm,
    )


def ire_example_spec() -> PhantomSpec:
    """Sample case (a): a 2.5 cm tumour abutting a portal vein branch and a bile duct."""
    return PhantomSpec(
        case_id="sample-ire-perihilar",
        description="2.5 cm tumour abutting a portal vein branch (r 5 mm) and a bile duct "
        "(r 2 mm): a typical IRE indication",
        tumours=[TumourSpec(id="T1", centre_lps_mm=(-40.0, 0.0, 0.0), diameter_mm=25.0)],
        tubes=[
            TubeSpec(
                name="portal_vein", radius_mm=5.0, direction=(0, 0, 1), side=(1, 0, 0), gap_mm=0.0
            ),
            TubeSpec(
                name="bile_duct", radius_mm=2.0, direction=(0, 0, 1), side=(0, 1, 0), gap_mm=0.0
            ),
            TubeSpec(
                name="hepatic_vein",
                radius_mm=4.0,
                direction=(0, 1, 0),
                side=(-1, 0, 1),
                gap_mm=15.0,
            ),
        ],
        margin_mm=5.0,
    )


#: The IRE planning acceptance suite (issue 4): (tumour diameter mm, margin mm, gap to a portal
#: vein branch mm or None, gap to a bile duct mm or None). Used by the slow planning tests and
#: `benchmarks/bench_ire_suite.py`.
IRE_PLANNING_SUITE: tuple[tuple[float, float, float | None, float | None], ...] = (
    (10.0, 5.0, None, None),
    (10.0, 10.0, 0.0, None),
    (20.0, 5.0, 0.0, 2.0),
    (20.0, 10.0, None, None),
    (30.0, 5.0, 0.0, None),
    (35.0, 5.0, None, 2.0),
)


def ire_suite_spec(
    diameter_mm: float,
    margin_mm: float = 5.0,
    vessel_gap_mm: float | None = None,
    duct_gap_mm: float | None = None,
    spacing_mm: float = 2.0,
) -> PhantomSpec:
    """A planning-suite phantom: one tumour, optionally a portal vein branch (r 4 mm) and a
    bile duct (r 2 mm) at the given gaps from it."""
    tubes = []
    if vessel_gap_mm is not None:
        tubes.append(
            TubeSpec(
                name="portal_vein",
                radius_mm=4.0,
                direction=(0, 0, 1),
                side=(1, 0, 0),
                gap_mm=vessel_gap_mm,
            )
        )
    if duct_gap_mm is not None:
        tubes.append(
            TubeSpec(
                name="bile_duct",
                radius_mm=2.0,
                direction=(0, 0, 1),
                side=(0, 1, 0),
                gap_mm=duct_gap_mm,
            )
        )
    return PhantomSpec(
        spacing_mm=(spacing_mm,) * 3,
        fov_mm=(220.0, 170.0, 110.0),
        tumours=[TumourSpec(id="T1", centre_lps_mm=(-45.0, 0.0, 0.0), diameter_mm=diameter_mm)],
        tubes=tubes,
        margin_mm=margin_mm,
    )


def laser_example_spec() -> PhantomSpec:
    """Sample case (b): a 3.5 cm tumour away from major vessels (a typical laser case)."""
    return PhantomSpec(
        case_id="sample-laser-peripheral",
        description="3.5 cm tumour in the right lobe, more than 15 mm from major vessels",
        tumours=[TumourSpec(id="T1", centre_lps_mm=(-55.0, -5.0, 0.0), diameter_mm=35.0)],
        tubes=[
            TubeSpec(
                name="portal_vein", radius_mm=5.0, direction=(0, 0, 1), side=(1, 0, 0), gap_mm=18.0
            ),
            TubeSpec(
                name="hepatic_vein", radius_mm=4.0, direction=(0, 1, 0), side=(0, 0, 1), gap_mm=20.0
            ),
        ],
        margin_mm=5.0,
    )
