"""3D Slicer .seg.nrrd: layouts, RAS input, and bad files."""

from __future__ import annotations

from pathlib import Path

import nrrd
import numpy as np
import pytest
import yaml

from hepablate.case import load_case
from hepablate.case.model import Case
from hepablate.core.volume import Volume
from hepablate.errors import InputError
from hepablate.imaging import read_slicer_seg, write_image, write_slicer_seg

GRID = Volume(np.zeros((4, 5, 6), dtype=np.int16), (1.0, 2.0, 3.0), (1.0, 2.0, 3.0))


def _box(k: slice, j: slice, i: slice) -> np.ndarray:
    m = np.zeros(GRID.array.shape, dtype=bool)
    m[k, j, i] = True
    return m


def _header(path: Path) -> str:
    raw = path.read_bytes()
    return raw[: raw.index(b"\n\n")].decode()


def _segment_fields(names: list[str], labels: list[int], layers: list[int] | None) -> dict:
    h: dict[str, str] = {}
    for n, (name, value) in enumerate(zip(names, labels, strict=True)):
        h[f"Segment{n}_Name"] = name
        h[f"Segment{n}_LabelValue"] = str(value)
        h[f"Segment{n}_ID"] = f"Segment_{n + 1}"
        if layers is not None:
            h[f"Segment{n}_Layer"] = str(layers[n])
    return h


def test_labelmap_layout_when_disjoint(tmp_path: Path) -> None:
    masks = {"liver": _box(slice(1, 3), slice(1, 4), slice(2, 5)), "tumour:T1": _box(0, 0, 0)}
    p = write_slicer_seg(masks, GRID, tmp_path / "s.seg.nrrd")
    head = _header(p)
    assert "dimension: 3" in head and "space: left-posterior-superior" in head
    assert "Segment0_Extent:=2 4 1 3 1 2" in head and "Segment1_LabelValue:=2" in head
    segs = read_slicer_seg(p)
    assert [(s.number, s.name) for s in segs] == [(1, "liver"), (2, "tumour:T1")]
    for s in segs:
        np.testing.assert_array_equal(s.mask.array, masks[s.name])
        assert s.mask.same_geometry(GRID)


def test_layered_layout_when_overlapping(tmp_path: Path) -> None:
    liver = _box(slice(0, 4), slice(0, 5), slice(0, 4))
    tumour = _box(slice(1, 3), slice(1, 3), slice(1, 3))  # inside the liver
    empty = np.zeros_like(liver)
    masks = {"liver": liver, "tumour:T1": tumour, "bile_duct": empty}
    p = write_slicer_seg(masks, GRID, tmp_path / "s.seg.nrrd")
    head = _header(p)
    assert "dimension: 4" in head and "kinds: list domain domain domain" in head
    assert "Segment2_Extent:=0 -1 0 -1 0 -1" in head
    segs = {s.name: s for s in read_slicer_seg(p)}
    for name, m in masks.items():
        np.testing.assert_array_equal(segs[name].mask.array, m)


def test_shared_layers_as_slicer_writes_them(tmp_path: Path) -> None:
    """Slicer packs non-overlapping segments into one layer with distinct label values."""
    a, b = _box(0, slice(None), slice(None)), _box(3, slice(None), slice(None))
    c = _box(slice(None), 2, slice(None))  # overlaps a and b
    data = np.zeros((2, 6, 5, 4), dtype=np.uint8)  # (layer, i, j, k)
    data[0][a.T] = 1
    data[0][b.T] = 2
    data[1][c.T] = 1
    header = {
        "space": "left-posterior-superior",
        "kinds": ["list", "domain", "domain", "domain"],
        "space directions": np.array([[np.nan] * 3, [1, 0, 0], [0, 2, 0], [0, 0, 3]], float),
        "space origin": np.array([1.0, 2.0, 3.0]),
        **_segment_fields(["a", "b", "c"], [1, 2, 1], [0, 0, 1]),
    }
    nrrd.write(str(tmp_path / "s.seg.nrrd"), data, header)
    segs = {s.name: s.mask.array for s in read_slicer_seg(tmp_path / "s.seg.nrrd")}
    np.testing.assert_array_equal(segs["a"], a)
    np.testing.assert_array_equal(segs["b"], b)
    np.testing.assert_array_equal(segs["c"], c)


def test_legacy_layers_without_layer_fields(tmp_path: Path) -> None:
    """Older Slicer files: one binary layer per segment, no LabelValue/Layer fields."""
    a, c = _box(0, 0, 0), _box(slice(None), 2, slice(None))
    data = np.stack([a.T, c.T]).astype(np.uint8)
    header = {
        "space": "left-posterior-superior",
        "space directions": np.array([[np.nan] * 3, [1, 0, 0], [0, 2, 0], [0, 0, 3]], float),
        "space origin": np.array([1.0, 2.0, 3.0]),
        "Segment0_Name": "a",
        "Segment1_Name": "c",
    }
    nrrd.write(str(tmp_path / "s.seg.nrrd"), data, header)
    segs = {s.name: s.mask.array for s in read_slicer_seg(tmp_path / "s.seg.nrrd")}
    np.testing.assert_array_equal(segs["a"], a)
    np.testing.assert_array_equal(segs["c"], c)


