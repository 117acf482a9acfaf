"""An anatomical torso phantom: the upper abdomen and lower chest of an adult, built in code.

Unlike the ellipsoid phantom (`builder.py`) this one has the anatomy that decides whether a
percutaneous path exists: skin, subcutaneous fat and muscle; ribs (5 to 12) with intercostal
spaces, costal cartilage forming the costal margin, sternum and xiphoid; the spine and back
muscles; lungs whose lower border rises from the 10th rib posteriorly to the 6th at the
midclavicular line, with the pleural recess (no lung) about two ribs below it beside the liver;
the diaphragm; the heart in its pericardium on the central tendon; a liver with a right lobe, a
dome under the right hemidiaphragm, a left lobe tapering across the midline and reaching below
the xiphoid into the epigastrium, an IVC groove and a caudate lobe, labelled by Couinaud segment (I to VIII, from
the hepatic vein and portal planes); branching portal and hepatic venous trees, the IVC, the
hepatic artery, a bile duct tree and the gallbladder; stomach, duodenum, colon, pancreas,
kidneys, spleen and aorta; and tumours placed by anatomical position.

Frame: LPS mm (x to the patient's left, y posterior, z superior), identity direction, the grid
centred on the body axis. Every shape is an analytic function evaluated at the voxel centres,
so a finer or anisotropic grid gives the same anatomy (volumes agree within a few per cent,
tested). The CT numbers are typical portal-venous-phase values per tissue plus Gaussian noise
from a fixed seed: for display and for testing image-based steps, not for physics.

The dimensions are those of a medium adult (body 320 x 220 mm); they are chosen to look and
measure like a CT, not taken from one patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hepablate.anatomy.containment import normalise_containment
from hepablate.case.model import Case
from hepablate.core.volume import Volume, vec3

Vec3 = tuple[float, float, float]

#: Where a tumour can be put by name, and the Couinaud segment it lies in.
TUMOUR_POSITIONS: dict[str, str] = {
    "dome": "VIII",  # under the right hemidiaphragm, below the lung base
    "posterior": "VII",  # posterior right lobe, behind the lower ribs
    "caudate": "I",  # between the IVC and the hilum
    "subcapsular": "VI",  # at the inferior surface of the right lobe, touching the capsule
    "exophytic": "VI",  # as subcapsular, most of it outside the liver contour
    "perihilar": "IV",  # abutting the portal bifurcation
    "gallbladder": "V",  # next to the gallbladder
    "heart": "II",  # left lobe under the heart
    "ivc": "VII",  # abutting the IVC
}
SEGMENTS = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII")

TumourKind = Literal["hcc", "metastasis", "cholangiocarcinoma"]

#: CT numbers (HU), portal-venous phase; display only.
TORSO_HU: dict[str, float] = {
    "air": -1000,
    "skin": 30,
    "soft": 20,
    "fat": -100,
    "mediastinum": -60,
    "muscle": 50,
    "lung": -850,
    "pleura": 20,
    "diaphragm": 55,
    "heart": 140,
    "pericardium": 25,
    "liver": 105,
    "portal_vein": 175,
    "hepatic_vein": 165,
    "hepatic_artery": 220,
    "ivc": 150,
    "aorta": 190,
    "bile_duct": 10,
    "gallbladder": 8,
    "stomach": 45,
    "duodenum": 40,
    "colon": 40,
    "pancreas": 95,
    "kidney": 170,
    "spleen": 115,
    "bone": 650,
    "marrow": 220,
    "cartilage": 120,
    "hcc": 75,
    "metastasis": 50,
    "cholangiocarcinoma": 65,
    "gas": -900,
    "fluid": 15,
}


class TorsoTumour(BaseModel):
    """A tumour placed by anatomical position (see `TUMOUR_POSITIONS`) or by a Couinaud
    segment (``segment:VI``: at the deepest point of that segment), or at an explicit
    centre."""

    model_config = ConfigDict(extra="forbid")
    id: str = "T1"
    position: str = "dome"
    diameter_mm: float = Field(25.0, gt=0, le=80)
    kind: TumourKind = "hcc"
    centre_lps_mm: Vec3 | None = Field(None, description="explicit centre; overrides position")

    @model_validator(mode="after")
    def _check(self) -> TorsoTumour:
        p = self.position
        if p.startswith("segment:"):
            if p.split(":", 1)[1] not in SEGMENTS:
                raise ValueError(f"unknown segment in '{p}'; expected one of {', '.join(SEGMENTS)}")
        elif p not in TUMOUR_POSITIONS:
            raise ValueError(
                f"unknown tumour position '{p}'; expected one of "
                f"{', '.join(TUMOUR_POSITIONS)} or segment:I..VIII"
            )
        return self


class TorsoSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: str = "torso"
    description: str = "anatomical torso phantom"
    spacing_mm: Vec3 = (2.0, 2.0, 2.0)
    fov_mm: Vec3 = (340.0, 240.0, 220.0)
    tumours: list[TorsoTumour] = Field(default_factory=lambda: [TorsoTumour()])
    target: str = "T1"
    margin_mm: float = 5.0
    with_ct: bool = True
    noise_hu: float = Field(8.0, ge=0)
    seed: int = 12

    @model_validator(mode="after")
    def _check(self) -> TorsoSpec:
        ids = [t.id for t in self.tumours]
        if self.target not in ids:
            raise ValueError(f"target '{self.target}' is not among tumour ids {ids}")
        if len(set(ids)) != len(ids):
            raise ValueError("tumour ids must be unique")
        return self


def torso_spec(
    tumour_position: str = "dome",
    diameter_mm: float = 25.0,
    spacing_mm: float | Vec3 = 2.0,
    kind: TumourKind = "hcc",
    margin_mm: float = 5.0,
    **kw: object,
) -> TorsoSpec:
    """A torso with one target tumour at `tumour_position` (e.g. "dome", "posterior",
    "segment:VI"); `spacing_mm` is isotropic or (x, y, z), e.g. (0.7, 0.7, 2.5)."""
    sp = (float(spacing_mm),) * 3 if isinstance(spacing_mm, int | float) else vec3(spacing_mm)
    return TorsoSpec(
        case_id=f"torso-{tumour_position.replace(':', '-')}",
        description=f"anatomical torso phantom, {diameter_mm:g} mm {kind} at {tumour_position}",
        spacing_mm=sp,
        tumours=[
            TorsoTumour(id="T1", position=tumour_position, diameter_mm=diameter_mm, kind=kind)
        ],
        margin_mm=margin_mm,
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class TorsoAnatomy:
    """The built phantom: the case, its Couinaud segment map and named landmarks."""

    case: Case
    segments: Volume
    """Couinaud segment per voxel (1 to 8 for I to VIII, 0 outside the liver), uint8."""
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)
    tumour_centres: dict[str, np.ndarray] = field(default_factory=dict)


# ---- geometry helpers ----------------------------------------------------------------------


class _Grid:
    def __init__(self, spacing: Vec3, fov: Vec3):
        shape_ijk = [max(1, int(round(f / s))) | 1 for f, s in zip(fov, spacing, strict=True)]
        self.origin = np.array(
            [-(n - 1) * s / 2.0 for n, s in zip(shape_ijk, spacing, strict=True)]
        )
        self.spacing = np.asarray(spacing, float)
        self.shape = tuple(shape_ijk[::-1])  # (nk, nj, ni)
        nk, nj, ni = self.shape
        self.x1 = self.origin[0] + self.spacing[0] * np.arange(ni)
        self.y1 = self.origin[1] + self.spacing[1] * np.arange(nj)
        self.z1 = self.origin[2] + self.spacing[2] * np.arange(nk)
        self.x2 = self.x1[None, :]
        self.y2 = self.y1[:, None]

    def volume(self, arr: np.ndarray) -> Volume:
        return Volume(arr, vec3(self.spacing), vec3(self.origin))

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice]:
        def rng(v: np.ndarray, a: float, b: float) -> slice:
            return slice(int(np.searchsorted(v, a)), int(np.searchsorted(v, b, side="right")))

        return (rng(self.z1, lo[2], hi[2]), rng(self.y1, lo[1], hi[1]), rng(self.x1, lo[0], hi[0]))

    def coords(self, sl: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            self.x1[sl[2]][None, None, :],
            self.y1[sl[1]][None, :, None],
            self.z1[sl[0]][:, None, None],
        )


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _ellipsoid(g: _Grid, centre: Vec3, semi: Vec3, axis: Vec3 | None = None) -> np.ndarray:
    """Ellipsoid; with `axis`, the third semi-axis lies along it (the others perpendicular)."""
    c, s = np.asarray(centre, float), np.asarray(semi, float)
    out = np.zeros(g.shape, bool)
    r = float(s.max())
    sl = g.box(c - r, c + r)
    x, y, z = g.coords(sl)
    rel = (x - c[0], y - c[1], z - c[2])
    if axis is None:
        q = (rel[0] / s[0]) ** 2 + (rel[1] / s[1]) ** 2 + (rel[2] / s[2]) ** 2
    else:
        w = _unit(np.asarray(axis))
        u = _unit(np.cross(w, [0.0, 0.0, 1.0] if abs(w[2]) < 0.9 else [1.0, 0.0, 0.0]))
        v = np.cross(w, u)
        a = rel[0] * u[0] + rel[1] * u[1] + rel[2] * u[2]
        b = rel[0] * v[0] + rel[1] * v[1] + rel[2] * v[2]
        cc = rel[0] * w[0] + rel[1] * w[1] + rel[2] * w[2]
        q = (a / s[0]) ** 2 + (b / s[1]) ** 2 + (cc / s[2]) ** 2
    out[sl] = q <= 1.0
    return out


def _capsule(
    g: _Grid, p0: Vec3, p1: Vec3, r0: float, r1: float | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """A tube from p0 to p1 whose radius tapers linearly from r0 to r1 (round ends)."""
    r1 = r0 if r1 is None else r1
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    out = np.zeros(g.shape, bool) if out is None else out
    rmax = max(r0, r1)
    sl = g.box(np.minimum(a, b) - rmax, np.maximum(a, b) + rmax)
    x, y, z = g.coords(sl)
    d = b - a
    L2 = float(d @ d)
    t = ((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / L2
    t = np.clip(t, 0.0, 1.0)
    dist2 = (x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2
    r = r0 + (r1 - r0) * t
    out[sl] |= dist2 <= r**2
    return out


def _tree(g: _Grid, branches: list[tuple[Vec3, Vec3, float, float]]) -> np.ndarray:
    out = np.zeros(g.shape, bool)
    for p0, p1, r0, r1 in branches:
        _capsule(g, p0, p1, r0, r1, out)
    return out


# ---- the anatomy ---------------------------------------------------------------------------

#: Body cross-section: half-width, anterior and posterior half-depths (mm).
BODY_A, BODY_B_ANT, BODY_B_POST = 160.0, 115.0, 105.0
#: Depth below the skin of the inner surface of the body wall (mm).
WALL_MM = 30.0
IVC_XY = (-24.0, 20.0)
IVC_R = 12.0
AORTA_XY = (24.0, 30.0)
AORTA_R = 12.0
PORTAL_BIFURCATION: Vec3 = (-28.0, -6.0, -4.0)


def _body_2d(g: _Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inside, depth below the skin mm, angle from the posterior midline rad) on (j, i)."""
    x, y = g.x2, g.y2
    b = np.where(y > 0, BODY_B_POST, BODY_B_ANT)
    rho = np.sqrt((x / BODY_A) ** 2 + (y / b) ** 2)
    grad = np.sqrt((x / BODY_A**2) ** 2 + (y / b**2) ** 2) / np.maximum(rho, 1e-9)
    depth = (1.0 - rho) / np.maximum(grad, 1e-12)
    phi = np.arctan2(np.abs(x), y)  # 0 posterior midline, pi anterior midline
    return rho <= 1.0, depth, phi


