"""RTSTRUCT: contour tracing and rasterisation, holes, references, and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from hepablate.core.volume import Volume
from hepablate.errors import InputError
from hepablate.imaging import read_image, read_rtstruct, write_dicom_ct_series, write_rtstruct
from hepablate.imaging.dicom_ct import read_ct_headers


@pytest.fixture(scope="module")
def grid(ct_dir: Path) -> Volume:
    return read_image(ct_dir)


def _ring(shape: tuple[int, int, int]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[1:5, 2:18, 3:21] = True
    m[1:5, 6:12, 8:14] = False  # the hole
    m[2, 8:10, 10:12] = True  # an island inside the hole
    return m


def test_round_trip_with_hole_and_island(tmp_path: Path, ct_dir: Path, grid: Volume) -> None:
    ball = np.linalg.norm(grid.voxel_centres_lps() - grid.index_to_lps([12, 10, 2.5]), axis=-1)
    masks = {
        "body": np.ones(grid.array.shape, dtype=bool),  # touches every border
        "ring": _ring(grid.array.shape),
        "tumour:T1": ball <= 6.0,
        "bile_duct": np.zeros(grid.array.shape, dtype=bool),
    }
    path = write_rtstruct(masks, ct_dir, tmp_path / "rt.dcm")
    segs = read_rtstruct(path, grid)
    assert [(s.number, s.name) for s in segs] == [(n, k) for n, k in enumerate(masks, start=1)]
    for s in segs:
        assert s.mask.same_geometry(grid)
        np.testing.assert_array_equal(s.mask.array, masks[s.name], err_msg=s.name)


def test_written_references(tmp_path: Path, ct_dir: Path, grid: Volume) -> None:
    m = np.zeros(grid.array.shape, dtype=bool)
    m[3, 4:8, 5:9] = True
    ds = pydicom.dcmread(write_rtstruct({"tumour:T1": m, "liver": m}, ct_dir, tmp_path / "r.dcm"))
    headers = read_ct_headers(ct_dir)
    assert ds.Modality == "RTSTRUCT" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3"
    assert ds.StudyInstanceUID == headers[0].StudyInstanceUID
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == headers[0].FrameOfReferenceUID
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == headers[0].SeriesInstanceUID
    assert len(series.ContourImageSequence) == len(headers)
    (contour,) = ds.ROIContourSequence[0].ContourSequence
    assert contour.ContourGeometricType == "CLOSED_PLANAR"
    assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID == headers[3].SOPInstanceUID
    pts = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
    assert len(pts) == contour.NumberOfContourPoints
    ijk = grid.lps_to_index(pts)
    np.testing.assert_allclose(ijk[:, 2], 3.0, atol=1e-6)
    # Traced at level 0.5: the contour runs half a voxel outside the boundary voxel centres.
    assert ijk[:, 0].min() == pytest.approx(4.5) and ijk[:, 0].max() == pytest.approx(8.5)
    obs = {o.ReferencedROINumber: o.RTROIInterpretedType for o in ds.RTROIObservationsSequence}
    assert obs == {1: "GTV", 2: "ORGAN"}


def test_sphere_volume_within_one_percent(tmp_path: Path, oblique: np.ndarray) -> None:
    ct = Volume(np.zeros((24, 40, 40), dtype=np.int16), (1.0, 1.0, 1.5), (-20, -20, -18), oblique)
    write_dicom_ct_series(ct, tmp_path / "ct", patient_id="P")
    centre = ct.index_to_lps([19.5, 20.0, 11.5])
    ball = np.linalg.norm(ct.voxel_centres_lps() - centre, axis=-1) <= 12.0
    path = write_rtstruct({"tumour:T1": ball}, tmp_path / "ct", tmp_path / "rt.dcm")
    (seg,) = read_rtstruct(path, read_image(tmp_path / "ct"))
    assert abs(int(seg.mask.array.sum()) - int(ball.sum())) <= 0.01 * ball.sum()
    analytic = 4 / 3 * np.pi * 12.0**3 / np.prod(ct.spacing_mm)
    assert abs(seg.mask.array.sum() - analytic) <= 0.03 * analytic


def _rtstruct_with(contours: list[tuple[str, list[float]]]) -> Dataset:
    """A minimal RTSTRUCT with one ROI holding the given (type, points) contours."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.Modality = "RTSTRUCT"
    roi = Dataset()
    roi.ROINumber = 7
    roi.ROIName = "Lesion"
    ds.StructureSetROISequence = Sequence([roi])
    items = []
    for kind, pts in contours:
        c = Dataset()
        c.ContourGeometricType = kind
        c.NumberOfContourPoints = len(pts) // 3
        c.ContourData = pts
        items.append(c)
    rc = Dataset()
    rc.ReferencedROINumber = 7
    rc.ContourSequence = Sequence(items)
    ds.ROIContourSequence = Sequence([rc])
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return ds


