"""Foundation acceptance: every case format round-trips through write_case / load_case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hepablate.case import load_case
from hepablate.case.model import Case
from hepablate.case.writer import CASE_FILE_FORMATS, write_case


def _check_round_trip(case: Case, out: Path, fmt: str) -> None:
    write_case(case, out, fmt)
    back = load_case(out)

    assert set(back.structures) == set(case.structures)
    # Reference grid identical: size, spacing, origin (1e-3 mm) and direction cosines.
    g0, g1 = case.grid, back.grid
    assert g1.array.shape == g0.array.shape
    np.testing.assert_allclose(g1.spacing_mm, g0.spacing_mm, atol=1e-3)
    np.testing.assert_allclose(g1.origin_lps_mm, g0.origin_lps_mm, atol=1e-3)
    np.testing.assert_allclose(g1.direction, g0.direction, atol=1e-6)
    assert back.ct is not None and np.array_equal(back.ct.array, case.ct.array)

    for key, m0 in case.structures.items():
        m1 = back.structures[key]
        v0, v1 = int(m0.sum()), int(m1.sum())
        assert v0 > 0
        assert abs(v1 - v0) <= 0.01 * v0, f"{fmt}: {key} volume {v1} vs {v0} voxels"
        assert np.count_nonzero(m1 != m0) <= 0.01 * v0, f"{fmt}: {key} differs voxelwise"

    c0 = g0.with_array(case.target_mask).centroid_lps_mm()
    c1 = g1.with_array(back.target_mask).centroid_lps_mm()
    shift_voxels = np.abs(g0.lps_to_index(c1) - g0.lps_to_index(c0))
    assert np.all(shift_voxels < 0.5), f"{fmt}: target centroid moved {shift_voxels} voxels"
    assert back.source_format == ("dicom" if fmt in ("dicom", "rtstruct") else "image")


@pytest.mark.parametrize("fmt", CASE_FILE_FORMATS)
def test_round_trip_anisotropic(fmt: str, aniso_case: Case, tmp_path: Path) -> None:
    _check_round_trip(aniso_case, tmp_path / fmt, fmt)


@pytest.mark.parametrize("fmt", CASE_FILE_FORMATS)
def test_round_trip_oblique_grid(fmt: str, oblique_case: Case, tmp_path: Path) -> None:
    assert not np.allclose(oblique_case.grid.direction, np.eye(3), atol=0.1)
    _check_round_trip(oblique_case, tmp_path / fmt, fmt)


def test_all_formats_covered() -> None:
    assert set(CASE_FILE_FORMATS) == {
        "nifti",
        "nrrd",
        "mha",
        "masks",
        "slicer_seg",
        "dicom",
        "rtstruct",
    }