def _diaphragm_attach(phi: np.ndarray) -> np.ndarray:
    """Height (z mm) of the diaphragm's insertion on the body wall: low laterally and
    posteriorly (the costophrenic recesses), rising anteriorly to the xiphoid."""
    front = np.clip((phi - np.radians(110.0)) / np.radians(70.0), 0.0, 1.0)
    return -58.0 + 76.0 * front


#: The lungs' lower border on the chest wall (phi deg from the posterior midline, z mm) in quiet
#: breathing: the 10th rib posteriorly, the 8th at the mid-axillary line, the 6th at the
#: midclavicular line and its cartilage at the sternum; the parietal pleura reaches about two
#: ribs lower (`_diaphragm_attach`), leaving the costophrenic recess free of lung (Gray's
#: Anatomy, 42nd ed., ch. "Pleura"; Moore, Clinically Oriented Anatomy, 8th ed., table 4.1).
#: On this phantom's ribs (`_rib_centre_z`) those are the heights below.
LUNG_BASE_PHI_Z = ((0.0, -40.0), (50.0, -42.0), (90.0, -12.0), (150.0, 20.0), (180.0, 26.0))


def _lung_base(phi: np.ndarray) -> np.ndarray:
    """Height (z mm) of the lung's lower border over the direction phi (rad) of the wall."""
    a = np.array(LUNG_BASE_PHI_Z)
    return np.interp(np.degrees(phi), a[:, 0], a[:, 1])