def test_ras_space_converted_to_lps(tmp_path: Path) -> None:
    # An oblique RAS grid; RAS (x, y, z) is LPS (-x, -y, z).
    c, s = np.cos(0.3), np.sin(0.3)
    dirs_ras = np.array([[c, s, 0.0], [-s * 2, c * 2, 0.0], [0.0, 0.0, 3.0]])  # rows: i, j, k
    origin_ras = np.array([10.0, 20.0, -5.0])
    lm = np.zeros((6, 5, 4), dtype=np.uint8)  # (i, j, k)
    lm[2, 3, 1] = 1
    header = {
        "space": "right-anterior-superior",
        "space directions": dirs_ras,
        "space origin": origin_ras,
        **_segment_fields(["tumour"], [1], [0]),
    }
    nrrd.write(str(tmp_path / "ras.seg.nrrd"), lm, header)
    (seg,) = read_slicer_seg(tmp_path / "ras.seg.nrrd")
    expected_ras = origin_ras + 2 * dirs_ras[0] + 3 * dirs_ras[1] + 1 * dirs_ras[2]
    np.testing.assert_allclose(seg.mask.centroid_lps_mm(), expected_ras * [-1, -1, 1])
    np.testing.assert_allclose(seg.mask.spacing_mm, (1.0, 2.0, 3.0))
    np.testing.assert_allclose(seg.mask.origin_lps_mm, (-10.0, -20.0, -5.0))
    assert np.linalg.det(seg.mask.direction) == pytest.approx(1.0)


def test_ras_seg_loads_onto_lps_ct(tmp_path: Path, aniso_case: Case) -> None:
    """A Slicer file saved in RAS matches a CT that SimpleITK reads in LPS, voxel for voxel."""
    ct = aniso_case.ct
    write_image(ct, tmp_path / "ct.nrrd")
    axes_lps = (ct.direction @ np.diag(ct.spacing_mm)).T
    flip = np.array([-1.0, -1.0, 1.0])
    data = np.zeros(ct.array.shape, dtype=np.uint8)
    data[aniso_case.structures["liver"]] = 1
    data[aniso_case.target_mask] = 2
    header = {
        "space": "right-anterior-superior",
        "space directions": axes_lps * flip,
        "space origin": np.asarray(ct.origin_lps_mm) * flip,
        **_segment_fields(["Liver", "Tumour 1"], [1, 2], [0, 0]),
    }
    nrrd.write(str(tmp_path / "seg.seg.nrrd"), data.transpose(2, 1, 0), header)
    doc = {
        "case_id": "ras",
        "ct": "ct.nrrd",
        "segmentation": {"file": "seg.seg.nrrd"},
        "structures": [
            {"name": "liver", "segment": "Liver"},
            {"name": "tumour", "id": "T1", "segment": "Tumour 1"},
        ],
        "target": "T1",
    }
    (tmp_path / "case.yaml").write_text(yaml.safe_dump(doc))
    case = load_case(tmp_path)
    np.testing.assert_array_equal(case.target_mask, aniso_case.target_mask)
    # The liver label was painted under the tumour; containment adds the tumour back.
    np.testing.assert_array_equal(case.structures["liver"], aniso_case.structures["liver"])


def _valid(tmp_path: Path) -> Path:
    return write_slicer_seg({"liver": _box(0, 0, 0)}, GRID, tmp_path / "ok.seg.nrrd")


def _edit_header(path: Path, old: str, new: str) -> Path:
    raw = path.read_bytes()
    cut = raw.index(b"\n\n")
    head = raw[:cut].decode()
    assert old in head
    path.write_bytes(head.replace(old, new).encode() + raw[cut:])
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.write_bytes(b"\x00garbage\xff" * 10) and p, "cannot read NRRD"),
        (lambda p: p.write_bytes(p.read_bytes()[:-20]) and p, "cannot read NRRD"),
        (
            lambda p: _edit_header(p, "space: left-posterior-superior", "space: scanner-xyz"),
            "expected left-posterior-superior or right-anterior-superior",
        ),
        (
            lambda p: _edit_header(p, "(0,0,3)", "(nan,nan,nan)"),
            "3 finite vectors",
        ),
        (
            lambda p: _edit_header(p, "(0,0,3)", "(0,0,0)"),
            "spacing must be positive",
        ),
        (lambda p: _edit_header(p, "Segment0_Layer:=0", "Segment0_Layer:=3"), "has 1 layers"),
        (
            lambda p: _edit_header(p, "Segment0_LabelValue:=1", "Segment0_LabelValue:=x"),
            "must be an integer",
        ),
        (
            lambda p: _edit_header(p, "Segment0_Name:=liver", "Other:=liver"),
            "not a 3D Slicer segmentation",
        ),
    ],
)
def test_bad_files(tmp_path: Path, mutate, message: str) -> None:
    p = mutate(_valid(tmp_path))
    with pytest.raises(InputError, match=message) as err:
        read_slicer_seg(p)
    assert str(p) in str(err.value) and "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_slicer_seg(tmp_path / "absent.seg.nrrd")


def test_corrupt_seg_via_cli(tmp_path: Path, aniso_case: Case, run_cli) -> None:
    from hepablate.case.writer import write_case

    write_case(aniso_case, tmp_path, "slicer_seg")
    seg = tmp_path / "segmentation.seg.nrrd"
    seg.write_bytes(seg.read_bytes()[:-100])
    res = run_cli("case", "check", tmp_path)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {seg.resolve()}: cannot read NRRD")
