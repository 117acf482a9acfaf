"""Issue 14, item 1: plan files that gave tracebacks, hung or were accepted wrongly, and the
limits on the work a plan may ask for (also for plans built in code)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from hepablate.case.writer import write_case
from hepablate.cli import main
from hepablate.core.volume import Volume
from hepablate.errors import InputError
from hepablate.phantoms import build_phantom, ire_example_spec
from hepablate.plans.limits import (
    check_grid_limits,
    check_plan_limits,
    estimated_grid_shape,
    plan_limits,
)
from hepablate.plans.model import Fibre, Illumination, IrePair, Plan, Probe, read_plan

BASE = {
    "format_version": 1,
    "modality": "ire",
    "probes": [
        {"id": "A", "tip_lps_mm": [-47.5, 0.0, 10.0], "direction_lps": [0, 0, 1]},
        {"id": "B", "tip_lps_mm": [-32.5, 0.0, 10.0], "direction_lps": [0, 0, 1]},
    ],
    "pairs": [{"anode": "A", "cathode": "B", "voltage_v": 2250, "pulses": 90}],
    "ire_simulation": {"grid_spacing_mm": 2.0, "roi_padding_mm": 15.0},
}


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory) -> Path:
    spec = ire_example_spec().model_copy(update={"spacing_mm": (3.0, 3.0, 3.0)})
    d = tmp_path_factory.mktemp("case")
    write_case(build_phantom(spec), d, "nifti")
    return d


def _plan(**changes) -> dict:
    plan = copy.deepcopy(BASE)
    for path, value in changes.items():
        obj = plan
        keys = path.split("__")
        for k in keys[:-1]:
            obj = obj[int(k)] if k.isdigit() else obj[k]
        last = keys[-1]
        if value is ...:
            del obj[last]
        else:
            obj[int(last) if last.isdigit() else last] = value
    return plan


def _simulate_fails(capfd, case_dir: Path, tmp_path: Path, text: str | bytes, *needles: str):
    p = tmp_path / "plan.json"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out"
    capfd.readouterr()
    code = main(["simulate", str(case_dir), "--plan", str(p), "--out", str(out)])
    _, err = capfd.readouterr()
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "changes, needles",
    [
        ({"pairs__0__voltage_v": True}, ["pairs.0.voltage_v", "number"]),
        ({"pairs__0__voltage_v": "2250"}, ["pairs.0.voltage_v"]),
        ({"pairs__0__pulse_width_us": 1e9}, ["pairs.0.pulse_width_us"]),
        ({"pairs__0__pulses": 1e40}, ["pairs.0.pulses", "integer"]),
        ({"pairs__0__pulses": 1e9}, ["pairs.0.pulses"]),
        ({"pairs__0__pulses": 5000}, ["pairs[0].pulses", "limit", "pulse"]),
        ({"pairs__0__pulses": True}, ["pairs.0.pulses"]),
        ({"format_version": ...}, ["format_version", "missing"]),
        (
            {"fibres": [{"id": "F", "tip_lps_mm": [0, 0, 0], "direction_lps": [1, 0, 0]}]},
            ["fibres", "laser"],
        ),
        ({"ire_simulation__grid_spacing_mm": 0.05}, ["grid_spacing_mm", "limit"]),
        ({"ire_simulation__roi_padding_mm": 1e6}, ["grid_spacing_mm", "voxels"]),
        ({"probes__0__tip_lps_mm": [float("nan"), 0, 0]}, ["probes.0.tip_lps_mm", "finite"]),
        ({"probes__0__tip_lps_mm": [True, 0, 0]}, ["probes.0.tip_lps_mm"]),
    ],
)
def test_invalid_plans_exit_2(capfd, case_dir, tmp_path, changes, needles):
    _simulate_fails(capfd, case_dir, tmp_path, json.dumps(_plan(**changes)), *needles)


def test_too_many_probes_in_a_cycle(capfd, case_dir, tmp_path):
    probes = [
        {"id": f"P{i}", "tip_lps_mm": [-50.0 + 4 * i, 0.0, 10.0], "direction_lps": [0, 0, 1]}
        for i in range(8)
    ]
    _simulate_fails(
        capfd, case_dir, tmp_path, json.dumps(_plan(probes=probes)), "probes in cycle 1", "limit"
    )


@pytest.mark.parametrize(
    "text, needle",
    [
        (b'{"format_version": 1, "modality": "\xff"}', "UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "JSON"),
        ('{"format_version": ' + "9" * 5000 + "}", "JSON"),
        ('{"format_version": 1, "modality": "ire", "status_reason": "a\\u0000"}', "NUL"),
        ("{", "JSON"),
    ],
)
def test_unreadable_plan_files_exit_2(capfd, case_dir, tmp_path, text, needle):
    if needle == "NUL":
        p = tmp_path / "p.json"
        p.write_text(text)
        with pytest.raises(InputError):
            read_plan(p)
        text = text.replace("\\u0000", "\x00")
    _simulate_fails(capfd, case_dir, tmp_path, text, "plan.json", needle)


def test_plan_json_directory_exits_2(capfd, case_dir, tmp_path):
    (tmp_path / "plan.json").mkdir()
    capfd.readouterr()
    code = main(["simulate", str(case_dir), "--plan", str(tmp_path / "plan.json"), "--out", "o"])
    _, err = capfd.readouterr()
    assert code == 2 and "directory" in err and len(err.strip().splitlines()) == 1


def test_laser_fields_rules():
    with pytest.raises(ValueError, match="belongs to IRE plans"):
        Plan(
            modality="laser", probes=[Probe(id="A", tip_lps_mm=(0, 0, 0), direction_lps=(0, 0, 1))]
        )
    # Plans built in code get the current format version without naming it.
    assert Plan(modality="laser").format_version == 1


def test_limits_table_gives_a_reason_for_each_limit():
    lim = plan_limits()
    for section in (lim.ire, lim.laser, lim.grid):
        for name, entry in section.items():
            assert entry.reason.strip() and entry.unit.strip(), name
            assert entry.value > 0, name


def test_check_plan_limits_on_plans_built_in_code():
    probes = [Probe(id="A", tip_lps_mm=(0, 0, 0), direction_lps=(0, 0, 1))]
    plan = Plan(
        modality="ire",
        probes=probes,
        pairs=[IrePair(anode="A", cathode="A", voltage_v=1000, pulses=2000)],
    )
    with pytest.raises(InputError, match=r"pairs\[0\]\.pulses"):
        check_plan_limits(plan, source="code")
    ills = [Illumination(step=i + 1, fibre="F", power_w=3.0, duration_s=80_000) for i in range(2)]
    laser = Plan(
        modality="laser",
        fibres=[Fibre(id="F", tip_lps_mm=(0, 0, 0), direction_lps=(1, 0, 0))],
        illuminations=ills,
    )
    with pytest.raises(InputError, match="simulated time"):
        check_plan_limits(laser)


def test_limits_apply_where_simulations_start():
    """validate_ire_plan, resolve_protocol and planning_grid check the limits themselves."""
    from hepablate.devices import load_device_table
    from hepablate.physics.grid import planning_grid
    from hepablate.physics.ire.validate import validate_ire_plan
    from hepablate.physics.laser.protocol import resolve_protocol

    grid = Volume(np.zeros((50, 50, 50), np.uint8), (1.0, 1.0, 1.0), (-25, -25, -25))
    probes = [
        Probe(id=f"P{i}", tip_lps_mm=(-20 + 5 * i, 0, 10), direction_lps=(0, 0, 1))
        for i in range(7)
    ]
    with pytest.raises(InputError, match="probes in cycle 1"):
        validate_ire_plan(probes, [], grid=grid, body=None, devices=load_device_table())
    fibres = [
        Fibre(id=f"F{i}", tip_lps_mm=(0, 0, 3 * i), direction_lps=(1, 0, 0)) for i in range(20)
    ]
    ill = [Illumination(fibre="F0", power_w=3, duration_s=100)]
    with pytest.raises(InputError, match="number of fibres"):
        resolve_protocol(fibres, ill, load_device_table())
    with pytest.raises(InputError, match="grid spacing 0.05 mm"):
        planning_grid(grid, 0.05, np.array([-20.0] * 3), np.array([20.0] * 3))


def test_grid_limit_and_estimate():
    assert estimated_grid_shape(np.array([[0, 0, 0], [10, 0, 0]]), 5.0, 1.0) == (21, 11, 11)
    check_grid_limits((100, 100, 100), 1.0)
    with pytest.raises(InputError, match="voxels"):
        check_grid_limits((1000, 1000, 1000), 1.0)
