import json

import numpy as np
import pytest

from hepablate.case import load_case, summarise_case
from hepablate.phantoms import (
    BlockSpec,
    PhantomSpec,
    TumourSpec,
    build_block,
    build_phantom,
    ire_example_spec,
    laser_example_spec,
)

SMALL = dict(
    fov_mm=(120.0, 100.0, 80.0),
    body_semi_axes_mm=(58.0, 48.0),
    liver_centre_lps_mm=(-10.0, 0.0, 0.0),
    liver_semi_axes_mm=(40.0, 35.0, 30.0),
    gallbladder_centre_lps_mm=None,
    tubes=[],
)


def test_phantom_is_deterministic():
    a, b = build_phantom(ire_example_spec()), build_phantom(ire_example_spec())
    assert a.structures.keys() == b.structures.keys()
    for k in a.structures:
        assert np.array_equal(a.structures[k], b.structures[k])
    assert np.array_equal(a.ct.array, b.ct.array)


@pytest.mark.parametrize("spacing, tol", [(2.0, 0.06), (1.0, 0.02), (0.5, 0.01)])
def test_tumour_volume_converges_to_sphere(spacing, tol):
    d = 20.0
    spec = PhantomSpec(
        **SMALL,
        spacing_mm=(spacing,) * 3,
        tumours=[TumourSpec(id="T1", centre_lps_mm=(-10.3, 0.2, 0.1), diameter_mm=d)],
    )
    case = build_phantom(spec)
    expected_ml = np.pi / 6 * d**3 / 1000
    assert abs(case.volume_ml("tumour:T1") / expected_ml - 1) < tol


def test_ellipsoid_tumour_axes():
    spec = PhantomSpec(
        **SMALL,
        tumours=[TumourSpec(id="T1", centre_lps_mm=(-10.0, 0, 0), semi_axes_mm=(15, 10, 8))],
    )
    case = build_phantom(spec)
    lo, hi = case.grid.with_array(case.target_mask).bounding_box_lps_mm()
    assert np.allclose(hi - lo, [30 - 1, 20 - 1, 16 - 1], atol=1.01)


def test_examples_specs_match_issue():
    ire = build_phantom(ire_example_spec())
    s = summarise_case(ire)
    assert abs(s.target_equivalent_diameter_mm - 25) < 1
    assert s.nearest_vessel == "portal_vein" and s.nearest_vessel_gap_mm == 0.0
    assert s.nearest_bile_duct_gap_mm == 0.0
    laser = summarise_case(build_phantom(laser_example_spec()))
    assert abs(laser.target_equivalent_diameter_mm - 35) < 1
    assert laser.nearest_vessel_gap_mm >= 15


def test_block_is_homogeneous():
    case = build_block(BlockSpec(size_mm=(30, 30, 30), spacing_mm=(1, 1, 1)))
    assert case.structures["liver"].all() and case.structures["body"].all()
    assert case.target_mask.sum() > 0


@pytest.mark.parametrize("name, diameter", [("ire-perihilar", 25.0), ("laser-peripheral", 35.0)])
def test_bundled_examples_check(run_cli, name, diameter):
    res = run_cli("case", "check", f"examples/{name}", "--json")
    assert res.code == 0, res.err
    s = json.loads(res.out)
    keys = {st["key"] for st in s["structures"]}
    assert {"body", "liver", "tumour:T1", "portal_vein", "hepatic_vein", "gallbladder"} <= keys
    if name == "ire-perihilar":
        assert "bile_duct" in keys
        assert s["nearest_bile_duct_gap_mm"] == 0.0 and s["nearest_vessel_gap_mm"] == 0.0
    assert abs(s["target_equivalent_diameter_mm"] - diameter) < 1.0
    assert abs(s["target_longest_diameter_mm"] - diameter) < 1.5


def test_bundled_examples_are_what_the_builder_makes():
    for name, spec in [
        ("ire-perihilar", ire_example_spec()),
        ("laser-peripheral", laser_example_spec()),
    ]:
        on_disk = load_case(f"examples/{name}")
        built = build_phantom(spec)
        for k, m in built.structures.items():
            assert abs(on_disk.structures[k].sum() / m.sum() - 1) < 0.01, (name, k)


def test_phantom_cli_writes_case(run_cli, tmp_path):
    res = run_cli(
        "phantom",
        "--out",
        tmp_path / "p",
        "--tumour-diameter-mm",
        "18",
        "--vessel-gap-mm",
        "3",
        "--duct-gap-mm",
        "6",
        "--spacing-mm",
        "2",
        "--json",
    )
    assert res.code == 0, res.err
    s = summarise_case(load_case(tmp_path / "p"))
    assert abs(s.target_equivalent_diameter_mm - 18) < 1.5
    assert abs(s.nearest_vessel_gap_mm - 3) <= 2.0
    assert abs(s.nearest_bile_duct_gap_mm - 6) <= 2.0


def test_phantom_cli_bad_option_writes_nothing(run_cli, tmp_path):
    res = run_cli("phantom", "--out", tmp_path / "p", "--tumour-diameter-mm", "-3")
    assert res.code == 2 and "tumour-diameter-mm" in res.err and "Traceback" not in res.err
    assert not (tmp_path / "p").exists()
    res = run_cli("phantom", "--out", tmp_path / "p", "--format", "jpeg")
    assert res.code == 2 and "--format" in res.err
    assert not (tmp_path / "p").exists()
    assert not any(tmp_path.iterdir())


def test_block_cli(run_cli, tmp_path):
    res = run_cli("phantom", "--preset", "block", "--size-mm", "30", "--out", tmp_path / "b")
    assert res.code == 0, res.err
    case = load_case(tmp_path / "b")
    assert case.structures["liver"].all()


def test_help_everywhere(run_cli):
    for args in (
        ["--help"],
        ["case", "--help"],
        ["case", "check", "--help"],
        ["phantom", "--help"],
    ):
        res = run_cli(*args)
        assert res.code == 0 and "Usage" in res.out
    assert run_cli("--version").out.startswith("hepablate ")
