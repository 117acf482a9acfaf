"""`hepablate simulate`: outputs in the case frame, bad inputs exit 2 and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from hepablate.case.writer import write_case
from hepablate.phantoms import build_phantom, ire_example_spec


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory) -> Path:
    spec = ire_example_spec().model_copy(update={"spacing_mm": (2.0, 2.0, 2.0)})
    d = tmp_path_factory.mktemp("case")
    write_case(build_phantom(spec), d, "nifti")
    return d


def _plan(**over) -> dict:
    plan = {
        "format_version": 1,
        "modality": "ire",
        "probes": [
            {
                "id": "A",
                "tip_lps_mm": [-47.5, 0.0, 10.0],
                "direction_lps": [0, 0, 1],
                "exposure_mm": 20.0,
            },
            {
                "id": "B",
                "tip_lps_mm": [-32.5, 0.0, 10.0],
                "direction_lps": [0, 0, 1],
                "exposure_mm": 20.0,
            },
            {
                "id": "C",
                "tip_lps_mm": [-40.0, 10.0, 10.0],
                "direction_lps": [0, 0, 1],
                "exposure_mm": 20.0,
            },
        ],
        "pairs": [
            {"anode": "A", "cathode": "B", "voltage_v": 2250, "pulses": 90},
            {"anode": "B", "cathode": "C", "voltage_v": 2000, "pulses": 90},
        ],
        "ire_simulation": {
            "conductivity_model": "nonlinear",
            "grid_spacing_mm": 2.0,
            "roi_padding_mm": 15.0,
            "thermal": True,
        },
    }
    plan.update(over)
    return plan


def _write(tmp_path: Path, plan: dict) -> Path:
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan))
    return p


def test_simulate_writes_plan_and_images(run_cli, case_dir, tmp_path):
    out = tmp_path / "out"
    res = run_cli(
        "simulate",
        case_dir,
        "--plan",
        _write(tmp_path, _plan()),
        "--out",
        out,
        "--json",
        "--no-report",
    )
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    plan = json.loads((out / "plan.json").read_text())
    currents = [p["predicted_current_a"] for p in plan["pairs"]]
    assert all(c > 0 for c in currents)
    assert currents[0] == pytest.approx(summary["pairs"][0]["current_a"], abs=1e-3)
    assert plan["metrics"]["ablation_volume_ml"] > 1.0
    assert plan["provenance"]["input_hashes"]["plan"]
    assert plan["pairs"][0]["spacing_mm"] == pytest.approx(15.0)
    field = sitk.ReadImage(str(out / "field_max_v_per_cm.nii.gz"))
    zone = sitk.ReadImage(str(out / "zone.nii.gz"))
    assert field.GetSize() == zone.GetSize()
    assert np.allclose(field.GetSpacing(), (2.0, 2.0, 2.0))
    # Physical check in LPS: the midpoint between A and B is inside the zone, a point 40 mm
    # away from every probe is not.
    mid = zone.TransformPhysicalPointToIndex((-40.0, 0.0, 0.0))
    assert zone[mid] == 1
    assert field[mid] > 600.0
    far = zone.TransformPhysicalPointToIndex((-40.0, -30.0, 0.0))
    assert zone[far] == 0
    zarr = sitk.GetArrayFromImage(zone)
    vox_ml = np.prod(zone.GetSpacing()) / 1000
    assert zarr.sum() * vox_ml == pytest.approx(plan["metrics"]["ablation_volume_ml"], rel=1e-6)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"pairs": [{"anode": "A", "cathode": "Z", "voltage_v": 1500}]}, "pairs[0].cathode"),
        ({"pairs": [{"anode": "A", "cathode": "B", "voltage_v": 3600}]}, "pairs[0].voltage_v"),
        # A laser plan is refused (by the plan model's laser checks or by simulate).
        ({"modality": "laser"}, ""),
    ],
)
def test_bad_plans_exit_2_and_write_nothing(run_cli, case_dir, tmp_path, change, field):
    out = tmp_path / "out"
    res = run_cli("simulate", case_dir, "--plan", _write(tmp_path, _plan(**change)), "--out", out)
    assert res.code == 2
    assert f"field '{field}" in res.err
    assert "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1
    assert not out.exists()


def test_probe_outside_case_grid(run_cli, case_dir, tmp_path):
    plan = _plan()
    plan["probes"][1]["tip_lps_mm"] = [-32.5, 0.0, 300.0]
    out = tmp_path / "out"
    res = run_cli("simulate", case_dir, "--plan", _write(tmp_path, plan), "--out", out)
    assert res.code == 2 and "field 'probes[1].tip_lps_mm'" in res.err
    assert not out.exists()


def test_probe_outside_body(run_cli, case_dir, tmp_path):
    plan = _plan()
    plan["probes"][1]["tip_lps_mm"] = [-32.5, -84.0, 10.0]  # body semi-axis 80 mm in y
    out = tmp_path / "out"
    res = run_cli("simulate", case_dir, "--plan", _write(tmp_path, plan), "--out", out)
    assert res.code == 2 and "outside the body" in res.err
    assert not out.exists()


def test_invalid_json(run_cli, case_dir, tmp_path):
    p = tmp_path / "plan.json"
    p.write_text("{not json")
    res = run_cli("simulate", case_dir, "--plan", p, "--out", tmp_path / "out")
    assert res.code == 2 and "not valid JSON" in res.err
