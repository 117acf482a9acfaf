import numpy as np

from hepablate.core.volume import Volume, resample_to


def _oblique_volume() -> Volume:
    theta = np.deg2rad(30)
    direction = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    return Volume(arr, (0.7, 0.8, 2.5), (-10.0, 20.0, 5.0), direction)


def test_index_lps_round_trip_matches_sitk():
    v = _oblique_volume()
    img = v.to_sitk()
    for ijk in [(0, 0, 0), (5, 4, 3), (2, 1, 3)]:
        expected = img.TransformIndexToPhysicalPoint(ijk)
        assert np.allclose(v.index_to_lps(np.array(ijk, float)), expected)
        assert np.allclose(v.lps_to_index(np.array(expected)), ijk)


def test_sitk_round_trip_keeps_geometry_and_values():
    v = _oblique_volume()
    back = Volume.from_sitk(v.to_sitk())
    assert back.same_geometry(v)
    assert np.array_equal(back.array, v.array)
    assert back.array[3, 4, 5] == v.array[3, 4, 5]  # array order is [k, j, i]


def test_resample_nearest_preserves_mask_position():
    ref = Volume(np.zeros((20, 20, 20), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    coarse = Volume(np.zeros((10, 10, 10), bool), (2.0, 2.0, 2.0), (0.5, 0.5, 0.5))
    coarse.array[4:6, 4:6, 4:6] = True
    fine = resample_to(coarse, ref, interpolation="nearest")
    assert fine.array.dtype == bool
    assert np.allclose(fine.centroid_lps_mm(), coarse.centroid_lps_mm(), atol=0.5)
    assert abs(fine.array.sum() * 1.0 - coarse.array.sum() * 8.0) / (coarse.array.sum() * 8) < 0.3


def test_bounding_box_and_centroid():
    v = Volume(np.zeros((5, 5, 5), bool), (1.0, 2.0, 3.0), (10.0, 0.0, 0.0))
    v.array[2, 1:3, 4] = True
    lo, hi = v.bounding_box_lps_mm()
    assert np.allclose(lo, [14.0, 2.0, 6.0]) and np.allclose(hi, [14.0, 4.0, 6.0])
    assert np.allclose(v.centroid_lps_mm(), [14.0, 3.0, 6.0])
