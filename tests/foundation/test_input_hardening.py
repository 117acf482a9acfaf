"""Issue 14, item 1: image headers that SimpleITK would repair, case.yaml and plan.json that
used to give tracebacks, and invalid values that were accepted. Each: exit 2, one line on
stderr naming the file, no traceback, nothing written."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from hepablate.case.writer import write_case
from hepablate.cli import main
from hepablate.phantoms import PhantomSpec, TumourSpec, build_phantom

SMALL = dict(
    spacing_mm=(2.0, 2.0, 2.0),
    fov_mm=(120.0, 100.0, 80.0),
    body_semi_axes_mm=(58.0, 48.0),
    liver_centre_lps_mm=(-10.0, 0.0, 0.0),
    liver_semi_axes_mm=(40.0, 35.0, 30.0),
    gallbladder_centre_lps_mm=None,
    tumours=[TumourSpec(id="T1", centre_lps_mm=(-10.0, 0.0, 0.0), diameter_mm=20.0)],
    tubes=[],
)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tpl") / "c"
    write_case(build_phantom(PhantomSpec(**SMALL)), d, "nifti")
    return d


@pytest.fixture
def case_dir(template: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(template, tmp_path / "c")
    return tmp_path / "c"


def _one_line_error(capfd, argv: list[str], *needles: str) -> str:
    """Run the CLI; exit 2, exactly one line on (file descriptor 2) stderr with `needles`."""
    capfd.readouterr()
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _nifti_bytes(path: Path) -> bytearray:
    raw = path.read_bytes()
    return bytearray(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def _write_nifti(path: Path, data: bytes) -> None:
    path.write_bytes(gzip.compress(bytes(data)) if path.name.endswith(".gz") else bytes(data))


# ---- images -----------------------------------------------------------------------------------
def test_truncated_nifti_is_refused(case_dir, capfd):
    p = case_dir / "labels.nii.gz"
    raw = _nifti_bytes(p)
    _write_nifti(p, raw[: 352 + (len(raw) - 352) // 2])  # half the data, still valid gzip
    _one_line_error(capfd, ["case", "check", case_dir], "labels.nii.gz", "truncated")


@pytest.mark.parametrize("value", [float("nan"), 0.0, float("inf"), -1.0])
def test_bad_nifti_spacing_is_refused(case_dir, capfd, value):
    p = case_dir / "ct.nii.gz"
    raw = _nifti_bytes(p)
    struct.pack_into("<f", raw, 80, value)  # pixdim[1]
    _write_nifti(p, raw)
    _one_line_error(capfd, ["case", "check", case_dir], "ct.nii.gz", "voxel spacing")


def test_corrupt_nifti_magic_is_refused(case_dir, capfd):
    p = case_dir / "ct.nii.gz"
    raw = _nifti_bytes(p)
    raw[344:348] = b"xx1\x00"
    _write_nifti(p, raw)
    _one_line_error(capfd, ["case", "check", case_dir], "ct.nii.gz", "magic")


def test_nan_orientation_matrix_gives_one_line(case_dir, capfd):
    p = case_dir / "ct.nii.gz"
    raw = _nifti_bytes(p)
    struct.pack_into("<f", raw, 280, float("nan"))  # srow_x[0]
    _write_nifti(p, raw)
    _one_line_error(capfd, ["case", "check", case_dir], "ct.nii.gz", "sform")


def test_complex_label_map_is_refused(case_dir, capfd):
    img = sitk.ReadImage(str(case_dir / "labels.nii.gz"))
    arr = sitk.GetArrayFromImage(img).astype(np.complex64) * (1 + 1j)
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    sitk.WriteImage(out, str(case_dir / "labels.nii.gz"))
    _one_line_error(capfd, ["case", "check", case_dir], "labels.nii.gz", "not supported")


def test_native_library_warnings_become_one_line(tmp_path):
    from hepablate.errors import InputError
    from hepablate.imaging.headers import native_warnings_as_errors

    img = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    with pytest.raises(InputError, match="image library warning"):
        with native_warnings_as_errors(tmp_path / "x"):
            import os

            os.write(2, b"WARNING: In foo.cxx, line 1\nNiftiImageIO (0x55): x has bad sform\n\n")
    with native_warnings_as_errors(tmp_path / "y"):  # quiet reads pass
        sitk.WriteImage(img, str(tmp_path / "ok.nii.gz"))


def _mha_case(case_dir: Path, ct_name: str) -> Path:
    img = sitk.ReadImage(str(case_dir / "ct.nii.gz"))
    sitk.WriteImage(img, str(case_dir / ct_name), False)
    doc = yaml.safe_load((case_dir / "case.yaml").read_text())
    doc["ct"] = ct_name
    (case_dir / "case.yaml").write_text(yaml.safe_dump(doc))
    return case_dir / ct_name


def test_truncated_mha_is_refused(case_dir, capfd):
    p = _mha_case(case_dir, "ct.mha")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 1000])
    _one_line_error(capfd, ["case", "check", case_dir], "ct.mha", "truncated")


def test_mha_zero_spacing_is_refused(case_dir, capfd):
    p = _mha_case(case_dir, "ct.mha")
    data = p.read_bytes()
    head, sep, rest = data.partition(b"ElementSpacing = ")
    line, nl, tail = rest.partition(b"\n")
    p.write_bytes(head + sep + b"0 2 2" + nl + tail)
    _one_line_error(capfd, ["case", "check", case_dir], "ct.mha", "voxel spacing")


def test_truncated_nrrd_is_refused(case_dir, capfd):
    p = _mha_case(case_dir, "ct.nrrd")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 1000])
    _one_line_error(capfd, ["case", "check", case_dir], "ct.nrrd")


def test_dicom_zero_pixel_spacing_is_refused(tmp_path, capfd):
    import pydicom

    from hepablate.case.writer import write_case as wc

    d = tmp_path / "c"
    wc(build_phantom(PhantomSpec(**{**SMALL, "spacing_mm": (4.0, 4.0, 4.0)})), d, "dicom")
    first = sorted((d / "ct").iterdir())[0]
    ds = pydicom.dcmread(first)
    ds.PixelSpacing = [0, 4]
    ds.save_as(first)
    _one_line_error(capfd, ["case", "check", d], "PixelSpacing")


# ---- case.yaml ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, needle",
    [
        (b"case_id: \xff\xfe\n", "UTF-8"),
        (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "YAML"),
        (b"case_id: x\nmargin_mm: " + b"9" * 5000 + b"\n", "case.yaml"),
        (b"case_id: a\x00b\n", "NUL"),
    ],
)
def test_bad_case_yaml_gives_one_line(case_dir, capfd, content, needle):
    (case_dir / "case.yaml").write_bytes(content)
    _one_line_error(capfd, ["case", "check", case_dir], "case.yaml", needle)


def test_case_yaml_directory_gives_one_line(tmp_path, capfd):
    (tmp_path / "c" / "case.yaml").mkdir(parents=True)
    _one_line_error(capfd, ["case", "check", tmp_path / "c"], "case.yaml", "directory")


def test_case_yaml_bool_label_is_refused(case_dir, capfd):
    doc = yaml.safe_load((case_dir / "case.yaml").read_text())
    doc["structures"][0]["label"] = True
    (case_dir / "case.yaml").write_text(yaml.safe_dump(doc))
    _one_line_error(capfd, ["case", "check", case_dir], "label")


def test_phantom_block_dicom_gives_one_line(tmp_path, capfd):
    out = tmp_path / "blk"
    _one_line_error(
        capfd,
        ["phantom", "--preset", "block", "--format", "dicom", "--out", out],
        "--format",
        "CT",
    )
    assert not out.exists()
