"""The anatomical torso phantom (issue 12): determinism, structures, anatomical relations,
tumour positions and resolution independence."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from hepablate.anatomy.containment import liver_envelope
from hepablate.anatomy.tissues import load_tissue_table, tissue_map
from hepablate.anatomy.vocabulary import NO_GO, STRUCTURE_NAMES
from hepablate.case import load_case, summarise_case
from hepablate.case.writer import write_case
from hepablate.phantoms import (
    SEGMENTS,
    TUMOUR_POSITIONS,
    TorsoSpec,
    TorsoTumour,
    build_torso,
    build_torso_anatomy,
    torso_spec,
)

EXPECTED = {
    "body", "fat", "muscle", "diaphragm", "pleura", "lung", "pericardium", "heart", "spleen",
    "kidney", "pancreas", "stomach", "duodenum", "colon", "liver", "gallbladder", "bone",
    "cartilage", "aorta", "ivc", "portal_vein", "hepatic_vein", "hepatic_artery", "bile_duct",
}  # fmt: skip


@pytest.fixture(scope="module")
def dome():
    return build_torso_anatomy(torso_spec("dome", spacing_mm=2.0))


def _xyz(case, mask):
    idx = np.argwhere(mask)[:, ::-1].astype(float)
    return case.grid.index_to_lps(idx)


def _gap_mm(case, a, b) -> float:
    """Smallest centre-to-centre distance between voxels of a and b (mm)."""
    d = ndimage.distance_transform_edt(~b, sampling=tuple(case.grid.spacing_mm[::-1]))
    return float(d[a].min())


def test_deterministic():
    a = build_torso_anatomy(torso_spec("posterior", spacing_mm=3.0))
    b = build_torso_anatomy(torso_spec("posterior", spacing_mm=3.0))
    assert a.case.structures.keys() == b.case.structures.keys()
    for k in a.case.structures:
        assert np.array_equal(a.case.structures[k], b.case.structures[k]), k
    assert np.array_equal(a.case.ct.array, b.case.ct.array)
    assert np.array_equal(a.segments.array, b.segments.array)


def test_every_structure_present_known_and_mapped(dome):
    case = dome.case
    assert EXPECTED | {"tumour:T1"} == set(case.structures)
    for k, m in case.structures.items():
        assert m.any(), k
        assert k.split(":")[0] in STRUCTURE_NAMES
    # The tissue table maps every structure, so the engines run on the phantom.
    tm = tissue_map(case.structures, load_tissue_table())
    assert (tm[case.structures["body"]] >= 0).all()
    for k in ("heart", "pericardium", "lung", "pleura", "colon", "duodenum", "cartilage"):
        assert k in NO_GO
    for k in ("muscle", "fat", "diaphragm", "liver"):
        assert k not in NO_GO


def test_organs_do_not_overlap(dome):
    s = dome.case.structures
    organs = [k for k in s if k not in ("body", "liver")]
    total = sum(s[k].astype(np.int16) for k in organs)
    assert total.max() == 1
    # The liver holds only the tumour and intrahepatic vessels and ducts.
    for k in organs:
        if k in ("tumour:T1", "portal_vein", "hepatic_vein", "hepatic_artery", "bile_duct", "ivc"):
            continue
        assert not (s["liver"] & s[k]).any(), k


def test_volumes_are_adult_sized(dome):
    c = dome.case
    ranges = {
        "liver": (1200, 1900),
        "spleen": (100, 300),
        "kidney": (150, 400),  # both kidneys, their lower poles below the field of view
        "heart": (250, 700),
        "gallbladder": (15, 60),
        "lung": (700, 2500),  # lung bases only
    }
    for k, (lo, hi) in ranges.items():
        assert lo <= c.volume_ml(k) <= hi, (k, c.volume_ml(k))


def test_ribs_are_lateral_to_the_liver_with_intercostal_spaces(dome):
    c = dome.case
    liver = _xyz(c, c.structures["liver"])
    bone = c.structures["bone"]
    # On the patient's right, at the level of the liver, the lateral wall holds ribs beyond the
    # liver's lateral edge, and along the wall bone alternates with intercostal muscle.
    x_lat = liver[:, 0].min()
    i = int(np.rint(c.grid.lps_to_index([x_lat - 12.0, 0, 0])[0]))
    j = int(np.rint(c.grid.lps_to_index([0, 0.0, 0])[1]))
    column = bone[:, j, : i + 1].any(axis=1)  # ribs between the skin and the liver edge
    ks = np.flatnonzero(column)
    zs = c.grid.origin_lps_mm[2] + ks * c.grid.spacing_mm[2]
    in_liver_span = (zs > liver[:, 2].min()) & (zs < liver[:, 2].max())
    assert in_liver_span.sum() >= 3
    runs = np.split(ks, np.flatnonzero(np.diff(ks) > 1) + 1)
    assert len(runs) >= 4, "expected several ribs with intercostal spaces between them"
    gaps = [(b[0] - a[-1]) * c.grid.spacing_mm[2] for a, b in zip(runs, runs[1:], strict=False)]
    assert min(gaps) >= 8.0  # intercostal spaces wide enough for a needle
    assert (c.structures["cartilage"]).any()


def test_lungs_above_and_beside_the_dome_with_recess_below(dome):
    c = dome.case
    liver = _xyz(c, c.structures["liver"])
    lung = _xyz(c, c.structures["lung"])
    dome_z = liver[liver[:, 0] < 0, 2].max()
    # Lung lies above the dome ...
    above = lung[(np.abs(lung[:, 0] + 70) < 10) & (np.abs(lung[:, 1]) < 10)]
    assert above.size and above[:, 2].min() > dome_z
    # ... and the costophrenic recess reaches at least 40 mm below the dome, lateral to the
    # liver on the right.
    low = lung[(lung[:, 0] < 0) & (lung[:, 2] < dome_z - 40.0)]
    assert low.size
    for p in low[:: max(1, len(low) // 50)]:
        row = liver[(np.abs(liver[:, 2] - p[2]) < 1.5) & (np.abs(liver[:, 1] - p[1]) < 1.5)]
        if row.size:
            assert p[0] < row[:, 0].min() or p[1] > row[:, 1].max() - 1.5 or p[0] < -60
    assert _gap_mm(c, c.structures["pleura"], c.structures["diaphragm"]) <= 2.1


def test_heart_above_left_lobe_ivc_posterior(dome):
    c = dome.case
    seg = dome.segments.array
    left_lobe = (seg == 2) | (seg == 3)
    heart = c.structures["heart"]
    # The heart's footprint covers part of the left lobe, and everywhere above it.
    hf, lf = heart.any(axis=0), left_lobe.any(axis=0)
    both = hf & lf
    assert both.sum() * np.prod(c.grid.spacing_mm[:2]) > 500.0  # mm2
    k = np.arange(heart.shape[0])[:, None, None]
    h_low = np.where(heart, k, 10**6).min(axis=0)
    l_top = np.where(left_lobe, k, -1).max(axis=0)
    assert (h_low[both] > l_top[both]).all()
    assert _gap_mm(c, heart, c.structures["liver"]) >= 5.0  # diaphragm and pericardium between
    ivc, liver = _xyz(c, c.structures["ivc"]), _xyz(c, c.structures["liver"])
    at_liver = ivc[(ivc[:, 2] > 0) & (ivc[:, 2] < 40)]
    assert at_liver[:, 1].mean() > liver[:, 1].mean() + 10.0
    assert _gap_mm(c, c.structures["ivc"], c.structures["liver"] & ~c.structures["ivc"]) <= 2.1


def test_couinaud_segments(dome):
    seg = dome.segments.array
    c = dome.case
    vols = {s: float((seg == i).sum()) * c.grid.voxel_volume_ml for i, s in enumerate(SEGMENTS, 1)}
    assert all(v > 30 for v in vols.values()), vols
    assert (seg[c.structures["liver"]] > 0).all()
    assert not seg[~c.structures["liver"]].any()
    cen = {s: _xyz(c, seg == i).mean(axis=0) for i, s in enumerate(SEGMENTS, 1)}
    # Right liver (V to VIII) to the patient's right of IV, IV right of II/III.
    assert max(cen[s][0] for s in ("V", "VI", "VII", "VIII")) < cen["IV"][0] < cen["II"][0]
    assert cen["VII"][2] > cen["VI"][2] and cen["VIII"][2] > cen["V"][2]
    assert cen["VII"][1] > cen["VIII"][1]  # posterior sector behind the anterior one
    assert cen["I"][1] > cen["IV"][1]


@pytest.mark.parametrize("position", list(TUMOUR_POSITIONS))
def test_tumour_positions(position):
    a = build_torso_anatomy(torso_spec(position, diameter_mm=24.0, spacing_mm=2.0))
    c = a.case
    t = c.target_mask
    counts = np.bincount(a.segments.array[t], minlength=9)[1:]
    assert SEGMENTS[int(np.argmax(counts))] == TUMOUR_POSITIONS[position]
    env = liver_envelope(c.structures["liver"])
    inside = float((t & env).sum()) / float(t.sum())
    s = c.structures
    touch = 2.1  # adjacent voxels on a 2 mm grid
    outside_liver = ~c.structures["liver"] & ~t
    if position == "exophytic":
        assert 0.1 < inside < 0.5
    elif position in ("subcapsular", "caudate"):
        assert 0.5 < inside < 1.0
    else:
        assert inside > 0.97
    if position in ("subcapsular", "exophytic"):
        assert _gap_mm(c, t, outside_liver & s["body"]) <= touch  # touches the capsule
    expect = {
        "dome": ("diaphragm", 6.0),
        "posterior": ("diaphragm", 8.0),
        "caudate": ("ivc", touch),
        "perihilar": ("portal_vein", touch),
        "gallbladder": ("gallbladder", touch),
        "heart": ("pericardium", 12.0),
        "ivc": ("ivc", touch),
    }
    if position in expect:
        name, gap = expect[position]
        assert _gap_mm(c, t, s[name]) <= gap, (position, name)
    if position == "dome":
        assert _gap_mm(c, t, s["lung"]) <= 15.0
    # Equivalent diameter close to the requested one when the tumour is whole.
    d_eq = (6.0 * t.sum() * c.grid.voxel_volume_ml * 1000.0 / np.pi) ** (1 / 3)
    assert abs(d_eq - 24.0) < 2.0


def test_segment_position_and_explicit_centre():
    spec = TorsoSpec(
        spacing_mm=(3.0, 3.0, 3.0),
        tumours=[
            TorsoTumour(id="T1", position="segment:III", diameter_mm=15.0),
            TorsoTumour(id="T2", position="dome", diameter_mm=10.0),
        ],
    )
    a = build_torso_anatomy(spec)
    seg = a.segments.array[a.case.structures["tumour:T1"]]
    assert np.bincount(seg, minlength=9)[3] > 0.9 * seg.size
    assert a.case.structures["tumour:T2"].any()
    with pytest.raises(ValueError, match="unknown tumour position"):
        TorsoTumour(position="kidney")


def test_anisotropic_spacing_gives_the_same_anatomy(dome):
    iso = dome.case
    an = build_torso(torso_spec("dome", spacing_mm=(1.4, 1.4, 2.5)))
    assert an.grid.spacing_mm == (1.4, 1.4, 2.5)
    for k in ("liver", "lung", "heart", "spleen", "kidney", "stomach", "bone", "tumour:T1"):
        a, b = iso.volume_ml(k), an.volume_ml(k)
        assert abs(a / b - 1.0) < 0.04, (k, a, b)
    for k in ("liver", "heart", "tumour:T1"):
        ca = iso.grid.with_array(iso.structures[k]).centroid_lps_mm()
        cb = an.grid.with_array(an.structures[k]).centroid_lps_mm()
        assert np.linalg.norm(ca - cb) < 1.5, k


def test_ct_intensities(dome):
    c = dome.case
    ct = c.ct.array
    med = {k: float(np.median(ct[c.structures[k]])) for k in ("liver", "lung", "fat", "aorta")}
    assert med["lung"] < -700 and med["fat"] < -50 and 80 < med["liver"] < 130
    assert med["aorta"] > med["liver"]
    assert float(np.median(ct[~c.structures["body"]])) < -950
    assert ct.dtype == np.int16


def test_torso_round_trips_through_a_case_directory(tmp_path):
    case = build_torso(torso_spec("perihilar", spacing_mm=3.0))
    write_case(case, tmp_path / "c", "nifti")
    back = load_case(tmp_path / "c")
    for k in case.structures:
        assert np.array_equal(back.structures[k], case.structures[k]), k
    s = summarise_case(back)
    assert s.nearest_vessel == "portal_vein" and s.nearest_vessel_gap_mm == pytest.approx(0.0)


def test_cli_torso_preset(tmp_path, capsys):
    from hepablate.cli import main
    from hepablate.imaging.images import read_image

    out = tmp_path / "torso"
    argv = ["phantom", "--preset", "torso", "--position", "ivc", "--voxel-mm", "3,3,4"]
    assert main([*argv, "--out", str(out)]) == 0
    case = load_case(out)
    assert case.grid.spacing_mm == (3.0, 3.0, 4.0)
    assert "heart" in case.structures and "tumour:T1" in case.structures
    seg = read_image(out / "couinaud.nii.gz")
    assert set(np.unique(seg.array)) == set(range(9))
    bad = ["phantom", "--preset", "torso", "--position", "x", "--out", str(tmp_path / "b")]
    assert main(bad) == 2
    assert "unknown tumour position" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def _phi_deg(p: np.ndarray) -> np.ndarray:
    """Angle of each point about the body axis from the posterior midline (deg)."""
    return np.degrees(np.arctan2(np.abs(p[:, 0]), p[:, 1]))


def test_lung_base_rises_anteriorly_and_the_recess_below_it_is_pleura(dome):
    """Quiet breathing: the lung's lower border lies at the 10th rib posteriorly, the 8th at the
    mid-axillary and the 6th at the midclavicular line; the pleural recess about two ribs
    lower holds no lung (torso.LUNG_BASE_PHI_Z)."""
    c = dome.case
    lung = _xyz(c, c.structures["lung"])
    pleura = _xyz(c, c.structures["pleura"])
    phi_l, phi_p = _phi_deg(lung), _phi_deg(pleura)
    low_post = lung[phi_l < 45, 2].min()
    low_ant = lung[(phi_l > 140) & (phi_l < 165), 2].min()
    assert low_ant >= low_post + 40.0, (low_post, low_ant)
    # Pleura (crossable with a warning) fills the recess below the lung laterally.
    lateral = (phi_p > 80) & (phi_p < 110)
    assert pleura[lateral, 2].min() <= lung[(phi_l > 80) & (phi_l < 110), 2].min() - 30.0


def test_left_lobe_reaches_below_the_xiphoid_with_a_subxiphoid_path_to_segment_iii():
    from hepablate.placement.approach import approaches
    from hepablate.placement.paths import PathMap

    a = build_torso_anatomy(torso_spec("segment:III", diameter_mm=10.0, spacing_mm=2.0))
    c = a.case
    liver = _xyz(c, c.structures["liver"])
    bone = _xyz(c, c.structures["bone"])
    xiphoid_low = bone[(np.abs(bone[:, 0]) <= 7) & (bone[:, 1] < -40), 2].min()
    epigastric = liver[(np.abs(liver[:, 0]) < 30) & (liver[:, 1] < -40)]
    assert epigastric[:, 2].min() <= xiphoid_low - 15.0
    # The tumour lies in segment III, away from the vessels, with a clear anterior path that
    # crosses neither lung nor pleura.
    t = _xyz(c, c.structures["tumour:T1"]).mean(axis=0)
    k, j, i = np.round(c.grid.lps_to_index(t[None])[0][::-1]).astype(int)
    assert a.segments.array[k, j, i] == SEGMENTS.index("III") + 1
    pm = PathMap(c, 3.0)
    clear = [ap for ap in approaches(t, pm, 50.0) if ap.clear and ap.side == "anterior"]
    assert clear
    best = min(clear, key=lambda ap: ap.depth_mm)
    assert not pm.check_path(t, best.direction_lps).crosses
