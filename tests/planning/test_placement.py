import numpy as np
import pytest

from hepablate.errors import InputError
from hepablate.phantoms import PhantomSpec, TubeSpec, TumourSpec, build_phantom
from hepablate.placement.approach import approaches
from hepablate.placement.geometry import (
    max_segments_distance,
    neighbour_pairs,
    perpendicular_basis,
    polygon_distance,
    segments_distance,
    template_2d,
)
from hepablate.placement.paths import EntryRegion, PathMap, candidate_directions


@pytest.fixture(scope="module")
def case():
    spec = PhantomSpec(
        spacing_mm=(2.0, 2.0, 2.0),
        tumours=[TumourSpec(id="T1", centre_lps_mm=(-40, 0, 0), diameter_mm=20)],
        tubes=[
            TubeSpec(
                name="portal_vein", radius_mm=4, direction=(0, 0, 1), side=(1, 0, 0), gap_mm=2.0
            )
        ],
    )
    return build_phantom(spec)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_templates_neighbour_spacing(n):
    pts = template_2d(n, 15.0)
    assert len(pts) == n
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    d[np.eye(n, dtype=bool)] = np.inf
    assert d.min() >= 15.0 / np.sqrt(2) - 1e-9  # 5 = square + centre: spokes s/sqrt 2
    pairs = neighbour_pairs(pts, 25.0)
    assert all(np.linalg.norm(pts[i] - pts[j]) <= 25.25 for i, j in pairs)
    # Perimeter (shortest) pairs are delivered first.
    lens = [np.linalg.norm(pts[i] - pts[j]) for i, j in pairs]
    assert lens == sorted(lens, key=lambda x: round(x, 1))


def test_square_has_diagonals_only_when_within_max_spacing():
    pts = template_2d(4, 15.0)
    assert len(neighbour_pairs(pts, 25.0)) == 6
    assert len(neighbour_pairs(pts, 20.0)) == 4


def test_polygon_and_segment_distance():
    sq = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    pts = np.array([[5, 5], [15, 5], [13, 14]], float)
    np.testing.assert_allclose(polygon_distance(pts, sq), [0, 5, 5], atol=1e-9)
    segs = [(np.array([0.0, 0]), np.array([10.0, 0]))]
    np.testing.assert_allclose(segments_distance(pts, segs), [5, np.hypot(5, 5), np.hypot(3, 14)])


def test_perpendicular_basis_orthonormal():
    for d in ([1, 0, 0], [0, 0, 1], [0.3, -0.5, 0.8]):
        d = np.asarray(d, float) / np.linalg.norm(d)
        u, v = perpendicular_basis(d)
        m = np.stack([u, v, d])
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)


def test_skin_entry_on_body_surface_and_path_clearance(case):
    pm = PathMap(case, safety_distance_mm=3.0)
    tip = np.array([-40.0, 0.0, 0.0])
    d = np.array([0.0, 1.0, 0.0])  # from anterior, advancing posterior
    entry = pm.skin_entry(tip, d)
    assert entry is not None and entry[1] < 0
    # Entry is on the body surface: inside the body, one step further out is outside.
    assert pm.in_body(entry[None])[0]
    assert not pm.in_body((entry - 1.0 * d)[None])[0]
    chk = pm.check_path(tip, d)
    assert chk.ok and chk.clearance_mm >= 3.0
    # A path along the vessel's axis side crosses it: blocked and named.
    vessel_tip = np.array([-40.0 + 10 + 2 + 4, 0.0, 0.0])  # vessel axis point
    chk2 = pm.check_path(vessel_tip + np.array([0, 10.0, 0]), d)
    assert not chk2.ok and chk2.blocking == "portal_vein"


def test_candidate_directions_avoid_posterior_and_sorted(case):
    """Supine: no posterior entry, tilt within the limit; clear central paths first, the
    shortest of them first, and (issue 12) every kind and side of window among the first
    picks instead of only the shortest few directions (which are near duplicates)."""
    pm = PathMap(case, 3.0)
    c = np.array([-40.0, 0.0, 0.0])
    found = approaches(c, pm, 30.0)
    dirs = candidate_directions(c, pm, 30.0)
    assert dirs and len(dirs) == len(found)
    for d in dirs:
        assert -d[1] <= 0.2 + 1e-9  # entry side is not posterior
        assert abs(d[2]) <= np.sin(np.radians(30)) + 1e-9
    lengths = [np.linalg.norm(pm.skin_entry(c, d) - c) for d in dirs]
    clear = [a.clear for a in found]
    assert clear == sorted(clear, reverse=True)
    n_clear = sum(clear)
    assert lengths[0] == pytest.approx(min(lengths[:n_clear]))
    groups = {(a.kind, a.side) for a in found if a.clear}
    assert {(a.kind, a.side) for a in found[: len(groups)]} == groups
    # Within a group the picks are spread: the second differs from the first by at least
    # 10 deg when any direction of the group does.
    cos10 = np.cos(np.radians(10.0)) + 1e-9
    for g in groups:
        mine = [a.direction_lps for a in found if (a.kind, a.side) == g and a.clear]
        if any(float(mine[0] @ m) < cos10 for m in mine[1:]):
            assert float(mine[0] @ mine[1]) < cos10


def test_entry_region_outside_body_is_an_error(case):
    pm = PathMap(case, 3.0)
    with pytest.raises(InputError, match="does not reach the body surface"):
        pm.validate_entry_region(EntryRegion((-40.0, -200.0, 0.0), 10.0))
    pm.validate_entry_region(EntryRegion((-40.0, -80.0, 0.0), 10.0))


def test_max_segments_distance_matches_numpy_reference():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-30, 30, (400, 2))
    segs = [(rng.uniform(-20, 20, 2), rng.uniform(-20, 20, 2)) for _ in range(7)]
    segs.append((np.array([1.0, 1.0]), np.array([1.0, 1.0])))  # a degenerate segment
    assert max_segments_distance(pts, segs) == pytest.approx(
        float(segments_distance(pts, segs).max()), rel=1e-12
    )
