"""Containment rules for tumours at the liver surface (issue 12): a subcapsular or exophytic
tumour that touches the liver is accepted with a note, from a label map or from per-structure
masks alike; a tumour that does not touch the liver is still an error."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.anatomy.containment import surface_contact_fraction, tumour_liver_relation
from hepablate.case import load_case, summarise_case
from hepablate.case.writer import write_case
from hepablate.errors import InputError
from hepablate.phantoms import build_torso, torso_spec


@pytest.fixture(scope="module")
def exophytic():
    return build_torso(torso_spec("exophytic", diameter_mm=24.0, spacing_mm=3.0))


def test_surface_contact_fraction_of_a_cube_half_in_liver():
    # A 4x4x4 cube whose lower half (k) borders a liver slab on one side only.
    m = np.zeros((8, 8, 8), bool)
    m[2:6, 2:6, 2:6] = True
    liver = np.zeros_like(m)
    liver[:, :, :2] = True  # touches the cube's x- face (16 faces of 96)
    assert surface_contact_fraction(m, liver, (1.0, 1.0, 1.0)) == pytest.approx(16 / 96)
    # Anisotropic voxels weight the faces by their area: x faces are 1 x 3 mm.
    f = surface_contact_fraction(m, liver, (1.0, 1.0, 3.0))
    assert f == pytest.approx(16 * 3 / (2 * 16 * 1 + 4 * 16 * 3))


@pytest.mark.parametrize("fmt", ["nifti", "masks"])
def test_exophytic_tumour_accepted_with_a_note(exophytic, tmp_path, fmt):
    inside, contact, verdict = tumour_liver_relation(
        exophytic.target_mask, exophytic.structures["liver"], exophytic.grid.spacing_mm
    )
    assert inside < 0.5 and verdict == "subcapsular" and contact >= 0.2
    write_case(exophytic, tmp_path / fmt, fmt)
    case = load_case(tmp_path / fmt)
    assert len(case.notes) == 1 and "subcapsular or exophytic" in case.notes[0]
    assert summarise_case(case).notes == case.notes
    assert np.array_equal(case.target_mask, exophytic.target_mask)


def test_subcapsular_label_map_case_from_issue(tmp_path):
    """A subcapsular tumour given as its own label in a label map: most of it is a notch in
    the liver surface, not a hole, so little of it is inside the liver envelope; accepted."""
    case = build_torso(torso_spec("subcapsular", diameter_mm=30.0, spacing_mm=3.0))
    # Push the tumour outwards so that only a small part is enclosed by the liver.
    t = case.target_mask
    shifted = np.zeros_like(t)
    shifted[:-5] = t[5:]  # 15 mm down (k is z): most of it below the liver's inferior surface
    case.structures["tumour:T1"] = shifted & case.structures["body"]
    case.structures["liver"] &= ~shifted
    inside, contact, verdict = tumour_liver_relation(
        shifted, case.structures["liver"], case.grid.spacing_mm
    )
    assert inside < 0.2 and contact > 0.3 and verdict == "subcapsular"
    write_case(case, tmp_path / "c", "nifti")
    back = load_case(tmp_path / "c")
    assert back.notes and "accepted" in back.notes[0]


def test_tumour_not_touching_the_liver_is_an_error(exophytic, tmp_path):
    case = exophytic
    t = case.target_mask
    moved = np.zeros_like(t)
    moved[:-8] = t[8:]  # 24 mm further down: free of the liver
    case2 = build_torso(torso_spec("exophytic", diameter_mm=24.0, spacing_mm=3.0))
    case2.structures["tumour:T1"] = moved & ~case2.structures["liver"]
    write_case(case2, tmp_path / "c", "masks")
    with pytest.raises(InputError, match="outside the liver .* surface on the liver"):
        load_case(tmp_path / "c")


def test_tumour_inside_has_no_note():
    from hepablate.phantoms import build_phantom, ire_example_spec

    case = build_phantom(ire_example_spec())
    _, contact, verdict = tumour_liver_relation(
        case.target_mask, case.structures["liver"], case.grid.spacing_mm
    )
    assert verdict == "inside" and contact > 0.9