def _diaphragm_z(x: np.ndarray, y: np.ndarray, depth: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Height (z mm) of the upper surface of the diaphragm over (x, y)."""
    dome_r = 86.0 - ((x + 72.0) ** 2 / 240.0 + (y - 5.0) ** 2 / 260.0)
    dome_l = 74.0 - ((x - 78.0) ** 2 / 220.0 + (y - 5.0) ** 2 / 240.0)
    tendon = 60.0 - ((x - 10.0) ** 2 / 500.0 + (y + 10.0) ** 2 / 500.0)
    dome = np.maximum(np.maximum(dome_r, dome_l), tendon)
    # Insertion on the body wall: low (costophrenic recesses) laterally and posteriorly, rising
    # anteriorly to the xiphoid.
    attach = _diaphragm_attach(phi)
    s = np.clip((depth - WALL_MM) / 35.0, 0.0, 1.0)
    w = 1.0 - (1.0 - s) ** 3
    return attach + (dome - attach) * w


def _rib_centre_z(n: int, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rib n: (z of its centre line, bone part, cartilage part) as functions of phi."""
    z_post = -86.0 + (12 - n) * 24.0
    zc = z_post - 40.0 * (1.0 - np.cos(phi)) / 2.0
    deg = np.degrees(phi)
    start = 14.0
    bone_end = {11: 112.0, 12: 92.0}.get(n, 130.0)
    bone = (deg >= start) & (deg <= bone_end)
    cart = np.zeros_like(bone)
    if n <= 10:
        # Costal cartilage: ribs 7 to 10 rise medially and join into the costal margin; the
        # cartilages of ribs 5 and 6 run to the sternum.
        end_deg, end_z = {
            10: (143.0, -50.0),
            9: (151.0, -24.0),
            8: (160.0, 0.0),
            7: (170.0, 22.0),
        }.get(n, (170.0, z_post - 30.0))
        z0 = z_post - 40.0 * (1.0 - np.cos(np.radians(bone_end))) / 2.0
        f = np.clip((deg - bone_end) / (end_deg - bone_end), 0.0, 1.0)
        cart = (deg > bone_end) & (deg <= end_deg)
        zc = np.where(cart, z0 + (end_z - z0) * f, zc)
    return zc, bone, cart


def build_torso_anatomy(spec: TorsoSpec | None = None) -> TorsoAnatomy:
    """Build the torso phantom with its segment map and landmarks (deterministic)."""
    spec = spec or TorsoSpec()
    g = _Grid(spec.spacing_mm, spec.fov_mm)
    shape = g.shape
    x, y = g.x2, g.y2
    z3 = g.z1[:, None, None]
    inside2, depth, phi = _body_2d(g)
    cavity2 = inside2 & (depth >= WALL_MM)
    zd = _diaphragm_z(x, y, depth, phi)
    # Vertical thickness of a 5 mm diaphragm, from the slope of its surface.
    h = 1.0
    gx = (_diaphragm_z(x + h, y, *_body_2d_shift(g, h, 0.0)) - zd) / h
    gy = (_diaphragm_z(x, y + h, *_body_2d_shift(g, 0.0, h)) - zd) / h
    t_v = np.minimum(5.0 * np.sqrt(1.0 + gx**2 + gy**2), 30.0)

    body = np.broadcast_to(inside2, shape).copy()
    cavity = np.broadcast_to(cavity2, shape)
    thorax = cavity & (z3 > zd)
    abdomen = cavity & (z3 <= zd - t_v)
    diaphragm = cavity & ~thorax & ~abdomen

    # ---- body wall ----
    fat = np.broadcast_to(inside2 & (depth >= 2.0) & (depth < 16.0), shape).copy()
    muscle = np.broadcast_to(inside2 & (depth >= 16.0) & (depth < WALL_MM), shape).copy()
    back = np.zeros(shape, bool)
    for sx in (-1.0, 1.0):
        e2 = ((x - sx * 38.0) / 30.0) ** 2 + ((y - 78.0) / 21.0) ** 2 <= 1.0
        back |= np.broadcast_to(e2 & inside2 & (depth >= 8.0), shape)
        psoas_r = np.clip((-40.0 - z3) / 40.0, 0.0, 1.0) * 17.0
        d2 = (x - sx * 36.0) ** 2 + (y - 42.0) ** 2
        back |= d2 <= psoas_r**2
    muscle |= back
    fat &= ~back

    # ---- skeleton ----
    bone = np.zeros(shape, bool)
    marrow = np.zeros(shape, bool)
    cartilage = np.zeros(shape, bool)
    ring = inside2 & (np.abs(depth - 23.0) <= 4.5)
    jj, ii = np.nonzero(ring)
    u = depth[jj, ii]
    ph = phi[jj, ii]
    zk = g.z1[:, None]
    for n in range(4, 13):
        zc, bpart, cpart = _rib_centre_z(n, ph)
        q = ((u - 23.0) / 4.0) ** 2 + ((zk - zc) / 5.5) ** 2
        rib = q <= 1.0
        inner = q <= 0.35
        bone[:, jj, ii] |= rib & bpart
        marrow[:, jj, ii] |= inner & bpart
        cartilage[:, jj, ii] |= rib & cpart
    # Sternum and xiphoid.
    front = y < 0
    stern2 = front & (np.abs(x) <= 14.0) & (depth >= 12.0) & (depth <= 26.0)
    xiph2 = front & (np.abs(x) <= 7.0) & (depth >= 15.0) & (depth <= 23.0)
    bone |= np.broadcast_to(stern2, shape) & (z3 >= 22.0)
    bone |= np.broadcast_to(xiph2, shape) & (z3 >= 2.0) & (z3 < 22.0)
    marrow |= np.broadcast_to(
        stern2 & (np.abs(x) <= 9.0) & (np.abs(depth - 19.0) <= 4.0), shape
    ) & (z3 >= 24.0)
    # Spine: vertebral bodies, pedicles, laminae around the canal, spinous and transverse
    # processes; discs every 32 mm (kept in `bone`: needles do not pass them either).
    vb = (x**2 + (y - 52.0) ** 2) <= 19.0**2
    canal = (x**2 + (y - 80.0) ** 2) <= 8.5**2
    arch = ((x**2 + (y - 80.0) ** 2) <= 14.0**2) & (y >= 70.0)
    pedicle = (np.abs(x) >= 7.0) & (np.abs(x) <= 14.0) & (y >= 62.0) & (y <= 80.0)
    spinous = (np.abs(x) <= 4.0) & (y >= 80.0) & (depth >= 10.0)
    transverse = (np.abs(x) >= 10.0) & (np.abs(x) <= 38.0) & (np.abs(y - 76.0) <= 4.0)
    verts2 = (vb | arch | pedicle | spinous | transverse) & ~canal
    disc = ((g.z1 + 200.0) % 32.0 < 6.0)[:, None, None]
    bone |= np.broadcast_to(verts2, shape)
    marrow |= np.broadcast_to(vb & ((x**2 + (y - 52.0) ** 2) <= 15.0**2), shape) & ~disc
    muscle &= ~bone & ~cartilage
    fat &= ~bone & ~cartilage

    # ---- vessels outside the liver ----
    aorta = np.broadcast_to(
        ((x - AORTA_XY[0]) ** 2 + (y - AORTA_XY[1]) ** 2) <= AORTA_R**2, shape
    ).copy()
    aorta &= z3 < 100.0
    ivc = np.broadcast_to(((x - IVC_XY[0]) ** 2 + (y - IVC_XY[1]) ** 2) <= IVC_R**2, shape) & (
        z3 <= 60.0
    )
    ivc = ivc | _capsule(g, (IVC_XY[0], IVC_XY[1], 60.0), (-14.0, -8.0, 100.0), IVC_R)

    # ---- chest ----
    heart_c, heart_s = (28.0, -30.0, 118.0), (62.0, 50.0, 58.0)
    heart_ell = _ellipsoid(g, heart_c, heart_s)
    peri_ell = _ellipsoid(g, heart_c, tuple(s + 3.0 for s in heart_s))  # type: ignore[arg-type]
    heart = heart_ell & thorax & (z3 > zd + 3.0)
    pericardium = peri_ell & thorax & ~heart
    mediastinum = thorax & np.broadcast_to(
        ((x - 6.0) / 30.0) ** 2 + ((y - 12.0) / 64.0) ** 2 <= 1.0, shape
    )
    attach = _diaphragm_attach(phi)
    lung = (
        thorax
        & ~_ellipsoid(g, heart_c, tuple(s + 6.0 for s in heart_s))  # type: ignore[arg-type]
        & ~mediastinum
        & (z3 > zd + 3.0)
        & (z3 > np.maximum(attach + 18.0, _lung_base(phi)))
    )
    lung &= ~aorta & ~bone
    pleura = thorax & ~lung & ~heart & ~pericardium & ~mediastinum & ~aorta

    # ---- abdominal organs ----
    kidney = _ellipsoid(g, (-70.0, 60.0, -78.0), (32.0, 25.0, 54.0), axis=(0.25, -0.1, 1.0))
    kidney |= _ellipsoid(g, (70.0, 60.0, -66.0), (32.0, 25.0, 54.0), axis=(-0.25, -0.1, 1.0))
    kidney &= abdomen
    kidney_zone = _ellipsoid(g, (-70.0, 60.0, -78.0), (37.0, 30.0, 59.0), axis=(0.25, -0.1, 1.0))

    # Liver: a right lobe under the right dome and a left lobe tapering across the midline.
    right = _ellipsoid(g, (-68.0, 2.0, 2.0), (82.0, 86.0, 100.0))
    left = np.zeros(shape, bool)
    # The left lobe reaches below the xiphoid into the epigastrium (its anterior border runs
    # from the right 9th to the left 8th costal cartilage, below the xiphisternal joint), where
    # segments III and IVb are reached by a subxiphoid approach without crossing the pleura.
    sl = g.box(np.array([-60.0, -90.0, -30.0]), np.array([120.0, 10.0, 80.0]))
    lx, ly, lz = g.coords(sl)
    taper = np.clip(1.0 - np.maximum(lx, 0.0) / 140.0, 0.3, 1.0)
    left[sl] = ((lx - 28.0) / 88.0) ** 2 + ((ly + 40.0) / 46.0) ** 2 + (
        (lz - 30.0) / (44.0 * taper)
    ) ** 2 <= 1.0
    # Inferior surface: rising to the left and towards the sharp anterior border.
    z_inf = (
        -84.0
        + 0.33 * (x + 130.0)
        + 0.3 * np.maximum(-y - 30.0, 0.0)
        + 0.004 * (x + 80.0) ** 2
        - 25.0 * np.clip((x + 20.0) / 40.0, 0.0, 1.0)
    )
    liver = (right | left) & abdomen & (z3 > z_inf)
    liver &= ~kidney_zone
    groove = ((x - IVC_XY[0]) ** 2 + (y - IVC_XY[1]) ** 2 <= (IVC_R + 1.0) ** 2) | (
        (np.abs(x - IVC_XY[0]) <= IVC_R + 1.0) & (y > IVC_XY[1])
    )
    liver &= ~np.broadcast_to(groove, shape)  # the IVC lies in a groove on the back of the liver
    liver &= ~np.broadcast_to(((x - AORTA_XY[0]) ** 2 + (y - AORTA_XY[1]) ** 2) <= 20.0**2, shape)
    liver &= ~np.broadcast_to((x**2 + (y - 52.0) ** 2) <= 26.0**2, shape)
    liver &= ~np.broadcast_to(((x - 40.0) / 40.0) ** 2 + ((y - 40.0) / 36.0) ** 2 <= 1.0, shape)
    liver &= ~muscle & ~bone

    # Organs that yield to the liver.
    spleen = _ellipsoid(g, (92.0, 42.0, -2.0), (34.0, 50.0, 62.0), axis=(0.3, 0.4, 1.0))
    spleen &= abdomen & ~liver & ~_ellipsoid(g, (70.0, 60.0, -66.0), (34.0, 27.0, 56.0))
    stomach = _ellipsoid(g, (58.0, -12.0, 0.0), (46.0, 36.0, 56.0), axis=(0.4, -0.2, 1.0))
    stomach |= _capsule(g, (40.0, -35.0, -38.0), (0.0, -42.0, -48.0), 19.0, 14.0)
    stomach &= abdomen & ~liver & ~spleen
    stomach_lumen = _ellipsoid(g, (58.0, -12.0, 0.0), (40.0, 30.0, 50.0), axis=(0.4, -0.2, 1.0))
    duodenum = _tree(
        g,
        [
            ((0.0, -42.0, -48.0), (-32.0, -28.0, -52.0), 13.0, 13.0),
            ((-32.0, -28.0, -52.0), (-48.0, -6.0, -62.0), 13.0, 13.0),
            ((-48.0, -6.0, -62.0), (-46.0, 2.0, -104.0), 13.0, 12.0),
            ((-46.0, 2.0, -104.0), (15.0, 12.0, -108.0), 12.0, 11.0),
        ],
    )
    duodenum &= abdomen & ~liver & ~stomach
    pancreas = _tree(
        g,
        [
            ((-26.0, 6.0, -80.0), (-12.0, 10.0, -62.0), 18.0, 15.0),
            ((-12.0, 10.0, -62.0), (40.0, 22.0, -50.0), 14.0, 12.0),
            ((40.0, 22.0, -50.0), (82.0, 38.0, -34.0), 12.0, 9.0),
        ],
    )
    pancreas &= abdomen & ~liver & ~stomach & ~duodenum & ~spleen
    colon = _tree(
        g,
        [
            ((-108.0, 0.0, -130.0), (-104.0, -10.0, -92.0), 22.0, 22.0),
            ((-104.0, -10.0, -92.0), (-72.0, -62.0, -96.0), 21.0, 20.0),
            ((-72.0, -62.0, -96.0), (60.0, -66.0, -88.0), 20.0, 20.0),
            ((60.0, -66.0, -88.0), (98.0, -20.0, -52.0), 18.0, 17.0),
            ((98.0, -20.0, -52.0), (108.0, 10.0, -130.0), 16.0, 16.0),
        ],
    )
    colon &= abdomen & ~liver & ~stomach & ~duodenum & ~kidney & ~spleen & ~pancreas

    # ---- intrahepatic vessels, ducts, gallbladder ----
    B = PORTAL_BIFURCATION
    rp, lp = (-62.0, -2.0, 2.0), (2.0, -24.0, 6.0)
    ra, rpo = (-78.0, -38.0, 4.0), (-100.0, 18.0, -2.0)
    umb = (24.0, -46.0, 14.0)
    portal_branches: list[tuple[Vec3, Vec3, float, float]] = [
        ((0.0, 18.0, -70.0), B, 7.5, 7.0),  # main portal vein from behind the pancreas neck
        (B, rp, 6.0, 5.5),
        (rp, ra, 4.5, 4.0),  # right anterior: V and VIII
        (ra, (-84.0, -46.0, 48.0), 3.5, 2.0),
        (ra, (-78.0, -52.0, -40.0), 3.5, 2.0),
        (rp, rpo, 4.5, 4.0),  # right posterior: VI and VII
        (rpo, (-112.0, 28.0, 42.0), 3.5, 2.0),
        (rpo, (-108.0, 18.0, -46.0), 3.5, 2.0),
        (B, lp, 5.5, 5.0),  # left portal vein, transverse then umbilical portion
        (lp, umb, 5.0, 4.5),
        (umb, (62.0, -36.0, 40.0), 3.5, 2.0),  # II
        (umb, (60.0, -62.0, 16.0), 3.5, 2.0),  # III
        (umb, (2.0, -58.0, 34.0), 3.0, 2.0),  # IVa
        (umb, (-2.0, -62.0, -10.0), 3.0, 2.0),  # IVb
    ]
    portal = _tree(g, portal_branches)
    hepatic_v = _tree(
        g,
        [
            ((-30.0, 18.0, 56.0), (-92.0, -2.0, 26.0), 6.5, 4.0),  # right hepatic vein
            ((-92.0, -2.0, 26.0), (-122.0, -12.0, -24.0), 4.0, 2.0),
            ((-22.0, 10.0, 58.0), (-44.0, -30.0, 24.0), 5.5, 3.5),  # middle
            ((-44.0, -30.0, 24.0), (-52.0, -62.0, -24.0), 3.5, 2.0),
            ((-14.0, 10.0, 60.0), (22.0, -26.0, 48.0), 5.0, 3.0),  # left
            ((22.0, -26.0, 48.0), (64.0, -42.0, 40.0), 3.0, 2.0),
        ],
    )
    hep_art = _tree(
        g,
        [
            ((24.0, 20.0, -48.0), (0.0, -6.0, -42.0), 3.5, 3.0),  # coeliac to common HA
            ((0.0, -6.0, -42.0), (-20.0, -16.0, -12.0), 3.0, 2.5),  # proper HA
            ((-20.0, -16.0, -12.0), (-60.0, -12.0, 8.0), 2.5, 1.5),
            ((-20.0, -16.0, -12.0), (16.0, -30.0, 10.0), 2.5, 1.5),
        ],
    )
    duct = _tree(
        g,
        [
            ((-42.0, -10.0, -78.0), (-34.0, -18.0, -10.0), 3.5, 3.0),  # common bile duct
            ((-34.0, -18.0, -10.0), (-62.0, -12.0, 10.0), 2.5, 2.0),  # right hepatic duct
            ((-62.0, -12.0, 10.0), (-80.0, -44.0, 12.0), 2.0, 1.2),
            ((-62.0, -12.0, 10.0), (-100.0, 10.0, 6.0), 2.0, 1.2),
            ((-34.0, -18.0, -10.0), (4.0, -32.0, 12.0), 2.5, 2.0),  # left hepatic duct
            ((4.0, -32.0, 12.0), (30.0, -52.0, 20.0), 2.0, 1.2),
            ((-36.0, -18.0, -32.0), (-44.0, -40.0, -36.0), 2.0, 2.0),  # cystic duct
        ],
    )
    gb_c: Vec3 = (-44.0, -56.0, -50.0)
    gallbladder = _ellipsoid(g, gb_c, (14.0, 13.0, 32.0), axis=(0.1, -0.55, -0.8)) & abdomen

    liver_shape = liver | _ellipsoid(g, (-60.0, -10.0, 10.0), (60.0, 60.0, 70.0)) & liver
    in_liver = liver_shape
    portal_main = _capsule(g, (0.0, 18.0, -70.0), B, 7.5, 7.0)
    portal &= in_liver | portal_main
    hepatic_v &= in_liver | _capsule(g, (IVC_XY[0], IVC_XY[1], 40.0), (-14.0, 12.0, 64.0), 22.0)
    hep_art &= in_liver | _capsule(g, (24.0, 20.0, -48.0), (-20.0, -16.0, -12.0), 4.0)
    hep_art &= ~aorta
    duct &= (
        in_liver
        | _capsule(g, (-42.0, -10.0, -78.0), (-34.0, -18.0, -10.0), 4.0)
        | (_capsule(g, (-36.0, -18.0, -32.0), (-44.0, -40.0, -36.0), 2.5))
    )

    # ---- paint (later wins) ----
    order: list[tuple[str, np.ndarray]] = [
        ("fat", fat),
        ("muscle", muscle),
        ("diaphragm", diaphragm),
        ("pleura", pleura),
        ("lung", lung),
        ("pericardium", pericardium),
        ("heart", heart),
        ("spleen", spleen),
        ("kidney", kidney),
        ("pancreas", pancreas),
        ("stomach", stomach),
        ("duodenum", duodenum),
        ("colon", colon),
        ("liver", liver),
        ("gallbladder", gallbladder),
        ("bone", bone),
        ("cartilage", cartilage),
        ("aorta", aorta),
        ("ivc", ivc),
    ]
    names = [n for n, _ in order]
    lab = np.zeros(shape, np.uint8)
    for idx, (_, m) in enumerate(order, start=1):
        lab[m & body] = idx
    lab[~body] = 0

    # Segments before the tumours (a tumour takes the segment of the liver it replaces).
    segments = _couinaud(g, lab == names.index("liver") + 1)

    # Tumours, then the thin vessels and ducts over everything.
    structures_pre = {n: lab == i for i, n in enumerate(names, start=1)}
    tumour_masks: dict[str, np.ndarray] = {}
    centres: dict[str, np.ndarray] = {}
    for t in spec.tumours:
        c = _tumour_centre(g, t, structures_pre, segments, portal | hepatic_v | hep_art | duct)
        centres[t.id] = c
        tumour_masks[f"tumour:{t.id}"] = _ellipsoid(g, vec3(c), (t.diameter_mm / 2,) * 3) & body
    tid0 = len(names) + 1
    hard = [names.index(k) + 1 for k in ("bone", "cartilage", "aorta", "ivc")]
    for n_t, m in enumerate(tumour_masks.values()):
        # Tumours replace liver and soft tissue but not bone, ribs, vessels outside the liver.
        lab[m & ~np.isin(lab, hard)] = tid0 + n_t
    names_t = names + list(tumour_masks)
    for vname, m in (
        ("portal_vein", portal),
        ("hepatic_vein", hepatic_v),
        ("hepatic_artery", hep_art),
        ("bile_duct", duct),
    ):
        names_t.append(vname)
        lab[m & body & ~np.isin(lab, [names.index(k) + 1 for k in ("bone", "aorta", "ivc")])] = len(
            names_t
        )

    structures: dict[str, np.ndarray] = {"body": body}
    for i, key in enumerate(names_t, start=1):
        structures[key] = lab == i
    normalise_containment(structures)
    liver_final = structures["liver"]
    segments = np.where(liver_final, segments, 0).astype(np.uint8)
    # Vessels inside the liver take the segment of the nearest liver voxel: keep the map
    # defined on the whole liver (including tumours and vessels).
    segments = _fill_segments(g, segments, liver_final)

    ct = None
    if spec.with_ct:
        ct = _ct_image(g, lab, names_t, spec, marrow, stomach_lumen, colon, body, inside2, depth)
    grid_vol = g.volume(ct if ct is not None else np.zeros(shape, np.int16))
    # Order keys as the loader would (body, organs, tumours, vessels) and drop empty ones.
    case = Case(
        case_id=spec.case_id,
        grid=grid_vol,
        structures={k: v for k, v in structures.items() if v.any() or k.startswith("tumour:")},
        target_id=spec.target,
        margin_mm=spec.margin_mm,
        ct=grid_vol if ct is not None else None,
    )
    landmarks = {
        "portal_bifurcation": np.asarray(B, float),
        "ivc_axis_xy": np.asarray(IVC_XY, float),
        "gallbladder_centre": np.asarray(gb_c, float),
        "heart_centre": np.asarray(heart_c, float),
    }
    return TorsoAnatomy(case, g.volume(segments), landmarks, centres)


def _body_2d_shift(g: _Grid, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    x, y = g.x2 + dx, g.y2 + dy
    b = np.where(y > 0, BODY_B_POST, BODY_B_ANT)
    rho = np.sqrt((x / BODY_A) ** 2 + (y / b) ** 2)
    grad = np.sqrt((x / BODY_A**2) ** 2 + (y / b**2) ** 2) / np.maximum(rho, 1e-9)
    return (1.0 - rho) / np.maximum(grad, 1e-12), np.arctan2(np.abs(x), y)


def _couinaud(g: _Grid, liver: np.ndarray) -> np.ndarray:
    """Couinaud segments from vertical planes through the IVC (right, middle and left hepatic
    veins / umbilical fissure) and the portal planes; segment I around the IVC and hilum."""
    x, y = g.x2, g.y2
    z = g.z1[:, None, None]
    cx, cy = IVC_XY

    def side(px: float, py: float) -> np.ndarray:
        # > 0 to the patient's right of the line from the IVC towards (px, py) seen from above
        return (px - cx) * (y - cy) - (py - cy) * (x - cx)

    cantlie = side(-44.0, -58.0)  # IVC to gallbladder fossa (middle hepatic vein)
    rhv = side(-130.0, -40.0)  # right hepatic vein
    umb = side(14.0, -90.0)  # falciform ligament / umbilical fissure
    right_liver = cantlie < 0
    posterior = right_liver & (rhv < 0)
    anterior = right_liver & ~posterior
    left_lateral = umb > 0
    iv = ~right_liver & ~left_lateral
    sup_r = z > -4.0
    sup_l = z > 34.0 - 0.45 * (y + 40.0)
    seg = np.zeros(g.shape, np.uint8)
    seg[np.broadcast_to(posterior, g.shape) & sup_r] = 7
    seg[np.broadcast_to(posterior, g.shape) & ~sup_r] = 6
    seg[np.broadcast_to(anterior, g.shape) & sup_r] = 8
    seg[np.broadcast_to(anterior, g.shape) & ~sup_r] = 5
    seg[np.broadcast_to(left_lateral, g.shape) & sup_l] = 2
    seg[np.broadcast_to(left_lateral, g.shape) & ~sup_l] = 3
    seg[np.broadcast_to(iv, g.shape)] = 4
    caudate = ((x + 8.0) / 22.0) ** 2 + ((y - 8.0) / 14.0) ** 2 <= 1.0
    seg[np.broadcast_to(caudate, g.shape) & (z > -24.0) & (z < 44.0)] = 1
    seg[~liver] = 0
    return seg


def _fill_segments(g: _Grid, seg: np.ndarray, liver: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    missing = liver & (seg == 0)
    if not missing.any():
        return seg
    _, idx = ndimage.distance_transform_edt(
        seg == 0, sampling=tuple(g.spacing[::-1]), return_indices=True
    )
    filled = seg[tuple(idx)]
    out = seg.copy()
    out[missing] = filled[missing]
    return out


def _column_extent(
    g: _Grid, mask: np.ndarray, xy: tuple[float, float]
) -> tuple[float, float] | None:
    i = int(np.argmin(np.abs(g.x1 - xy[0])))
    j = int(np.argmin(np.abs(g.y1 - xy[1])))
    ks = np.flatnonzero(mask[:, j, i])
    if ks.size == 0:
        return None
    return float(g.z1[ks.min()]), float(g.z1[ks.max()])


def _tumour_centre(
    g: _Grid,
    t: TorsoTumour,
    s: dict[str, np.ndarray],
    seg: np.ndarray,
    vessels: np.ndarray,
) -> np.ndarray:
    if t.centre_lps_mm is not None:
        return np.asarray(t.centre_lps_mm, float)
    r = t.diameter_mm / 2.0
    liver = s["liver"]
    p = t.position

    def column(xy: tuple[float, float], top: bool, offset: float) -> np.ndarray:
        ext = _column_extent(g, liver, xy)
        if ext is None:
            raise ValueError(f"tumour position '{p}': no liver at {xy}")
        z = ext[1] - offset if top else ext[0] + offset
        return np.array([xy[0], xy[1], z])

    if p.startswith("segment:"):
        from scipy import ndimage

        num = SEGMENTS.index(p.split(":", 1)[1]) + 1
        # The point of the segment farthest from its boundary and from the vessels and ducts
        # (a tumour "in segment N" without a vessel named sits in the parenchyma, not astride
        # the segment's feeding portal branch).
        d = ndimage.distance_transform_edt((seg == num) & ~vessels, sampling=tuple(g.spacing[::-1]))
        k, j, i = np.unravel_index(int(np.argmax(d)), d.shape)
        return np.array([g.x1[i], g.y1[j], g.z1[k]])
    if p == "dome":
        return column((-66.0, -14.0), top=True, offset=r + 1.5)
    if p == "posterior":
        ip = int(np.argmin(np.abs(g.x1 + 92.0)))
        kp = int(np.argmin(np.abs(g.z1 - 24.0)))
        js = np.flatnonzero(liver[kp, :, ip])
        if js.size == 0:
            raise ValueError("tumour position 'posterior': no liver")
        return np.array([g.x1[ip], g.y1[js.max()] - r - 6.0, g.z1[kp]])
    if p == "caudate":
        return np.array([-8.0, 8.0, 14.0])
    if p == "subcapsular":
        return column((-104.0, -10.0), top=False, offset=0.6 * r)
    if p == "exophytic":
        return column((-104.0, -10.0), top=False, offset=-0.3 * r)
    if p == "perihilar":
        bif = np.asarray(PORTAL_BIFURCATION)
        return bif + _unit(np.array([0.4, -0.6, 0.7])) * (r + 6.0)
    if p == "gallbladder":
        gb = np.array([-44.0, -56.0, -50.0]) + np.array([0.0, -0.55, -0.8]) * -12.0
        return gb + _unit(np.array([-1.0, 0.0, 0.15])) * (r + 14.5)
    if p == "heart":
        return column((22.0, -44.0), top=True, offset=r + 1.5)
    if p == "ivc":
        return np.array([IVC_XY[0] - IVC_R - r, IVC_XY[1] - 2.0, 22.0])
    raise AssertionError(p)


def _ct_image(
    g: _Grid,
    lab: np.ndarray,
    names: list[str],
    spec: TorsoSpec,
    marrow: np.ndarray,
    stomach_lumen: np.ndarray,
    colon: np.ndarray,
    body: np.ndarray,
    inside2: np.ndarray,
    depth: np.ndarray,
) -> np.ndarray:
    kinds = {f"tumour:{t.id}": t.kind for t in spec.tumours}
    lut = np.zeros(len(names) + 1, np.float32)
    lut[0] = TORSO_HU["soft"]
    for i, n in enumerate(names, start=1):
        lut[i] = TORSO_HU[kinds[n]] if n in kinds else TORSO_HU[n]
    ct = lut[lab]
    # Mediastinal and retroperitoneal fat where no organ was painted inside the body wall.
    ct[(lab == 0) & body] = TORSO_HU["mediastinum"]
    ct[np.broadcast_to(inside2 & (depth < 2.0), g.shape)] = TORSO_HU["skin"]
    bone_id = names.index("bone") + 1
    ct[(lab == bone_id) & marrow] = TORSO_HU["marrow"]
    st = lab == names.index("stomach") + 1
    z = g.z1[:, None, None]
    ct[st & stomach_lumen & (z > 28.0)] = TORSO_HU["gas"]
    ct[st & stomach_lumen & (z <= 28.0)] = TORSO_HU["fluid"]
    co = lab == names.index("colon") + 1
    # Gas in the core of the colon: voxels at least 7 mm inside its wall.
    from scipy import ndimage

    inner = ndimage.binary_erosion(co, iterations=max(1, int(round(7.0 / g.spacing.min()))))
    ct[inner] = TORSO_HU["gas"]
    ct[~body] = TORSO_HU["air"]
    if spec.noise_hu > 0:
        rng = np.random.default_rng(spec.seed)
        ct += rng.normal(0.0, spec.noise_hu, size=ct.shape).astype(np.float32)
    return np.clip(np.rint(ct), -1024, 3071).astype(np.int16)


def build_torso(spec: TorsoSpec | None = None) -> Case:
    """Build the torso phantom described by `spec` as an in-memory `Case` (deterministic)."""
    return build_torso_anatomy(spec).case
