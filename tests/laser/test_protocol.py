"""Bad laser protocols: clear errors naming the field, exit code 2, nothing written."""

from __future__ import annotations

import json

import pytest

from hepablate.anatomy.tissues import load_tissue_table
from hepablate.devices import load_device_table
from hepablate.errors import InputError
from hepablate.physics.laser.protocol import resolve_protocol
from hepablate.physics.laser.simulate import simulate_laser
from hepablate.plans.model import Fibre, Illumination

from ._helpers import small_case, two_fibre_plan, write_case_dir, write_plan_json

DEV = load_device_table()


def _err(plan) -> InputError:
    with pytest.raises(InputError) as exc:
        resolve_protocol(plan.fibres, plan.illuminations, DEV, source="plan.json")
    return exc.value


def test_valid_protocol_resolves_pullbacks():
    plan = two_fibre_plan()
    plan.illuminations.append(
        Illumination(step=2, fibre="F1", power_w=3.0, duration_s=200.0, pullback_mm=10.0)
    )
    shots = resolve_protocol(plan.fibres, plan.illuminations, DEV)
    assert [s.step for s in shots] == [1, 1, 2]
    assert shots[2].tip_lps_mm[0] == pytest.approx(plan.fibres[0].tip_lps_mm[0] - 10.0)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"power_w": 9.0}, "illuminations.0.power_w", "device limits"),
        ({"power_w": 0.1}, "illuminations.0.power_w", "device limits"),
        ({"duration_s": 1100.0}, "illuminations.0.energy_j", "3300 J outside"),
        ({"duration_s": 20.0}, "illuminations.0.energy_j", "60 J outside"),
        ({"duration_s": -5.0}, "illuminations.0.duration_s", "positive"),
        ({"energy_j": 999.0}, "illuminations.0.energy_j", "power x duration"),
        ({"pullback_mm": -3.0}, "illuminations.0.pullback_mm", ">= 0"),
        ({"fibre": "F9"}, "illuminations.0.fibre", "unknown fibre"),
    ],
)
def test_bad_illumination(change, field, words):
    plan = two_fibre_plan()
    plan.illuminations[0] = plan.illuminations[0].model_copy(update=change)
    e = _err(plan)
    assert e.field == field and words in str(e) and "plan.json" in str(e)


def test_overlapping_fibres():
    plan = two_fibre_plan()
    f2 = plan.fibres[1].model_copy(update={"tip_lps_mm": (-61.0, -5.0, 0.4)})
    plan.fibres[1] = f2
    e = _err(plan)
    assert "overlap" in str(e) and e.field == "fibres.1"


def test_unsupported_wavelength():
    plan = two_fibre_plan()
    plan.fibres[0] = plan.fibres[0].model_copy(update={"wavelength_nm": 980.0})
    e = _err(plan)
    assert e.field == "fibres.0.wavelength_nm" and "1064" in str(e)


def test_too_many_fibres():
    plan = two_fibre_plan()
    plan.fibres = [
        Fibre(id=f"F{i}", tip_lps_mm=(-55.0, 5.0 * i, 0.0), direction_lps=(1.0, 0.0, 0.0))
        for i in range(5)
    ]
    assert "1 to 4" in str(_err(plan))


def test_fibre_outside_body():
    plan = two_fibre_plan()
    plan.fibres[0] = plan.fibres[0].model_copy(update={"tip_lps_mm": (0.0, 95.0, 0.0)})
    with pytest.raises(InputError, match="outside the body"):
        simulate_laser(
            small_case(),
            plan.fibres,
            plan.illuminations,
            settings=plan.laser_simulation,
            tissues=load_tissue_table(),
            devices=DEV,
        )


def test_unknown_optical_scale_key():
    plan = two_fibre_plan()
    s = plan.laser_simulation.model_copy(update={"optical_scale": {"mu_x": 2.0}})
    with pytest.raises(InputError, match="optical_scale"):
        simulate_laser(
            small_case(),
            plan.fibres,
            plan.illuminations,
            settings=s,
            tissues=load_tissue_table(),
            devices=DEV,
        )


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    return write_case_dir(tmp_path_factory.mktemp("lasercase"), small_case())


def _cli_fails(run_cli, tmp_path, case_dir, plan_raw, *extra):
    p = write_plan_json(tmp_path / "plan.json", plan_raw)
    out = tmp_path / "out"
    r = run_cli("simulate", case_dir, "--plan", p, "--out", out, *extra)
    assert r.code == 2, r.err
    assert r.err.startswith("error: ") and len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err
    assert not out.exists()
    return r.err


def test_cli_bad_power(run_cli, tmp_path, case_dir):
    raw = json.loads(two_fibre_plan(power_w=12.0).model_dump_json())
    err = _cli_fails(run_cli, tmp_path, case_dir, raw)
    assert "power_w" in err and "plan.json" in err


def test_cli_negative_duration(run_cli, tmp_path, case_dir):
    raw = json.loads(two_fibre_plan().model_dump_json())
    raw["illuminations"][1]["duration_s"] = -10
    assert "duration_s" in _cli_fails(run_cli, tmp_path, case_dir, raw)


def test_cli_unknown_tissue(run_cli, tmp_path, case_dir):
    t = tmp_path / "tissues.yaml"
    t.write_text("structure_tissue:\n  liver: steel\n")
    raw = json.loads(two_fibre_plan().model_dump_json())
    err = _cli_fails(run_cli, tmp_path, case_dir, raw, "--tissues", t)
    assert "steel" in err
