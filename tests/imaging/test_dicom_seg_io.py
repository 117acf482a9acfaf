"""DICOM SEG: writer content, reader geometry, cropped SEGs, zones, and bad files."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import yaml
from pydicom.uid import generate_uid

from hepablate.case import load_case
from hepablate.case.model import Case
from hepablate.case.writer import write_case
from hepablate.core.volume import Volume
from hepablate.errors import InputError
from hepablate.imaging import read_dicom_seg, read_image, write_dicom_seg, write_zone_seg
from hepablate.imaging.dicom_ct import read_ct_headers


def _masks(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    liver = np.zeros(shape, dtype=bool)
    liver[1:5, 3:15, 4:20] = True
    tumour = np.zeros(shape, dtype=bool)
    tumour[2:4, 6:9, 8:12] = True
    return {
        "liver": liver,
        "tumour:T1": tumour,
        "bile_duct": np.zeros(shape, dtype=bool),  # empty: written, not skipped
        "margin shell": liver & ~tumour,
    }


@pytest.fixture(scope="module")
def seg_file(tmp_path_factory: pytest.TempPathFactory, ct_dir: Path, small_ct: Volume) -> Path:
    path = tmp_path_factory.mktemp("seg") / "seg.dcm"
    return write_dicom_seg(_masks(small_ct.array.shape), ct_dir, path)


def _hd_seg(
    ct_dir: Path, arr: np.ndarray, labels: list[str], seg_type: str, **kw
) -> pydicom.Dataset:
    descs = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=label,
            segmented_property_category=hd.sr.CodedConcept(
                "91723000", "SCT", "Anatomical Structure"
            ),
            segmented_property_type=hd.sr.CodedConcept("10200004", "SCT", "Liver"),
            algorithm_type="MANUAL",
        )
        for n, label in enumerate(labels, start=1)
    ]
    return hd.seg.Segmentation(
        source_images=read_ct_headers(ct_dir),
        pixel_array=arr,
        segmentation_type=seg_type,
        segment_descriptions=descs,
        series_instance_uid=generate_uid(),
        series_number=5,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
        **kw,
    )


def test_round_trip_on_ct_grid(seg_file: Path, ct_dir: Path, small_ct: Volume) -> None:
    masks = _masks(small_ct.array.shape)
    segs = read_dicom_seg(seg_file)
    assert [(s.number, s.name) for s in segs] == [(n, k) for n, k in enumerate(masks, start=1)]
    ct = read_image(ct_dir)
    for s in segs:
        assert s.mask.array.dtype == bool
        assert s.mask.same_geometry(ct)
        np.testing.assert_array_equal(s.mask.array, masks[s.name])


def test_written_header(seg_file: Path, ct_dir: Path, small_ct: Volume) -> None:
    ds = pydicom.dcmread(seg_file)
    ct0 = read_ct_headers(ct_dir)[0]
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.StudyInstanceUID == ct0.StudyInstanceUID
    assert ds.FrameOfReferenceUID == ct0.FrameOfReferenceUID
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ct0.SeriesInstanceUID
    assert int(ds.NumberOfFrames) == small_ct.array.shape[0] * 4  # every frame of every segment
    codes = {
        d.SegmentLabel: (
            d.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
            d.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            d.SegmentAlgorithmType,
        )
        for d in ds.SegmentSequence
    }
    assert codes == {
        "liver": ("91723000", "10200004", "MANUAL"),
        "tumour:T1": ("49755003", "108369006", "MANUAL"),
        "bile_duct": ("91723000", "28273000", "MANUAL"),
        "margin shell": ("49755003", "6574001", "MANUAL"),
    }


def test_oblique_ct(tmp_path: Path, oblique: np.ndarray) -> None:
    from hepablate.imaging import write_dicom_ct_series

    ct = Volume(np.zeros((5, 8, 9), dtype=np.int16), (1.2, 0.9, 3.0), (5.0, -7.0, 2.5), oblique)
    write_dicom_ct_series(ct, tmp_path / "ct", patient_id="P")
    m = np.zeros(ct.array.shape, dtype=bool)
    m[1:4, 2:6, 3:5] = True
    (seg,) = read_dicom_seg(write_dicom_seg({"tumour:T1": m}, tmp_path / "ct", tmp_path / "s.dcm"))
    assert seg.mask.same_geometry(ct)
    np.testing.assert_array_equal(seg.mask.array, m)


def test_zone_from_subgrid(tmp_path: Path, ct_dir: Path, small_ct: Volume) -> None:
    """A zone on a finer, cropped planning grid lands on the CT grid where the sphere is."""
    centre = small_ct.index_to_lps(np.array([12.0, 10.0, 2.5]))
    radius = 5.0
    sub_spacing = (0.4, 0.55, 1.0)
    sub_origin = centre - 8.0
    shape = (17, 30, 41)  # (k, j, i): covers +-8 mm around the centre
    sub = Volume(np.zeros(shape, dtype=bool), sub_spacing, tuple(sub_origin))
    sub.array = np.linalg.norm(sub.voxel_centres_lps() - centre, axis=-1) <= radius
    path = write_zone_seg(sub, ct_dir, tmp_path / "zone.dcm", label="IRE ablation zone")
    (seg,) = read_dicom_seg(path)
    assert seg.name == "IRE ablation zone" and seg.mask.same_geometry(small_ct)
    dist = np.linalg.norm(small_ct.voxel_centres_lps() - centre, axis=-1)
    expected = dist <= radius
    wrong = seg.mask.array != expected
    # Nearest-neighbour resampling can only err within half a sub-grid voxel of the surface.
    half_diag = 0.5 * float(np.linalg.norm(sub_spacing))
    assert np.all(np.abs(dist[wrong] - radius) <= half_diag)
    assert wrong.sum() <= 0.2 * expected.sum()
    d = pydicom.dcmread(path).SegmentSequence[0]
    assert d.SegmentAlgorithmType == "AUTOMATIC"
    assert d.SegmentAlgorithmName == "hepablate"


def test_fractional_and_labelmap_segs(tmp_path: Path, ct_dir: Path, small_ct: Volume) -> None:
    masks = _masks(small_ct.array.shape)
    prob = masks["liver"].astype(np.float32) * 0.8 + masks["tumour:T1"] * 0.1
    prob[0] = 0.45  # below half the maximum: outside
    ds = _hd_seg(
        ct_dir, prob, ["liver"], "FRACTIONAL", max_fractional_value=200, omit_empty_frames=False
    )
    ds.save_as(tmp_path / "frac.dcm")
    (seg,) = read_dicom_seg(tmp_path / "frac.dcm")
    np.testing.assert_array_equal(seg.mask.array, masks["liver"])  # 0.8 and 0.9 >= 0.5

    labels = masks["liver"].astype(np.uint8)
    labels[masks["tumour:T1"]] = 2
    ds = _hd_seg(ct_dir, labels, ["liver", "tumour"], "LABELMAP", omit_empty_frames=False)
    ds.save_as(tmp_path / "lm.dcm")
    segs = {s.name: s.mask for s in read_dicom_seg(tmp_path / "lm.dcm")}
    np.testing.assert_array_equal(segs["liver"].array, masks["liver"] & ~masks["tumour:T1"])
    np.testing.assert_array_equal(segs["tumour"].array, masks["tumour:T1"])
    assert segs["tumour"].same_geometry(small_ct)


# ---- a SEG that covers only some CT slices ----------------------------------------------------


@pytest.fixture(scope="module")
def cropped_case_dir(tmp_path_factory: pytest.TempPathFactory, aniso_case: Case) -> Path:
    """A DICOM case whose SEG omits empty frames (highdicom's default), so its grid spans only
    the slices holding the liver."""
    root = tmp_path_factory.mktemp("cropped")
    write_case(aniso_case, root, "dicom")
    liver, tumour = aniso_case.structures["liver"], aniso_case.target_mask
    arr = np.stack([liver, tumour], axis=-1)
    ds = _hd_seg(root / "ct", arr, ["Liver", "Tumour"], "BINARY", omit_empty_frames=True)
    ds.save_as(root / "cropped.dcm")
    return root


def _write_spec(root: Path, resample: bool) -> Path:
    doc = {
        "case_id": "cropped",
        "ct": "ct",
        "segmentation": {"file": "cropped.dcm"},
        "structures": [
            {"name": "liver", "segment": "Liver"},
            {"name": "tumour", "id": "T1", "label": 2},
        ],
        "target": "T1",
        "resample_masks": resample,
    }
    path = root / f"case-{resample}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_cropped_seg_has_its_own_grid(cropped_case_dir: Path, aniso_case: Case) -> None:
    segs = read_dicom_seg(cropped_case_dir / "cropped.dcm")
    liver_slices = np.flatnonzero(aniso_case.structures["liver"].any(axis=(1, 2)))
    grid = segs[0].mask
    assert grid.array.shape[0] == liver_slices[-1] - liver_slices[0] + 1
    assert grid.array.shape[0] < aniso_case.grid.array.shape[0]
    np.testing.assert_allclose(
        grid.origin_lps_mm, aniso_case.grid.index_to_lps([0, 0, liver_slices[0]]), atol=1e-3
    )
    np.testing.assert_allclose(grid.spacing_mm, aniso_case.grid.spacing_mm, atol=1e-6)


def test_cropped_seg_resampled_when_allowed(cropped_case_dir: Path, aniso_case: Case) -> None:
    case = load_case(_write_spec(cropped_case_dir, True))
    assert case.grid.same_geometry(aniso_case.grid)
    np.testing.assert_array_equal(case.target_mask, aniso_case.target_mask)
    np.testing.assert_array_equal(case.structures["liver"], aniso_case.structures["liver"])


def test_cropped_seg_on_the_ct_lattice_loads_exactly_without_resampling(
    cropped_case_dir: Path, aniso_case: Case
) -> None:
    """Frames left out of a SEG are whole slices of the CT's own lattice: the loader places
    them exactly (no interpolation), so no `resample_masks` is needed."""
    case = load_case(_write_spec(cropped_case_dir, False))
    assert np.array_equal(case.target_mask, aniso_case.target_mask)


def test_seg_off_the_ct_lattice_rejected_without_resampling(
    cropped_case_dir: Path, run_cli
) -> None:
    ds = pydicom.dcmread(cropped_case_dir / "cropped.dcm")
    for frame in ds.PerFrameFunctionalGroupsSequence:
        pos = frame.PlanePositionSequence[0]
        pos.ImagePositionPatient = [float(pos.ImagePositionPatient[0]) + 0.4] + [
            float(v) for v in pos.ImagePositionPatient[1:]
        ]
    ds.save_as(cropped_case_dir / "shifted.dcm")
    spec = _write_spec(cropped_case_dir, False)
    spec.write_text(spec.read_text().replace("cropped.dcm", "shifted.dcm"))
    with pytest.raises(InputError, match="resample_masks: true"):
        load_case(spec)
    res = run_cli("case", "check", spec)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "shifted.dcm" in lines[0]
    assert "Traceback" not in res.err


# ---- bad files ---------------------------------------------------------------------------------


def _shift_one_frame(ds: pydicom.Dataset) -> None:
    pos = ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence[0]
    pos.ImagePositionPatient = [float(v) for v in pos.ImagePositionPatient[:2]] + [
        float(pos.ImagePositionPatient[2]) + 0.7
    ]


def _nan_spacing(ds: pydicom.Dataset) -> None:
    ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing = ["nan", "0.8"]


def _tilt_one_frame(ds: pydicom.Dataset) -> None:
    fg = ds.PerFrameFunctionalGroupsSequence[0]
    ori = pydicom.Dataset()
    ori.ImageOrientationPatient = [1, 0, 0, 0, 0.8, 0.6]
    fg.PlaneOrientationSequence = [ori]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_shift_one_frame, "do not lie on one regular grid"),
        (_tilt_one_frame, "do not lie on one regular grid"),
        (_nan_spacing, "finite and positive"),
        (lambda ds: setattr(ds, "Modality", "CT"), "not a DICOM Segmentation"),
        (lambda ds: delattr(ds, "PerFrameFunctionalGroupsSequence"), "SEG"),
    ],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
def test_bad_seg(tmp_path: Path, seg_file: Path, mutate, message: str) -> None:
    ds = pydicom.dcmread(seg_file)
    mutate(ds)
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    with pytest.raises(InputError, match=message) as err:
        read_dicom_seg(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_not_seg_or_corrupt(tmp_path: Path, seg_file: Path, ct_dir: Path) -> None:
    with pytest.raises(InputError, match="not a DICOM Segmentation"):
        read_dicom_seg(next(ct_dir.glob("*.dcm")))
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x01\x02not dicom" * 50)
    with pytest.raises(InputError, match="cannot read as DICOM"):
        read_dicom_seg(junk)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(seg_file.read_bytes()[:-500])
    with pytest.raises(InputError, match=str(cut)):
        read_dicom_seg(cut)
    with pytest.raises(InputError, match="file not found"):
        read_dicom_seg(tmp_path / "absent.dcm")


def test_seg_with_skipped_empty_slices(tmp_path: Path, ct_dir: Path, small_ct: Volume) -> None:
    """Frames only on slices 1 and 3: SpacingBetweenSlices keeps slice 2 (empty) in the grid."""
    m = np.zeros(small_ct.array.shape, dtype=bool)
    m[1, 2:5, 3:6] = True
    m[3, 4:9, 2:4] = True
    ds = _hd_seg(ct_dir, m, ["liver"], "BINARY", omit_empty_frames=True)
    assert int(ds.NumberOfFrames) == 2
    ds.save_as(tmp_path / "gaps.dcm")
    (seg,) = read_dicom_seg(tmp_path / "gaps.dcm")
    assert seg.mask.array.shape[0] == 3 and seg.mask.spacing_mm[2] == pytest.approx(2.0)
    np.testing.assert_array_equal(seg.mask.array, m[1:4])
    np.testing.assert_allclose(seg.mask.origin_lps_mm, small_ct.index_to_lps([0, 0, 1]))

    # A SpacingBetweenSlices that contradicts the positions falls back to their spacing.
    m[2, 0, 0] = True
    ds = _hd_seg(ct_dir, m, ["liver"], "BINARY", omit_empty_frames=True)
    ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SpacingBetweenSlices = 3.0
    ds.save_as(tmp_path / "wrong.dcm")
    (seg,) = read_dicom_seg(tmp_path / "wrong.dcm")
    np.testing.assert_array_equal(seg.mask.array, m[1:4])


def test_geometry_agrees_with_highdicom_volume(tmp_path: Path, oblique: np.ndarray) -> None:
    """Cross-check against highdicom's own geometry (`Segmentation.get_volume`): every voxel
    inside the segment sits at the same LPS point, on an oblique SEG with skipped slices."""
    from hepablate.imaging import write_dicom_ct_series

    ct = Volume(np.zeros((8, 10, 12), np.int16), (0.8, 1.1, 2.0), (-10, 20, -5), oblique)
    write_dicom_ct_series(ct, tmp_path / "ct", patient_id="P")
    m = np.zeros(ct.array.shape, dtype=bool)
    m[2, 2:5, 3:6] = True
    m[5, 4:9, 2:4] = True
    _hd_seg(tmp_path / "ct", m, ["a"], "BINARY", omit_empty_frames=True).save_as(tmp_path / "s.dcm")
    (mine,) = read_dicom_seg(tmp_path / "s.dcm")
    theirs = hd.seg.segread(tmp_path / "s.dcm").get_volume(combine_segments=False)

    def points(idx: np.ndarray, affine: np.ndarray) -> np.ndarray:
        p = idx @ affine[:3, :3].T + affine[:3, 3]
        return p[np.lexsort(np.round(p, 3).T)]

    ours = points(np.argwhere(mine.mask.array)[:, ::-1].astype(float), mine.mask.affine_lps)
    ref = points(np.argwhere(theirs.array[..., 0] != 0).astype(float), theirs.affine)
    assert len(ours) == m.sum()
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    np.testing.assert_allclose(
        ours, points(np.argwhere(m)[:, ::-1].astype(float), ct.affine_lps), atol=1e-3
    )
