"""The laser planner: feasible plans within device limits, clear paths, outputs and report."""

from __future__ import annotations

import json

import numpy as np
import pypdfium2
import pytest

from hepablate import write_outputs
from hepablate.devices import load_device_table
from hepablate.errors import InputError
from hepablate.optimize.laser import LaserPlanOptions, plan_laser
from hepablate.placement.paths import PathMap

from ._helpers import small_case

FAST = dict(
    grid_spacing_mm=2.0,
    search_spacing_mm=3.0,
    sensitivity=False,
    monte_carlo_samples=16,
    max_coarse_runs=4,
)


@pytest.fixture(scope="module")
def case():
    return small_case(diameter_mm=20.0)


@pytest.fixture(scope="module")
def planned(case):
    return plan_laser(case, LaserPlanOptions(**FAST))


def test_plan_is_feasible_and_within_device_limits(case, planned):
    plan = planned.plan
    dev = load_device_table().laser
    assert plan.status == "feasible", plan.status_reason
    assert plan.metrics.target_coverage >= 0.99
    assert plan.metrics.tumour_coverage == 1.0
    assert 1 <= len(plan.fibres) <= 4
    lo, hi = dev.power_limits_w.value
    e_lo, e_hi = dev.energy_limits_j.value
    for il in plan.illuminations:
        assert lo <= il.power_w <= hi
        assert e_lo <= il.energy_j <= e_hi
        assert il.energy_j == pytest.approx(il.power_w * il.duration_s)
    d = [np.asarray(f.direction_lps) for f in plan.fibres]
    assert all(np.allclose(x, d[0]) for x in d)  # parallel
    tips = np.array([f.tip_lps_mm for f in plan.fibres])
    s_lo, s_hi = dev.spacing_mm.value
    for i in range(len(tips)):
        near = [np.linalg.norm(tips[i] - tips[j]) for j in range(len(tips)) if j != i]
        if near:
            assert s_lo - 0.01 <= min(near) <= s_hi * np.sqrt(2) + 0.01


def test_paths_clear_of_no_go_structures(case, planned):
    pm = PathMap(case, 3.0)
    for f in planned.plan.fibres:
        chk = pm.check_path(np.asarray(f.tip_lps_mm), np.asarray(f.direction_lps))
        assert chk.ok and chk.clearance_mm >= 3.0
        assert f.entry_lps_mm is not None and f.depth_mm > 0


def test_small_tumour_needs_less_than_large(planned):
    big = plan_laser(small_case(diameter_mm=30.0), LaserPlanOptions(**FAST))
    e_small = planned.plan.metrics.extra["total_energy_j"]
    e_big = big.plan.metrics.extra["total_energy_j"]
    assert e_big > e_small


def test_limits_can_make_a_target_infeasible():
    opts = LaserPlanOptions(
        **{**FAST, "max_fibres": 1, "energies_j": [300.0], "max_confirmations": 1}
    )
    res = plan_laser(small_case(diameter_mm=30.0), opts)
    assert res.plan.status == "infeasible"
    assert any(w.level == "error" for w in res.plan.warnings)


def test_bad_options():
    with pytest.raises(InputError, match="energy"):
        plan_laser(small_case(), LaserPlanOptions(**{**FAST, "energies_j": [5000.0]}))
    with pytest.raises(InputError, match="power"):
        plan_laser(small_case(), LaserPlanOptions(**{**FAST, "power_w": 20.0}))


def test_plan_cli_outputs_and_report(case, tmp_path):
    out = tmp_path / "plan"
    plan = plan_laser(case, LaserPlanOptions(**FAST))
    write_outputs(plan, out)
    plan = plan.plan
    for name in (
        "plan.json",
        "zone.nii.gz",
        "temperature_max_c.nii.gz",
        "report.html",
        "report.pdf",
    ):
        assert (out / name).exists(), name
    raw = json.loads((out / "plan.json").read_text())
    assert raw["modality"] == "laser" and raw["fibres"] and raw["illuminations"]
    html = (out / "report.html").read_text()
    assert "Laser protocol sheet" in html and "data:image/png;base64" in html
    for il in plan.illuminations:
        assert f"{il.energy_j:.0f}" in html
    pdf = pypdfium2.PdfDocument(str(out / "report.pdf"))
    assert len(pdf) >= 2
    text = pdf[0].get_textpage().get_text_range()
    assert "Laser ablation plan" in text and "Energy (J)" in text and "Laser protocol" in text


def test_cli_plan_laser(run_cli, tmp_path):
    from ._helpers import write_case_dir

    case_dir = write_case_dir(tmp_path, small_case(diameter_mm=20.0))
    out = tmp_path / "out"
    r = run_cli(
        "plan",
        case_dir,
        "--modality",
        "laser",
        "--out",
        out,
        "--grid",
        "2",
        "--mc-samples",
        "8",
        "--max-fibres",
        "2",
        "--json",
    )
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    assert summary["status"] == "feasible"
    raw = json.loads((out / "plan.json").read_text())
    assert 1 <= len(raw["fibres"]) <= 2
    assert (out / "report.pdf").exists() and (out / "zone.nii.gz").exists()


def test_cli_plan_laser_bad_option(run_cli, tmp_path):
    from ._helpers import write_case_dir

    case_dir = write_case_dir(tmp_path, small_case())
    out = tmp_path / "out"
    r = run_cli(
        "plan",
        case_dir,
        "--modality",
        "laser",
        "--out",
        out,
        "--min-probes",
        "3",
        "--max-probes",
        "2",
    )
    assert r.code == 2 and r.err.startswith("error: ") and not out.exists()


def test_plan_to_confident_zone_raises_energy_and_states_the_cost(case, tmp_path):
    """With a wide perfusion range the nominal plan's confident zone falls short; planning to
    the confident zone raises the energy per fibre and step and says what it cost."""
    from hepablate.anatomy.tissues import load_tissue_table

    wide = tmp_path / "tissues.yaml"
    rng = '{value: 0.01, range: [0.0044, 0.03], source: "test: a wide range"}'
    wide.write_text(
        "tissues:\n"
        + "".join(
            f"  {t}:\n    thermal:\n      perfusion_per_s: {rng}\n" for t in ("liver", "tumour")
        )
    )
    tissues = load_tissue_table(wide)
    opts = {**FAST, "sensitivity": True}
    plain = plan_laser(case, LaserPlanOptions(**opts), tissues=tissues).plan
    conf = plan_laser(
        case, LaserPlanOptions(**opts, plan_to_confident_zone=True), tissues=tissues
    ).plan
    required = 0.99
    assert plain.status == "feasible"
    assert plain.metrics.extra["confident_target_coverage"] < required  # the premise
    assert not any(w.code == "confident_zone_planning" for w in plain.planning.notes)
    e_plain = plain.illuminations[0].power_w * plain.illuminations[0].duration_s
    e_conf = conf.illuminations[0].power_w * conf.illuminations[0].duration_s
    assert e_conf > e_plain
    got = conf.metrics.extra["confident_target_coverage"]
    assert got > plain.metrics.extra["confident_target_coverage"]
    (note,) = [w for w in conf.planning.notes if w.code == "confident_zone_planning"]
    assert f"{100 * got:.1f} %" in note.message and f"instead of {e_plain:.0f} J" in note.message
    assert (note.level == "info") == (got >= required)
