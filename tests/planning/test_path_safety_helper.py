"""The independent path check of tests/planning/path_safety.py, against hand-made boxes, dense
sampling, an analytic voxelised cylinder on an anisotropic grid, and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.case.model import Case
from hepablate.core.volume import Volume

from .path_safety import (
    check_path,
    mask_segment_distance,
    segment_box_distance,
    skin_entry,
)

UNIT_LO = np.zeros((1, 3))
UNIT_HI = np.ones((1, 3))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((2, 0.5, 0.5), (3, 0.5, 0.5), 1.0),  # face, along the normal
        ((2, 2, -5), (2, 2, 5), np.sqrt(2.0)),  # edge x=1, y=1, segment parallel to it
        ((3, 3, 3), (4, 5, 6), np.sqrt(12.0)),  # corner (1, 1, 1) from the nearer end
        ((-1, 0.5, 0.5), (2, 0.5, 0.5), 0.0),  # through the box
        ((1.5, 1.5, 1.5), (1.5, 1.5, 1.5), np.sqrt(0.75)),  # a point
        ((2, -1, 0.5), (-1, 2, 0.5), 0.0),  # diagonal across a corner region, touching it
        ((4, -1, 0.5), (-1, 4, 0.5), np.sqrt(0.5)),  # passes the edge x=1,y=1 at 1/sqrt2
    ],
)
def test_segment_box_distance_hand_made(a, b, expected):
    d = segment_box_distance(np.array(a, float), np.array(b, float), UNIT_LO, UNIT_HI)
    assert d[0] == pytest.approx(expected, abs=1e-9)


def _point_box(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    r = np.maximum(np.maximum(lo - p, p - hi), 0.0)
    return np.sqrt((r**2).sum(axis=-1))


def test_segment_box_distance_matches_dense_sampling():
    rng = np.random.default_rng(3)
    lo = rng.uniform(-5, 5, size=(100, 3))
    hi = lo + rng.uniform(0.2, 3.0, size=(100, 3))
    n_samples = 5001
    t = np.linspace(0, 1, n_samples)[:, None]
    worst_gap = 0.0
    for _ in range(30):
        a, b = rng.uniform(-12, 12, size=(2, 3))
        exact = segment_box_distance(a, b, lo, hi)
        pts = a[None, :] + t * (b - a)[None, :]
        sampled = _point_box(pts[:, None, :], lo[None], hi[None]).min(axis=0)
        # Sampling can only overestimate, and by less than a step.
        assert np.all(exact <= sampled + 1e-9)
        step = np.linalg.norm(b - a) / (n_samples - 1)
        assert np.all(sampled - exact <= step)
        worst_gap = max(worst_gap, float((sampled - exact).max()))
    assert worst_gap > 0  # the test compares something: sampling is never exact everywhere


def _cylinder_case(spacing, direction=None, radius=6.0):
    """A no-go cylinder (portal_vein) along z through x = y = 0, voxelised by centres."""
    shape_kji = (21, 61, 61)
    sp = np.asarray(spacing, float)
    rot = np.eye(3) if direction is None else np.asarray(direction, float)
    # The grid centred on the origin whatever its direction.
    half = (np.array(shape_kji[::-1]) - 1) * sp / 2.0
    origin = -rot @ half
    grid = Volume(np.zeros(shape_kji, np.int16), tuple(sp), tuple(origin), rot)
    pts = grid.voxel_centres_lps()
    cyl = pts[..., 0] ** 2 + pts[..., 1] ** 2 <= radius**2
    body = np.ones(shape_kji, bool)
    tumour = np.zeros(shape_kji, bool)
    case = Case(
        "cyl",
        grid,
        {"body": body, "portal_vein": cyl, "tumour:T1": tumour},
        "T1",
        5.0,
    )
    return case, pts, cyl


def _expected_2d(pts, cyl, sp, x_line):
    """Distance in the axial plane from (x_line, 0) to the squares of the cylinder's voxel
    columns: the cylinder spans every slice, so this is the 3D distance to a line parallel
    to z, or to an oblique segment in the plane y = 0 at its smallest x."""
    xc, yc = pts[0][cyl[0]][:, 0], pts[0][cyl[0]][:, 1]
    dx = np.maximum(np.abs(x_line - xc) - sp[0] / 2, 0)
    dy = np.maximum(np.abs(yc) - sp[1] / 2, 0)
    return float(np.sqrt(dx**2 + dy**2).min())


@pytest.mark.parametrize("direction", [None, np.diag([-1.0, -1.0, 1.0])])
def test_analytic_cylinder_on_an_anisotropic_grid(direction):
    sp = (0.7, 0.7, 2.5)
    case, pts, cyl = _cylinder_case(sp, direction)
    x_line = 9.13
    expected = _expected_2d(pts, cyl, np.asarray(sp), x_line)
    # Analytic bound: the union of the boxes of the voxels centred in the cylinder lies
    # between the cylinders of radius R -+ half an axial voxel diagonal.
    half_diag = 0.5 * np.hypot(sp[0], sp[1])
    assert abs(expected - (x_line - 6.0)) <= half_diag
    z = 20.0
    parallel = mask_segment_distance(
        case.grid, cyl, np.array([x_line, 0.0, -z]), np.array([x_line, 0.0, z]), 5.0
    )
    assert parallel == pytest.approx(expected, abs=1e-9)
    # Oblique in the plane y = 0, nearest to the axis at its deep end (x = 9.13 at z = 3).
    oblique = mask_segment_distance(
        case.grid, cyl, np.array([30.0, 0.0, -20.0]), np.array([x_line, 0.0, 3.0]), 5.0
    )
    assert oblique == pytest.approx(expected, abs=1e-9)
    # Beyond the window: reported as infinite, not as a made-up number.
    far = mask_segment_distance(
        case.grid, cyl, np.array([15.0, 0.0, -5.0]), np.array([15.0, 0.0, 5.0]), 5.0
    )
    assert far == np.inf


def test_check_path_flags_a_path_too_close_and_passes_a_clear_one():
    case, _, _ = _cylinder_case((1.0, 1.0, 2.0))
    d = np.array([-1.0, 0.0, 0.0])
    # Body fills the grid: no skin in the image, and the check says so.
    rep = check_path(case, "p", np.array([8.2, 0.0, 0.0]), d, 3.0)
    assert any("grid face" in p for p in rep.problems)
    # A body that ends at x = 25 mm: the needle enters there.
    x = case.grid.voxel_centres_lps()[..., 0]
    case.structures["body"] = x <= 25.0
    se = skin_entry(case, np.array([8.2, 0.0, 0.0]), d)
    assert se.point_lps_mm is not None and 25.0 <= se.point_lps_mm[0] <= 26.0
    near = check_path(case, "near", np.array([8.2, 0.0, 0.0]), d, 3.0)
    # The nearest box face is at x = 6.5 (voxel centre 6, half a voxel): 1.7 mm.
    assert near.clearance_mm["portal_vein"] == pytest.approx(1.7, abs=1e-9)
    assert any("1.70 mm from portal_vein" in p for p in near.problems)
    clear = check_path(case, "clear", np.array([10.0, 0.0, 0.0]), d, 3.0)
    assert clear.problems == []
    assert clear.clearance_mm["portal_vein"] == pytest.approx(3.5, abs=1e-9)
    # A planned entry on the grid face, or away from where the line leaves the body.
    face = check_path(
        case, "f", np.array([10.0, 0.0, 0.0]), d, 3.0, planned_entry_lps=np.array([30.5, 0, 0])
    )
    assert any("grid face" in p for p in face.problems)
    off = check_path(
        case, "o", np.array([10.0, 0.0, 0.0]), d, 3.0, planned_entry_lps=np.array([18.0, 0, 0])
    )
    assert any("from where the needle line leaves the body" in p for p in off.problems)


def test_a_tip_outside_the_body_has_no_entry():
    case, _, _ = _cylinder_case((1.0, 1.0, 2.0))
    x = case.grid.voxel_centres_lps()[..., 0]
    case.structures["body"] = x <= 25.0
    se = skin_entry(case, np.array([27.0, 0.0, 0.0]), np.array([-1.0, 0.0, 0.0]))
    assert se.point_lps_mm is None and se.reason == "tip outside the body"
