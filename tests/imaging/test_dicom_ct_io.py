"""DICOM CT series writer: header content and exact round trips through SimpleITK/GDCM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from hepablate.core.volume import Volume, resample_to
from hepablate.errors import InputError
from hepablate.imaging import read_image, write_dicom_ct_series
from hepablate.imaging.dicom_ct import read_ct_headers


def _geometry_equal(a: Volume, b: Volume) -> None:
    assert a.array.shape == b.array.shape
    np.testing.assert_allclose(a.spacing_mm, b.spacing_mm, atol=1e-3)
    np.testing.assert_allclose(a.origin_lps_mm, b.origin_lps_mm, atol=1e-3)
    np.testing.assert_allclose(a.direction, b.direction, atol=1e-6)


def test_header_content(ct_dir: Path, small_ct: Volume) -> None:
    files = sorted(ct_dir.glob("*.dcm"))
    assert len(files) == small_ct.array.shape[0]
    ds = [pydicom.dcmread(f) for f in files]
    assert {d.SOPClassUID for d in ds} == {"1.2.840.10008.5.1.4.1.1.2"}
    assert {d.Modality for d in ds} == {"CT"}
    for attr in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert len({getattr(d, attr) for d in ds}) == 1
    assert len({d.SOPInstanceUID for d in ds}) == len(ds)
    d0 = ds[0]
    # PixelSpacing is (row spacing = between rows = j, column spacing = i).
    assert [float(v) for v in d0.PixelSpacing] == [1.1, 0.8]
    assert float(d0.SliceThickness) == 2.0
    assert (d0.Rows, d0.Columns) == (20, 24)
    assert d0.PatientID == "TEST01"
    assert d0.BitsAllocated == 16 and d0.PixelRepresentation == 1
    hu = d0.pixel_array * float(d0.RescaleSlope) + float(d0.RescaleIntercept)
    np.testing.assert_array_equal(hu, small_ct.array[0])
    np.testing.assert_allclose([float(v) for v in ds[3].ImagePositionPatient], (-10, 20, 1.0))


def test_round_trip_exact(ct_dir: Path, small_ct: Volume) -> None:
    back = read_image(ct_dir)
    _geometry_equal(back, small_ct)
    np.testing.assert_array_equal(back.array, small_ct.array)
    assert [h.InstanceNumber for h in read_ct_headers(ct_dir)] == list(range(1, 7))


def test_round_trip_oblique_and_study_uid(tmp_path: Path, oblique: np.ndarray) -> None:
    arr = np.arange(5 * 7 * 9, dtype=np.int16).reshape(5, 7, 9) - 100
    ct = Volume(arr, (1.5, 0.7, 2.5), (-100.25, 33.3, 12.125), oblique)
    write_dicom_ct_series(ct, tmp_path, patient_id="P", study_uid="1.2.3.4.5")
    back = read_image(tmp_path)
    _geometry_equal(back, ct)
    np.testing.assert_array_equal(back.array, arr)
    assert pydicom.dcmread(next(tmp_path.iterdir())).StudyInstanceUID == "1.2.3.4.5"


@pytest.mark.parametrize(
    ("values", "exact"),
    [
        (np.array([-40000, 0, 20000], dtype=np.int32), True),  # > int16: needs an intercept
        (np.array([-3.25, 0.5, 1024.75], dtype=np.float32), False),  # non-integer: slope
    ],
)
def test_rescale(tmp_path: Path, values: np.ndarray, exact: bool) -> None:
    arr = np.resize(values, (3, 4, 5)).astype(values.dtype)
    write_dicom_ct_series(Volume(arr, (1, 1, 1)), tmp_path, patient_id="P")
    back = read_image(tmp_path).array.astype(float)
    if exact:
        np.testing.assert_array_equal(back, arr)
    else:
        step = (values.max() - values.min()) / 65535
        np.testing.assert_allclose(back, arr, atol=step)


def test_left_handed_direction_is_equivalent(tmp_path: Path) -> None:
    """DICOM cannot store k against row x column; the grid comes back k-reversed, with every
    value at the same LPS position."""
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    ct = Volume(arr, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.diag([1.0, 1.0, -1.0]))
    write_dicom_ct_series(ct, tmp_path, patient_id="P")
    back = read_image(tmp_path)
    np.testing.assert_allclose(back.direction, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(back.origin_lps_mm, (0.0, 0.0, -6.0), atol=1e-6)
    np.testing.assert_array_equal(resample_to(back, ct).array, arr)


def test_headers_of_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_ct_headers(tmp_path / "nope")
    (tmp_path / "readme.txt").write_text("not dicom")
    with pytest.raises(InputError, match="no DICOM image slices"):
        read_ct_headers(tmp_path)


def test_awkward_patient_id(tmp_path: Path) -> None:
    pid = "case\\with backslash " + "x" * 80
    write_dicom_ct_series(
        Volume(np.zeros((2, 3, 4), np.int16), (1, 1, 1)), tmp_path, patient_id=pid
    )
    ds = pydicom.dcmread(next(tmp_path.iterdir()))
    assert "\\" not in ds.PatientID and len(ds.PatientID) <= 64
    assert ds.PatientID.startswith("case/with backslash")


def test_headers_of_two_series(tmp_path: Path) -> None:
    vol = Volume(np.zeros((2, 3, 4), np.int16), (1, 1, 1))
    write_dicom_ct_series(vol, tmp_path / "a", patient_id="P")
    write_dicom_ct_series(vol, tmp_path / "b", patient_id="P")
    (tmp_path / "b" / "CT0000.dcm").rename(tmp_path / "a" / "other.dcm")
    with pytest.raises(InputError, match="2 DICOM series"):
        read_ct_headers(tmp_path / "a")
