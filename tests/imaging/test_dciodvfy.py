"""DICOM outputs checked by a real tool (issue 14, item 5): `dciodvfy` (Debian package
dicom3tools, installed by .ci/run) reports no error for the CT series, the SEG, the RTSTRUCT
and the plan's zone SEG; and the zone SEG lies where the NIfTI zone is, to the voxel."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from hepablate.core.volume import Volume
from hepablate.imaging import read_image
from hepablate.imaging.dicom_ct import write_dicom_ct_series
from hepablate.imaging.dicom_seg import read_dicom_seg, write_dicom_seg, write_zone_seg
from hepablate.imaging.rtstruct import write_rtstruct

needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed"
)


def _dciodvfy_errors(path: Path) -> list[str]:
    res = subprocess.run(
        ["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = (res.stdout + res.stderr).splitlines()
    return [ln for ln in lines if ln.startswith("Error")]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("dicom")
    arr = np.full((8, 24, 20), -100, dtype=np.int16)
    arr[2:6, 6:18, 5:15] = 60
    ct = Volume(arr, (1.0, 1.0, 2.0), (-10.0, -12.0, -8.0))
    write_dicom_ct_series(ct, d / "ct", patient_id="DCIO1")
    liver = arr > 0
    tumour = np.zeros_like(liver)
    tumour[3:5, 10:14, 8:12] = True
    masks = {"liver": liver, "tumour:T1": tumour}
    write_dicom_seg(masks, d / "ct", d / "seg.dcm")
    write_rtstruct(masks, d / "ct", d / "rtstruct.dcm")
    zone = Volume(tumour, (1.0, 1.0, 2.0), (-10.0, -12.0, -8.0))
    write_zone_seg(zone, d / "ct", d / "zone_seg.dcm")
    return {
        "ct": sorted((d / "ct").iterdir())[0],
        "seg": d / "seg.dcm",
        "rtstruct": d / "rtstruct.dcm",
        "zone": d / "zone_seg.dcm",
    }


@needs_dciodvfy
@pytest.mark.parametrize("kind", ["ct", "seg", "rtstruct", "zone"])
def test_dciodvfy_reports_no_error(outputs: dict[str, Path], kind: str) -> None:
    assert _dciodvfy_errors(outputs[kind]) == []


def test_type2_attributes_and_codes_present(outputs: dict[str, Path]) -> None:
    ct = pydicom.dcmread(outputs["ct"])
    assert "PatientPosition" in ct and ct.BodyPartExamined == "ABDOMEN"
    rt = pydicom.dcmread(outputs["rtstruct"])
    assert "OperatorsName" in rt and "PositionReferenceIndicator" in rt
    codes = [o.RTROIIdentificationCodeSequence[0] for o in rt.RTROIObservationsSequence]
    assert [(c.CodeValue, c.CodingSchemeDesignator) for c in codes] == [
        ("10200004", "SCT"),
        ("108369006", "SCT"),
    ]
    zone = pydicom.dcmread(outputs["zone"])
    schemes = {i.CodingSchemeDesignator for i in zone.CodingSchemeIdentificationSequence}
    assert "99HEPABLATE" in schemes


def test_zone_seg_aligned_with_nifti_zone_when_upsampled(tmp_path: Path) -> None:
    """A 2 mm zone written on a 1 mm CT whose voxel centres fall on the zone's voxel faces:
    nearest neighbour used to break every tie one way (a half-voxel shift); the SEG must be
    symmetric about the zone and hold each zone voxel's centre."""
    ct = Volume(np.zeros((12, 40, 40), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    write_dicom_ct_series(ct, tmp_path / "ct", patient_id="ALIGN")
    z = np.zeros((6, 20, 20), bool)
    z[2:4, 6:12, 5:11] = True
    # Zone voxel centres at 2n mm, faces at 2n + 1 mm: every CT centre (integer mm) lies on
    # a zone voxel's centre or on one of its faces.
    zone = Volume(z, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))
    from hepablate.imaging.images import write_image

    write_image(zone.with_array(z.astype(np.uint8)), tmp_path / "zone.nii.gz")
    nifti = read_image(tmp_path / "zone.nii.gz")
    path = write_zone_seg(nifti, tmp_path / "ct", tmp_path / "zone_seg.dcm")
    (seg,) = read_dicom_seg(path)
    got = seg.mask
    assert np.allclose(got.centroid_lps_mm(), nifti.centroid_lps_mm(), atol=1e-6)
    lo_z, hi_z = nifti.bounding_box_lps_mm()  # type: ignore[misc]
    lo_s, hi_s = got.bounding_box_lps_mm()  # type: ignore[misc]
    assert np.allclose(lo_z - lo_s, hi_s - hi_z)  # the same margin on both sides
    centres = nifti.index_to_lps(np.argwhere(z)[:, ::-1].astype(float))
    ijk = np.round(got.lps_to_index(centres)).astype(int)
    assert got.array[ijk[:, 2], ijk[:, 1], ijk[:, 0]].all()
    n_ct = int(got.array.sum())
    assert n_ct * 1.0 >= z.sum() * 8.0  # no zone volume lost
