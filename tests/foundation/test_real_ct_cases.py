"""Planning cases on a real CT (issue 12): the TotalSegmentator example in examples/real-ct
with synthetic tumours inserted into the real liver."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from hepablate.anatomy.containment import tumour_liver_relation
from hepablate.anatomy.vocabulary import STRUCTURE_NAMES
from hepablate.case import load_case
from hepablate.imaging.images import read_image
from hepablate.phantoms.real_ct import (
    EXAMPLE_SLICE_OFFSET,
    REAL_CT_POSITIONS,
    RIB_LABELS,
    TOTALSEGMENTATOR_TO_HEPABLATE,
    body_from_ct,
    build_real_ct_case,
    default_real_ct_dir,
    find_slice_offset,
    segmentation_fit,
    write_real_ct_cases,
)

DATA = default_real_ct_dir()


@pytest.fixture(scope="module")
def raw():
    return read_image(DATA / "example_ct.nii.gz"), read_image(DATA / "example_seg.nii.gz")


def test_files_and_attribution_are_in_the_repository():
    readme = (DATA / "README.md").read_text()
    assert "Apache License 2.0" in readme and "0e65a448d557382b1e925276212b3bec7f5aff83" in readme
    assert (DATA / "example_ct.nii.gz").stat().st_size > 1_000_000


def test_segmentation_belongs_on_the_top_slices(raw):
    ct, seg = raw
    assert find_slice_offset(ct.array, seg.array) == EXAMPLE_SLICE_OFFSET == 82
    assert segmentation_fit(ct.array, seg.array, 82) > 1.9
    assert segmentation_fit(ct.array, seg.array, 0) < 0.6  # where its header puts it


def test_every_label_is_mapped_to_the_vocabulary(raw):
    _, seg = raw
    present = {int(v) for v in np.unique(seg.array)} - {0}
    unmapped = present - set(TOTALSEGMENTATOR_TO_HEPABLATE)
    assert unmapped == {8, 9}  # adrenal glands: soft tissue
    assert set(TOTALSEGMENTATOR_TO_HEPABLATE.values()) <= set(STRUCTURE_NAMES)


def test_body_from_ct_is_the_patient_not_the_couch(raw):
    ct, _ = raw
    sub = ct.array[82:]
    body = body_from_ct(sub)
    lab, n = ndimage.label(body)
    assert n == 1
    # Lungs (air inside the body) are filled in; outside air is not.
    assert body[sub < -900].mean() < 0.6 and body.mean() > 0.3
    assert not body[:, 0, :].any() and not body[:, :, 0].any()


@pytest.mark.parametrize("position", list(REAL_CT_POSITIONS))
def test_real_ct_cases_build_and_pass_case_check(position, tmp_path, capsys):
    from hepablate.cli import main

    case = build_real_ct_case(position, 20.0)
    t = case.target_mask
    s = case.structures
    sp = tuple(case.grid.spacing_mm[::-1])
    assert abs(case.volume_ml("tumour:T1") - np.pi / 6 * 8.0) < 1.2  # 20 mm sphere on 3 mm
    inside, contact, verdict = tumour_liver_relation(t, s["liver"], case.grid.spacing_mm)
    if position == "subcapsular":
        # A label-map tumour at the capsule: a notch, not a hole, in the liver; accepted by the
        # surface-contact rule.
        assert verdict == "subcapsular" and contact > 0.25
    else:
        assert verdict == "inside" and inside > 0.95
    for k, m in s.items():
        if k != "body":
            assert not (m & ~s["body"]).any(), k

    def gap(mask):
        return float(ndimage.distance_transform_edt(~mask, sampling=sp)[t].min())

    voxel = 3.0
    if position == "portal":
        assert gap(s["portal_vein"]) <= 2 * voxel
    if position == "ivc":
        assert gap(s["ivc"]) <= 2 * voxel
    if position == "gallbladder":
        assert gap(s["gallbladder"]) <= 2 * voxel
    if position == "under_ribs":
        assert gap(s["bone"] | s["cartilage"]) <= 10.0
    if position == "subcapsular":
        assert gap(~s["liver"] & ~t) <= voxel
    paths = write_real_ct_cases(tmp_path, [position])
    assert main(["case", "check", str(paths[0].parent)]) == 0
    out = capsys.readouterr().out
    assert "target T1" in out
    back = load_case(paths[0].parent)
    assert ("subcapsular or exophytic" in " ".join(back.notes)) == (position == "subcapsular")
    assert np.array_equal(back.target_mask, t)
    assert back.grid.same_geometry(case.grid)


def test_ribs_are_labelled_and_lateral(raw):
    case = build_real_ct_case("under_ribs")
    _, seg = raw
    ribs = np.isin(seg.array, list(RIB_LABELS))
    assert ribs.any()
    liver_x = case.grid.with_array(case.structures["liver"]).bounding_box_lps_mm()
    rib_x = case.grid.with_array(ribs).bounding_box_lps_mm()
    assert rib_x[0][0] < liver_x[0][0]  # ribs reach beyond the liver on the patient's right
