"""Entry landmarks (`placement.landmarks`) and path passage (`placement.passage`) on the
anatomical torso phantom, whose ribs are built at known heights, and on the real CT, whose
TotalSegmentator labels number its ribs."""

from __future__ import annotations

import numpy as np
import pytest

from hepablate.phantoms.real_ct import RIB_LABELS, build_real_ct_case, load_real_ct
from hepablate.phantoms.torso import _rib_centre_z, build_torso, torso_spec
from hepablate.placement.landmarks import (
    describe_entry,
    needle_angles_deg,
    number_ribs,
    rib_space,
    skin_points_lps_mm,
)
from hepablate.placement.passage import path_structures, structure_clearances
from hepablate.placement.paths import PathMap


@pytest.fixture(scope="module")
def torso():
    return build_torso(torso_spec("subcapsular", spacing_mm=2.0))


@pytest.fixture(scope="module")
def cage(torso):
    return number_ribs(torso)


def _rib_z(n: int, phi_deg: float) -> float:
    return float(_rib_centre_z(n, np.radians(np.array([phi_deg])))[0][0])


def test_ribs_are_numbered_as_the_phantom_builds_them(cage) -> None:
    sides = {r.side for r in cage.ribs}
    assert sides == {"left", "right"}
    for r in cage.ribs:
        p = r.points_lps_mm
        phi = np.degrees(np.arctan2(np.abs(p[:, 0]), p[:, 1]))
        near = np.abs(phi - 60.0) < 5.0
        assert near.any()
        # The rib's height at 60 deg from the posterior midline is that of the rib it is named.
        assert abs(float(p[near, 2].mean()) - _rib_z(r.number, 60.0)) < 3.0, r.number
    assert sorted(r.number for r in cage.ribs if r.side == "right") == list(range(4, 13))


def _entry_at(
    case, phi_deg: float, z_mm: float, side: float = -1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(skin entry, tip) of a horizontal needle aimed at the body axis from azimuth `phi_deg`
    (0 posterior midline, 180 anterior midline) on the patient's right (side -1)."""
    phi = np.radians(phi_deg)
    out = np.array([side * np.sin(phi), np.cos(phi), 0.0])  # outward, horizontal
    tip = np.array([0.0, 0.0, z_mm]) + 60.0 * out
    tip[2] = z_mm
    d = -out
    entry = PathMap(case, 3.0).skin_entry(tip, d)
    assert entry is not None
    return entry, tip


@pytest.mark.parametrize("upper", [8, 9, 10])
def test_a_needle_between_two_ribs_names_their_intercostal_space(torso, cage, upper) -> None:
    phi = 100.0  # lateral, a little anterior: between the anterior and mid-axillary lines
    # Half-way between the two ribs at the depth the needle crosses the rib ring (23 mm).
    z = 0.5 * (_rib_z(upper, phi) + _rib_z(upper + 1, phi))
    entry, tip = _entry_at(torso, phi, z)
    text = rib_space(cage, entry, tip)
    assert text.startswith(f"{upper}th intercostal space"), text
    assert f"between ribs {upper} and {upper + 1}" in text


def test_a_needle_at_a_rib_is_not_called_intercostal(torso, cage) -> None:
    entry, tip = _entry_at(torso, 100.0, _rib_z(9, 100.0))
    assert rib_space(cage, entry, tip) == "through rib 9 (right)"


def test_a_needle_below_the_lowest_ribs_is_subcostal(torso, cage) -> None:
    phi = 100.0
    entry, tip = _entry_at(torso, phi, _rib_z(11, phi) - 25.0)
    assert rib_space(cage, entry, tip).startswith("subcostal")


def test_angles_in_degrees() -> None:
    d = np.array([np.sin(np.radians(30)), np.cos(np.radians(30)), 0.0])
    ip, towards, cc = needle_angles_deg(d)
    assert ip == pytest.approx(30.0) and towards == "left" and cc == pytest.approx(0.0)
    d = np.array([-0.5, 0.5, np.sqrt(0.5)])  # 45 deg cranial, towards the patient's right
    ip, towards, cc = needle_angles_deg(d)
    assert ip == pytest.approx(45.0) and towards == "right" and cc == pytest.approx(45.0)
    assert needle_angles_deg(np.array([0.0, 1.0, 0.0]))[1] == ""


def test_entry_description_on_the_torso(torso, cage) -> None:
    phi = 100.0
    z = 0.5 * (_rib_z(9, phi) + _rib_z(10, phi))
    entry, tip = _entry_at(torso, phi, z)
    de = describe_entry(torso, entry, tip, cage, skin_points_lps_mm(torso))
    assert de.side == "right"
    # The phantom is centred on the body axis: the entry's distance from the midline is |x|.
    assert de.from_midline_mm == pytest.approx(abs(float(entry[0])), abs=2.5)
    assert de.xiphoid.endswith("the xiphoid tip")
    assert de.depth_to_tip_mm == pytest.approx(float(np.linalg.norm(tip - entry)))
    assert de.craniocaudal_deg == pytest.approx(0.0, abs=1e-6)
    # 100 deg from the posterior midline is just anterior to the widest point (90 deg): a
    # lateral entry, described against the axillary lines.
    assert "AAL" in de.line and "MAL" in de.line, de.line
    assert de.depth_to_capsule_mm is not None and 20.0 < de.depth_to_capsule_mm < 60.0


def test_passage_and_clearances_agree_with_the_path_check(torso) -> None:
    entry, tip = _entry_at(torso, 120.0, -60.0)
    d = (tip - entry) / np.linalg.norm(tip - entry)
    passed = path_structures(torso, entry, tip)
    assert passed[0].from_mm == 0.0
    assert passed[-1].to_mm == pytest.approx(float(np.linalg.norm(tip - entry)))
    assert all(
        a.to_mm == pytest.approx(b.from_mm) for a, b in zip(passed, passed[1:], strict=False)
    )
    names = [p.name for p in passed]
    assert "fat" in names and "muscle" in names
    clear = structure_clearances(torso, tip, d, entry)
    near = [c.clearance_mm for c in clear if c.clearance_mm is not None]
    assert near, "some no-go structure lies within reach of a path through the body wall"
    # The smallest per-structure clearance is the library's clearance of the whole path.
    chk = PathMap(torso, 3.0).check_path(tip, d)
    assert min(near) == pytest.approx(chk.clearance_mm, abs=1e-6)
    assert near == sorted(near)


def test_real_ct_ribs_match_their_totalsegmentator_numbers() -> None:
    case = build_real_ct_case("under_ribs")
    _, labels = load_real_ct()
    cage = number_ribs(case)
    assert len(cage.ribs) >= 8
    for r in cage.ribs:
        ijk = np.rint(case.grid.lps_to_index(r.points_lps_mm)).astype(int)
        lab = labels[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
        lab = lab[np.isin(lab, list(RIB_LABELS))]
        vals, counts = np.unique(lab, return_counts=True)
        ts = int(vals[int(np.argmax(counts))])  # left 1-12: 92-103, right 1-12: 104-115
        side, number = ("left", ts - 91) if ts < 104 else ("right", ts - 103)
        assert (r.side, r.number) == (side, number)
