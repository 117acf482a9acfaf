"""The laser forward model end to end, and `hepablate simulate` on a laser plan."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import numpy as np
import pytest

from hepablate import evaluate
from hepablate.anatomy.tissues import load_tissue_table
from hepablate.devices import load_device_table
from hepablate.imaging.images import read_image
from hepablate.physics.laser.simulate import simulate_laser
from hepablate.plans.model import EvaluationSettings, Fibre, Illumination, Plan

from ._helpers import (
    settings,
    small_case,
    two_fibre_plan,
    write_case_dir,
    write_plan_json,
)

TISSUES = load_tissue_table()
DEV = load_device_table()


@pytest.fixture(scope="module")
def case():
    return small_case()


def _zone_ml(case, plan):
    r = simulate_laser(
        case,
        plan.fibres,
        plan.illuminations,
        settings=plan.laser_simulation,
        tissues=TISSUES,
        devices=DEV,
    )
    return float(r.zone.sum()) * r.grid.voxel_volume_ml, r


def evaluate_laser_plan(case, plan):
    """`hepablate.evaluate` without the optical sensitivity and Monte Carlo parts (speed)."""
    sim = plan.laser_simulation.model_copy(update={"optical_sensitivity": False})
    plan = plan.model_copy(
        update={"laser_simulation": sim, "evaluation": EvaluationSettings(monte_carlo_samples=0)}
    )
    return evaluate(case, plan, tissues=TISSUES, devices=DEV)


def test_more_energy_gives_a_larger_zone(case):
    small, _ = _zone_ml(case, two_fibre_plan(duration_s=150.0))
    large, _ = _zone_ml(case, two_fibre_plan(duration_s=400.0))
    assert 0 < small < large


def test_pullback_extends_the_zone_along_the_fibre(case):
    plan = two_fibre_plan(duration_s=200.0)
    one, r1 = _zone_ml(case, plan)
    plan.illuminations += [
        Illumination(step=2, fibre=f.id, power_w=3.0, duration_s=200.0, pullback_mm=12.0)
        for f in plan.fibres
    ]
    two, r2 = _zone_ml(case, plan)
    assert two > 1.5 * one
    assert len(r2.tip_history) == 4 and all(len(t) > 0 for t, _ in r2.tip_history.values())


def test_zone_is_where_omega_reaches_threshold_and_cem43_agrees(case):
    _, r = _zone_ml(case, two_fibre_plan(duration_s=300.0))
    assert np.array_equal(r.zone, (r.omega >= 1.0) & r.domain.body & ~r.domain.heat_sink)
    # CEM43 >= 240 min and Omega >= 1 describe nearly the same region at ablative temperatures.
    cem = (r.cem43_min >= 240.0) & r.domain.body & ~r.domain.heat_sink
    inter = float((cem & r.zone).sum())
    assert inter / max(float(r.zone.sum()), 1.0) > 0.8


def test_tip_charring_warning_depends_on_power(case):
    hot = evaluate_laser_plan(
        case,
        two_fibre_plan(power_w=7.0, duration_s=100.0),
    )
    cool = evaluate_laser_plan(
        case,
        two_fibre_plan(power_w=0.6, duration_s=200.0),
    )
    assert any(w.code == "tip_charring" for w in hot.plan.warnings)
    assert not any(w.code == "tip_charring" for w in cool.plan.warnings)
    assert max(cool.details.tip_max_c.values()) < 100.0 < max(hot.details.tip_max_c.values())


def test_critical_structure_warning_near_gallbladder():
    case = small_case()
    gb = np.argwhere(case.structures["gallbladder"]).mean(axis=0)
    centre = case.grid.index_to_lps(gb[::-1])
    tip = tuple(float(x) for x in centre + np.array([0.0, 0.0, 22.0]))
    plan = Plan(
        modality="laser",
        fibres=[Fibre(id="F1", tip_lps_mm=tip, direction_lps=(0.0, 0.0, -1.0))],
        illuminations=[Illumination(fibre="F1", power_w=5.0, duration_s=400.0)],
        laser_simulation=settings(),
    )
    ev = evaluate_laser_plan(case, plan)
    assert any(
        w.code == "critical_thermal_damage" and "gallbladder" in w.message for w in ev.plan.warnings
    )
    assert ev.plan.metrics.extra["critical_damage_ml.gallbladder"] > 0


def test_cli_simulate_laser_plan(run_cli, tmp_path):
    case_dir = write_case_dir(tmp_path, small_case())
    plan = two_fibre_plan(duration_s=300.0)
    p = write_plan_json(tmp_path / "plan.json", plan)
    out = tmp_path / "out"
    r = run_cli("simulate", case_dir, "--plan", p, "--out", out, "--json", "--no-report")
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    assert summary["modality"] == "laser" and summary["zone_volume_ml"] > 0
    res = json.loads((out / "plan.json").read_text())
    assert res["modality"] == "laser"
    schema = json.loads(resources.files("hepablate.plans").joinpath("plan.schema.json").read_text())
    jsonschema.validate(res, schema)
    assert all(i["energy_j"] == pytest.approx(900.0) for i in res["illuminations"])
    m = res["metrics"]
    for key in (
        "target_coverage",
        "tumour_coverage",
        "min_margin_mm",
        "ablation_volume_ml",
        "non_target_liver_ml",
        "coverage_probability",
    ):
        assert m[key] is not None
    variants = ("mu_a_low", "mu_a_high", "mu_s_low", "mu_s_high", "perfusion_low", "perfusion_high")
    vols = [m["extra"][f"sensitivity.{v}.ablation_volume_ml"] for v in ("nominal", *variants)]
    assert min(vols) > 0
    # Less perfusion, less heat carried away: a larger zone.
    ex = m["extra"]
    assert (
        ex["sensitivity.perfusion_low.ablation_volume_ml"]
        > ex["sensitivity.perfusion_high.ablation_volume_ml"]
    )
    # The confident zone (in every run of the 7) lies inside each run's zone, the possible zone
    # (in any) holds them all.
    assert ex["parameter_runs"] == 7
    assert ex["confident_zone_ml"] <= min(vols) + 1e-9
    assert ex["possible_zone_ml"] >= max(vols) - 1e-9
    covs = [ex[f"sensitivity.{v}.target_coverage"] for v in ("nominal", *variants)]
    assert ex["confident_target_coverage"] <= min(covs) + 1e-9
    assert ex["possible_target_coverage"] >= max(covs) - 1e-9
    assert any(w["code"] == "zone_uncertainty" for w in res["warnings"])
    assert res["provenance"]["parameters"]
    zone = read_image(out / "zone.nii.gz")
    tmax = read_image(out / "temperature_max_c.nii.gz")
    assert zone.same_geometry(tmax)
    assert float(zone.array.sum()) * zone.voxel_volume_ml == pytest.approx(
        m["ablation_volume_ml"], rel=1e-6
    )
    assert float(tmax.array.max()) > 60.0
    # The zone lies around the fibre tips (LPS geometry preserved on output).
    tip = np.asarray(plan.fibres[0].tip_lps_mm)
    ijk = np.rint(zone.lps_to_index(tip)).astype(int)
    assert zone.array[ijk[2], ijk[1], ijk[0]] == 1


def test_cli_simulate_laser_on_dicom_case_writes_zone_seg(run_cli, tmp_path):
    from hepablate.case import load_case
    from hepablate.case.writer import write_case
    from hepablate.imaging import read_image
    from hepablate.imaging.dicom_seg import read_dicom_seg

    case_dir = tmp_path / "dicom_case"
    write_case(small_case(), case_dir, "dicom")
    p = write_plan_json(tmp_path / "plan.json", two_fibre_plan(duration_s=300.0))
    out = tmp_path / "out"
    r = run_cli("simulate", case_dir, "--plan", p, "--out", out, "--no-report")
    assert r.code == 0, r.err
    segs = read_dicom_seg(out / "zone_seg.dcm")
    assert [s.name for s in segs] == ["laser ablation zone"]
    zone = read_image(out / "zone.nii.gz")
    ct_grid = load_case(case_dir).grid
    # the SEG lies on the CT's lattice and holds the same ablated volume as the NIfTI zone
    seg_ml = float(segs[0].mask.array.sum()) * ct_grid.voxel_volume_ml
    zone_ml = float(zone.array.sum()) * zone.voxel_volume_ml
    assert zone_ml > 0 and abs(seg_ml / zone_ml - 1) < 0.05
    assert abs(segs[0].mask.spacing_mm[0] - ct_grid.spacing_mm[0]) < 1e-6
