import numpy as np
import pytest

from hepablate.evaluation import (
    coverage,
    evaluate_criteria,
    evaluate_zone,
    field_volume_histogram,
    load_criteria,
    load_planning_defaults,
    min_margin_mm,
    target_region,
)


def _sphere(n: int, r: float, spacing: float = 1.0, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    ax = (np.arange(n) - (n - 1) / 2) * spacing
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= r * r


@pytest.mark.parametrize("r1,r2,sp", [(8.0, 13.0, 1.0), (10.0, 12.0, 1.0), (6.0, 16.0, 0.5)])
def test_min_margin_concentric_spheres_equals_radius_difference(r1, r2, sp):
    n = int(2 * (r2 + 4) / sp) | 1
    tumour = _sphere(n, r1, sp)
    zone = _sphere(n, r2, sp)
    m = min_margin_mm(tumour, zone, (sp, sp, sp))
    assert abs(m - (r2 - r1)) <= sp


def test_min_margin_negative_when_uncovered():
    sp = 1.0
    tumour = _sphere(41, 10.0)
    zone = _sphere(41, 6.0)
    m = min_margin_mm(tumour, zone, (sp, sp, sp))
    assert abs(m - (6.0 - 10.0)) <= sp
    # Zone shifted sideways: tumour pokes out by 3 mm on one side.
    zone2 = _sphere(41, 12.0, centre=(5.0, 0, 0))
    m2 = min_margin_mm(tumour, zone2, (sp, sp, sp))
    assert -4.0 <= m2 <= -2.0


def test_coverage_and_target_region_clipped_to_liver_and_lumens():
    sp = (1.0, 1.0, 1.0)
    tumour = _sphere(41, 6.0)
    liver = np.zeros_like(tumour)
    liver[:, :, :25] = True  # liver ends 4.5 mm right of the centre: capsule side
    vessel = np.zeros_like(tumour)
    vessel[:, 12:15, :] = True  # a lumen crossing the margin
    vessel &= ~tumour
    structs = {"tumour:T1": tumour, "liver": liver | tumour, "portal_vein": vessel}
    region = target_region(structs, "tumour:T1", 5.0, sp)
    assert region[tumour].all()
    assert not region[:, :, 30:].any()  # outside the liver
    assert not (region & vessel).any()
    full = _sphere(41, 11.6)
    assert not (region & ~full).any()  # margin 5 mm from the surface
    assert coverage(full, region) == 1.0
    assert coverage(tumour, region) == pytest.approx(tumour.sum() / region.sum())


def test_evaluate_zone_volumes():
    sp = (1.0, 1.0, 1.0)
    tumour = _sphere(41, 5.0)
    liver = np.ones_like(tumour)
    zone = _sphere(41, 12.0)
    m = evaluate_zone(zone, {"tumour:T1": tumour, "liver": liver}, "tumour:T1", 5.0, sp)
    assert m.target_coverage == 1.0 and m.tumour_coverage == 1.0
    assert m.ablation_volume_ml == pytest.approx(4 / 3 * np.pi * 12**3 / 1000, rel=0.03)
    # The margin is measured from the tumour surface; on a 1 mm grid the region's radius is
    # 10 mm within half a voxel (conservative side: larger).
    shell = [4 / 3 * np.pi * (12**3 - r**3) / 1000 for r in (10.6, 9.8)]
    assert shell[0] <= m.non_target_liver_ml <= shell[1]
    assert abs(m.min_margin_mm - 7.0) <= 1.0
    rows = _criteria(m, margin_mm=5.0)
    assert all(r.passed for r in rows if r.metric in ("target_coverage", "tumour_coverage"))


def test_criteria_levels():
    sp = (1.0, 1.0, 1.0)
    tumour = _sphere(41, 8.0)
    liver = np.ones_like(tumour)
    zone = _sphere(41, 9.0)
    m = evaluate_zone(zone, {"tumour:T1": tumour, "liver": liver}, "tumour:T1", 5.0, sp)
    assert m.target_coverage < 0.95
    rows = {r.code: r for r in _criteria(m, margin_mm=5.0)}
    assert not rows["coverage_below_required"].passed
    assert rows["coverage_below_required"].level == "error"
    assert rows["tumour_not_covered"].passed and not rows["margin_below_required"].passed
    assert "coverage_probability" not in {r.metric for r in rows.values()}  # none given


def _criteria(m, margin_mm):
    """The packaged criteria on zone metrics alone (no modality metrics)."""
    return evaluate_criteria(
        load_criteria(),
        "ire",
        m.to_dict(),
        {"required_coverage": 0.99, "required_margin_mm": margin_mm},
    )


def test_field_volume_histogram_cumulative():
    vals = np.arange(100, dtype=float).reshape(1, 10, 10)
    m = np.ones_like(vals, dtype=bool)
    fvh = field_volume_histogram(vals, {"all": m, "empty": np.zeros_like(m)}, np.array([0, 50, 99]))
    assert fvh.fraction["all"] == [1.0, 0.5, 0.01]
    assert "empty" not in fvh.fraction
    assert fvh.fraction_at("all", 50) == 0.5


def test_planning_defaults_have_sources():
    d = load_planning_defaults()
    for p in d.parameters():
        assert p.source
    assert d.placement_error_mm.value == 2.0


def test_geodesic_margin_does_not_cross_a_lumen():
    sp = (1.0, 1.0, 1.0)
    tumour = _sphere(41, 5.0)
    vessel = np.zeros_like(tumour)
    vessel[:, :, 26:30] = True  # a wall 1 mm from the tumour surface, 4 mm thick
    structs = {"tumour:T1": tumour, "liver": np.ones_like(tumour), "portal_vein": vessel}
    geo = target_region(structs, "tumour:T1", 8.0, sp)
    eucl = target_region(structs, "tumour:T1", 8.0, sp, geodesic=False)
    # Liver behind the vessel (x index 30..33) is within 8 mm straight but not through tissue.
    assert eucl[20, 20, 30:33].any()
    assert not geo[20, 20, 30:].any()
    # Away from the vessel the two agree.
    assert (geo[:, :, :24] == eucl[:, :, :24]).all()