def _square(grid: Volume, lo: float, hi: float, k: float, dz: float = 0.0) -> list[float]:
    corners = [(lo, lo), (hi, lo), (hi, hi), (lo, hi)]
    pts = grid.index_to_lps(np.array([[i, j, k] for i, j in corners]))
    pts[:, 2] += dz
    return [float(v) for v in pts.ravel()]


def test_hand_made_square_with_hole(tmp_path: Path, grid: Volume) -> None:
    """Even-odd fill: an outer square with an inner one is a frame; POINTs are ignored."""
    ds = _rtstruct_with(
        [
            ("CLOSED_PLANAR", _square(grid, 1.5, 13.5, 2)),  # voxels 2..13: 12 x 12
            ("CLOSED_PLANAR", _square(grid, 4.5, 8.5, 2)),  # hole 5..8: 4 x 4
            ("POINT", [float(v) for v in grid.index_to_lps([1, 1, 1])]),
        ]
    )
    ds.save_as(tmp_path / "rt.dcm", enforce_file_format=True)
    (seg,) = read_rtstruct(tmp_path / "rt.dcm", grid)
    assert (seg.number, seg.name) == (7, "Lesion")
    expected = np.zeros(grid.array.shape, dtype=bool)
    expected[2, 2:14, 2:14] = True
    expected[2, 5:9, 5:9] = False
    np.testing.assert_array_equal(seg.mask.array, expected)


@pytest.mark.parametrize(
    ("contour", "message"),
    [
        (lambda g: ("CLOSED_PLANAR", _square(g, 1.5, 5.5, 2, dz=0.7)), "does not lie in a slice"),
        (lambda g: ("CLOSED_PLANAR", _square(g, 1.5, 5.5, 9)), "outside the reference grid"),
        (lambda g: ("OPEN_PLANAR", _square(g, 1.5, 5.5, 2)), "only CLOSED_PLANAR"),
        (lambda g: ("CLOSED_PLANAR", [1.0, 2.0]), r"\(x, y, z\) triplets"),
    ],
)
def test_bad_contours(tmp_path: Path, grid: Volume, contour, message: str) -> None:
    ds = _rtstruct_with([contour(grid)])
    ds.save_as(tmp_path / "rt.dcm", enforce_file_format=True)
    with pytest.raises(InputError, match=message) as err:
        read_rtstruct(tmp_path / "rt.dcm", grid)
    assert "Lesion" in str(err.value) and "\n" not in str(err.value)


def test_not_rtstruct_or_corrupt(tmp_path: Path, ct_dir: Path, grid: Volume) -> None:
    with pytest.raises(InputError, match="not an RT Structure Set"):
        read_rtstruct(next(ct_dir.glob("*.dcm")), grid)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00\x01 definitely not DICOM" * 40)
    with pytest.raises(InputError, match="cannot read as DICOM"):
        read_rtstruct(junk, grid)
    ds = _rtstruct_with([("CLOSED_PLANAR", _square(grid, 1.5, 5.5, 2))])
    del ds.StructureSetROISequence
    ds.save_as(tmp_path / "noroi.dcm", enforce_file_format=True)
    with pytest.raises(InputError, match="StructureSetROISequence"):
        read_rtstruct(tmp_path / "noroi.dcm", grid)
    with pytest.raises(InputError, match="file not found"):
        read_rtstruct(tmp_path / "absent.dcm", grid)


def test_fill_polygon_matches_skimage() -> None:
    """The scan-line fill decides exactly as skimage.draw.polygon on random polygons,
    including self-intersecting ones and ones reaching outside the image."""
    from skimage.draw import polygon

    from hepablate.imaging.rtstruct import fill_polygon

    rng = np.random.default_rng(3)
    for n in (3, 5, 12, 40):
        for _ in range(25):
            x = rng.uniform(-5, 35, n)
            y = rng.uniform(-5, 25, n)
            rr, cc = polygon(y, x, shape=(20, 30))
            expected = np.zeros((20, 30), dtype=bool)
            expected[rr, cc] = True
            np.testing.assert_array_equal(fill_polygon(x, y, (20, 30)), expected)
