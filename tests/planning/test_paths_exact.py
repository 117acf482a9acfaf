"""Needle path checks in exact millimetres (issue 12): clearance to the voxel boxes on
anisotropic grids, skin entries never on the grid face, and the liver tract before a tumour."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.case.model import Case
from hepablate.core.volume import Volume
from hepablate.evaluation.defaults import load_planning_defaults
from hepablate.phantoms import PhantomSpec, TumourSpec, build_phantom, build_torso, torso_spec
from hepablate.placement import (
    ENTRY_OUTSIDE_IMAGE,
    PathMap,
    check_liver_tract,
    liver_path_before_target_mm,
)
from hepablate.placement.paths import needle_clearances


def _grid(spacing, fov=(120.0, 120.0, 60.0)):
    n = [int(round(f / s)) | 1 for f, s in zip(fov, spacing, strict=True)]
    origin = [-(k - 1) * s / 2 for k, s in zip(n, spacing, strict=True)]
    return Volume(np.zeros(n[::-1], np.int16), spacing, origin)


def _coords(g):
    nk, nj, ni = g.array.shape
    x = (g.origin_lps_mm[0] + g.spacing_mm[0] * np.arange(ni))[None, None, :]
    y = (g.origin_lps_mm[1] + g.spacing_mm[1] * np.arange(nj))[None, :, None]
    z = (g.origin_lps_mm[2] + g.spacing_mm[2] * np.arange(nk))[:, None, None]
    return x, y, z


def _vessel_case(spacing, radius, axis="x", shift=(0.0, 0.0)):
    """A body cylinder (axis z, radius 55 mm, cut by the top and bottom of the grid) holding a
    vessel of `radius` along `axis` through (0, shift)."""
    g = _grid(spacing)
    x, y, z = _coords(g)
    shape = g.array.shape
    body = np.broadcast_to(x**2 + y**2 <= 55.0**2, shape).copy()
    if axis == "x":
        vessel = np.broadcast_to((y - shift[0]) ** 2 + (z - shift[1]) ** 2 <= radius**2, shape)
    else:
        vessel = np.broadcast_to((x - shift[0]) ** 2 + (y - shift[1]) ** 2 <= radius**2, shape)
    vessel = vessel & body
    tumour = np.broadcast_to((x - 30) ** 2 + (y - 30) ** 2 + z**2 <= 5.0**2, shape).copy()
    s = {"body": body, "liver": body.copy(), "portal_vein": vessel.copy(), "tumour:T1": tumour}
    return Case("vessel", g, s, "T1", 5.0)


def _brute_box_distance(pm: PathMap, pts: np.ndarray) -> np.ndarray:
    g = pm.grid
    idx = np.argwhere(pm._nogo)[:, ::-1].astype(float)
    sp = np.asarray(g.spacing_mm)
    centres = g.index_to_lps(idx)
    rel = np.abs(pts[:, None, :] - centres[None, :, :]) - sp / 2
    return np.sqrt((np.maximum(rel, 0) ** 2).sum(-1)).min(axis=1)


@pytest.mark.parametrize("axis, normal_spacing", [("x", 2.5), ("z", 0.7)])
def test_clearance_from_an_analytic_cylinder_on_a_clinical_grid(axis, normal_spacing):
    """A vessel of radius 4 mm on a 0.7 x 0.7 x 2.5 mm grid; a needle along y passes it at a
    known distance. The clearance is within half a voxel (along the normal) of the analytic
    surface distance, for every sub-voxel offset."""
    spacing = (0.7, 0.7, 2.5)
    r = 4.0
    errs = []
    for phase in np.linspace(0.0, normal_spacing, 11):
        off = 7.0 + phase  # needle axis 3 mm from the vessel wall, at every sub-voxel phase
        if axis == "x":  # vessel along x; needle along y at height z: the normal is z
            case = _vessel_case(spacing, r, "x", shift=(0.0, phase))
            tip, d = np.array([0.0, 20.0, off]), np.array([0.0, 1.0, 0.0])
        else:  # vessel along z; needle along y at x: the normal is x (in plane)
            case = _vessel_case(spacing, r, "z", shift=(phase, 0.0))
            tip, d = np.array([off, 20.0, 0.0]), np.array([0.0, 1.0, 0.0])
        pm = PathMap(case, 3.0)
        chk = pm.check_path(tip, d)
        assert chk.entry_lps_mm is not None
        true = off - phase - r
        errs.append(chk.clearance_mm - true)
        assert abs(chk.clearance_mm - true) <= normal_spacing / 2 + 1e-6, (phase, chk.clearance_mm)
        assert pm.voxel_bound_mm == pytest.approx(1.25)
        assert chk.ok == (chk.clearance_mm >= 3.0)
    # Unbiased: the voxel boxes straddle the true surface.
    assert min(errs) < 0 < max(errs)
    assert np.ptp(errs) <= normal_spacing + 1e-6


def test_exact_distance_matches_brute_force_on_anisotropic_grid():
    case = _vessel_case((0.8, 0.9, 1.6), 3.0, "x", shift=(3.3, -1.1))
    case.structures["portal_vein"] |= _vessel_case(
        (0.8, 0.9, 1.6), 2.0, "z", (-7.4, 4.4)
    ).structures["portal_vein"]
    pm = PathMap(case, 3.0)
    rng = np.random.default_rng(1)
    pts = rng.uniform([-25, -25, -12], [25, 25, 12], size=(300, 3))
    exact, _ = pm.exact_nogo_distance(pts)
    np.testing.assert_allclose(exact, _brute_box_distance(pm, pts), atol=1e-9)
    # And the path minimum equals the brute-force minimum along random paths.
    for _ in range(20):
        tip = rng.uniform([-10, -10, -8], [10, 10, 8])
        d = rng.normal(size=3)
        d[2] *= 0.3
        d /= np.linalg.norm(d)
        chk = pm.check_path(tip, d)
        if chk.entry_lps_mm is None:
            continue
        t = np.arange(0.0, chk.depth_mm + 1e-9, 0.5)
        pts = chk.entry_lps_mm[None] + t[:, None] * d[None]
        assert chk.clearance_mm == pytest.approx(_brute_box_distance(pm, pts).min(), abs=1e-9)


def test_the_issue_case_on_1_6_mm_slices_is_now_caught():
    """A needle 2.7 mm above a portal vein branch (from its voxel boxes) on 1.6 mm slices: the
    old check rounded samples to a voxel 3.2 mm above the top voxel centre and passed it."""
    case = _vessel_case((0.8, 0.8, 1.6), 3.0, "x")
    pm = PathMap(case, 3.0)
    v = case.structures["portal_vein"]
    ks = np.flatnonzero(v.any(axis=(1, 2)))
    z_top = case.grid.origin_lps_mm[2] + ks.max() * 1.6  # top voxel centre
    tip = np.array([0.0, 20.0, z_top + 0.8 + 2.7])
    d = np.array([0.0, 1.0, 0.0])
    chk = pm.check_path(tip, d)
    assert chk.clearance_mm == pytest.approx(2.7, abs=1e-6)
    assert not chk.ok and chk.blocking == "portal_vein"
    # The old method: nearest-voxel samples of the centre-to-centre distance map.
    t = np.arange(0.0, chk.depth_mm + 1e-9, 0.5)
    old, _ = pm.nogo_distance(chk.entry_lps_mm[None] + t[:, None] * d[None])
    assert old.min() >= 3.0
    worst, warns = needle_clearances(case, [("P1", tip, d)], 3.0, pm)
    assert worst == pytest.approx(2.7, abs=1e-6)
    assert warns and warns[0].code == "needle_path_unsafe" and "portal_vein" in warns[0].message


def test_no_skin_entry_on_the_grid_face():
    case = _vessel_case((1.0, 1.0, 2.0), 3.0, "x")  # the body is cut by the top and bottom
    pm = PathMap(case, 3.0)
    tip = np.array([20.0, -20.0, 0.0])
    up = np.array([0.0, 0.0, -1.0])  # advancing inferior: the line leaves through the top face
    assert pm.skin_entry(tip, up) is None
    chk = pm.check_path(tip, up)
    assert not chk.ok and chk.entry_lps_mm is None and chk.blocking == ENTRY_OUTSIDE_IMAGE
    _, warns = needle_clearances(case, [("F1", tip, up)], 3.0, pm)
    assert warns[0].code == "needle_path_unchecked" and "grid face" in warns[0].message
    # A lateral path finds the real skin, inside the image.
    lat = np.array([1.0, 0.0, 0.0])
    entry = pm.skin_entry(tip, lat)
    assert entry is not None and abs(np.hypot(entry[0], entry[1]) - 55.0) < 1.0
    # Oblique: 45 deg steep, it reaches the face before the skin.
    steep = np.array([0.3, 0.0, -1.0]) / np.linalg.norm([0.3, 0.0, -1.0])
    assert pm.check_path(tip, steep).blocking == ENTRY_OUTSIDE_IMAGE


def test_torso_entries_are_never_on_the_top_face():
    case = build_torso(torso_spec("dome", spacing_mm=3.0))
    pm = PathMap(case, 3.0)
    tip = case.grid.with_array(case.target_mask).centroid_lps_mm()
    zmax = case.grid.origin_lps_mm[2] + (case.grid.array.shape[0] - 1) * case.grid.spacing_mm[2]
    for d in ([0, 0, -1.0], [0.2, 0.3, -1.0], [0.5, -0.2, -1.0]):
        d = np.asarray(d) / np.linalg.norm(d)
        e = pm.skin_entry(tip, d)
        assert e is None or e[2] < zmax - 3.0


def test_liver_path_before_target_analytic():
    spec = PhantomSpec(
        spacing_mm=(1.0, 1.0, 1.0),
        tumours=[TumourSpec(id="T1", centre_lps_mm=(-45.0, 0.0, 0.0), diameter_mm=25.0)],
        gallbladder_centre_lps_mm=None,
    )
    case = build_phantom(spec)
    # Entering from anterior (advancing posterior, +y): liver from y = -55 to the tumour at
    # y = -12.5: 42.5 mm.
    length = liver_path_before_target_mm(case, np.array([-45.0, 0.0, 0.0]), np.array([0, 1.0, 0]))
    assert length == pytest.approx(42.5, abs=1.0)
    assert load_planning_defaults().laser_min_liver_path_mm.value == 10.0
    ok = check_liver_tract(case, np.array([-45.0, 0.0, 0.0]), np.array([0, 1.0, 0]))
    assert ok.ok and ok.required_mm == 10.0


def test_liver_tract_of_an_exophytic_tumour():
    case = build_torso(torso_spec("exophytic", diameter_mm=24.0, spacing_mm=2.0))
    c = case.grid.with_array(case.target_mask).centroid_lps_mm()
    # From below (advancing superior): straight into the free part of the tumour, no liver.
    below = check_liver_tract(case, c, np.array([0.0, 0.0, 1.0]))
    assert below.liver_mm == 0.0 and not below.ok and "10 mm required" in below.message
    # From above (advancing inferior, through the liver): a long tract.
    above = liver_path_before_target_mm(case, c, np.array([0.0, 0.0, -1.0]))
    assert above > 30.0
    assert check_liver_tract(case, c, np.array([0.0, 0.0, -1.0]), min_liver_mm=5.0).ok


def test_clear_cross_section_measures_the_room_for_parallel_needles():
    """A 20 mm square target under a slab of bone that shadows the half x < 0 of it (needles
    along -y -> +y, i.e. from anterior): about half of its cross-section is clear, all of it
    without the slab, none when the slab covers it."""
    from hepablate.placement.paths import clear_cross_section

    g = _grid((1.0, 1.0, 1.0))
    x, y, z = _coords(g)
    shape = g.array.shape
    body = np.broadcast_to(x**2 + y**2 <= 55.0**2, shape).copy()
    target = (np.abs(x) <= 10) & (np.abs(y - 10) <= 10) & (np.abs(z) <= 10)
    target = np.broadcast_to(target, shape).copy()
    idx = np.argwhere(target)
    pts = g.index_to_lps(idx[:, ::-1].astype(float))
    d = np.array([0.0, 1.0, 0.0])

    def frac(slab_x_max: float | None) -> float:
        s = {"body": body, "liver": body.copy(), "tumour:T1": target}
        if slab_x_max is not None:
            slab = (x <= slab_x_max) & (np.abs(y + 35) <= 3) & (np.abs(z) <= 30)
            s["bone"] = np.broadcast_to(slab, shape) & body
        pm = PathMap(Case("slab", g, s, "T1", 0.0), 3.0, {"bone": 1.5})
        return clear_cross_section(pm, pts, d)

    assert frac(None) == 1.0
    half = frac(0.0)
    # The paths at x <= 0 pass the slab; those within 1.5 mm + half a voxel of its edge too.
    assert 0.35 <= half <= 0.5, half
    assert frac(30.0) == 0.0
