"""Batch tables and sweeps: reading, expansion, result keys, and the refusals that come
before any work starts (no cluster needed)."""

from __future__ import annotations

import pytest

from hepablate.batch import load_tasks
from hepablate.batch.keys import task_key
from hepablate.errors import InputError


def _csv(path, text):
    path.write_text(text)
    return path


def test_csv_rows_options_and_values(cases, tmp_path):
    t = _csv(
        tmp_path / "t.csv",
        f"id,case,modality,grid_spacing_mm,power_w,tissue.liver.optical_1064nm.mu_a_per_cm\n"
        f"a,{cases}/laser,laser,3,4,\n"
        f"007,{cases}/laser,laser,3,,0.5\n",
    )
    a, b = load_tasks(t, "plan")
    assert b.id == "007"
    assert (a.id, a.row, a.modality) == ("a", 1, "laser")
    assert a.options["grid_spacing_mm"] == 3.0 and a.options["power_w"] == 4.0
    assert a.options["seed"] == 0  # defaults filled in: they are part of the key
    assert a.given == {"options.grid_spacing_mm": 3, "options.power_w": 4}
    assert b.tissue_values == {"liver.optical_1064nm.mu_a_per_cm": 0.5}
    assert len(a.key) == 64 and a.key != b.key


def test_key_depends_on_inputs_not_on_id(cases, tmp_path):
    rows = "id,case,modality,grid_spacing_mm\n{id},{case},laser,{g}\n"
    k1 = load_tasks(
        _csv(tmp_path / "1.csv", rows.format(id="x", case=cases / "laser", g=3)), "plan"
    )[0].key
    k2 = load_tasks(
        _csv(tmp_path / "2.csv", rows.format(id="y", case=cases / "laser", g=3)), "plan"
    )[0].key
    k3 = load_tasks(
        _csv(tmp_path / "3.csv", rows.format(id="x", case=cases / "laser", g=2)), "plan"
    )[0].key
    k4 = load_tasks(
        _csv(tmp_path / "4.csv", rows.format(id="x", case=cases / "laser2", g=3)), "plan"
    )[0].key
    assert k1 == k2  # the row's name is not an input
    assert k1 != k3  # an option is
    assert k1 != k4  # so are the case files (laser2's case.yaml differs)


def test_yaml_table_relative_paths(cases, tmp_path):
    (tmp_path / "c").symlink_to(cases)
    t = tmp_path / "t.yaml"
    t.write_text(
        "rows:\n"
        "  - {case: c/laser, modality: laser, options: {grid_spacing_mm: 3}}\n"
        "  - {id: hot, case: c/laser, modality: laser, device: {laser.power_w: 5}}\n"
    )
    a, b = load_tasks(t, "plan")
    assert a.id == "row1" and b.id == "hot" and b.device_values == {"laser.power_w": 5}
    assert a.case == str((cases / "laser").resolve())


def test_sweep_expands_cases_times_grids(cases, tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text(
        f"base: {{modality: laser, options: {{grid_spacing_mm: 3}}}}\n"
        f"cases: [{cases}/laser, {cases}/laser2]\n"
        "grid:\n"
        "  options.power_w: [3, 4, 5]\n"
        "  tissue.liver.thermal.perfusion_per_s: [0.005, 0.01]\n"
    )
    tasks = load_tasks(s, "plan", sweep=True)
    assert len(tasks) == 12 and len({t.key for t in tasks}) == 12
    assert tasks[0].id == "laser power_w=3 perfusion_per_s=0.005"
    assert tasks[0].given == {
        "options.grid_spacing_mm": 3,
        "options.power_w": 3,
        "tissue.liver.thermal.perfusion_per_s": 0.005,
    }
    assert task_key(tasks[0]) == tasks[0].key


@pytest.mark.parametrize(
    ("cell", "field", "words"),
    [
        ("case={c}/nowhere", "row 2 (b): case", "case directory not found"),
        ("grid_spacing_mm=-1", "row 2 (b): options.grid_spacing_mm", "greater than 0"),
        ("voltage=3000", "row 2 (b): options.voltage", "not an option of laser planning"),
        ("power_w=7.5", "row 2 (b): options.power_w", "outside the device limits [0.5, 7] W"),
        ("modality=rfa", "row 2 (b): modality", "expected one of ire, laser"),
        ("tissue.liver.no_such=1", "row 2 (b): tissue.liver.no_such", "no entry"),
        ("tissue.liver.thermal=1", "row 2 (b): tissue.liver.thermal", "a group, not a value"),
        ("device.laser.power_w=-2", "row 2 (b): device.laser.power_w", ">= 0"),
        ("tissues={c}/none.yaml", "row 2 (b): tissues", "file not found"),
        ("id=a", "row 2 (a): id", "the same id as row 1"),
    ],
)
def test_bad_rows_are_refused_naming_row_and_field(cases, tmp_path, cell, field, words):
    col, value = cell.split("=")
    value = value.format(c=cases)
    base = {"id": "b", "case": f"{cases}/laser", "modality": "laser", col: value}
    header = ["id", "case", "modality", *([col] if col not in ("id", "case", "modality") else [])]
    text = ",".join(header) + f"\na,{cases}/laser,laser" + ("," if len(header) > 3 else "") + "\n"
    text += ",".join(str(base[h]) for h in header) + "\n"
    t = _csv(tmp_path / "t.csv", text)
    with pytest.raises(InputError) as exc:
        load_tasks(t, "plan")
    msg = str(exc.value)
    assert msg.startswith(f"{t}: field '{field}'"), msg
    assert words in msg, msg
    assert "\n" not in msg


def test_evaluate_rows_need_a_plan(cases, tmp_path):
    t = _csv(tmp_path / "t.csv", f"case,modality\n{cases}/laser,laser\n")
    with pytest.raises(InputError, match=r"row 1: plan'.*needs a plan file"):
        load_tasks(t, "evaluate")


def test_cli_refuses_a_bad_table_before_any_work(run_cli, cases, tmp_path):
    t = _csv(tmp_path / "t.csv", f"case,modality,grid\n{cases}/laser,laser,3\n")
    r = run_cli("batch", "plan", t, "--out", tmp_path / "out")
    assert r.code == 2
    assert "row 1: options.grid" in r.err and "not an option of laser planning" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler_is_a_clear_error(run_cli, cases, tmp_path):
    from hepablate.batch import connect

    with pytest.raises(InputError, match=r"field '--scheduler'.*cannot reach the Dask scheduler"):
        connect("tcp://127.0.0.1:9", timeout_s=1.0)
    t = _csv(tmp_path / "t.csv", f"case,modality\n{cases}/laser,laser\n")
    r = run_cli("batch", "plan", t, "--out", tmp_path / "out", "--scheduler", "127.0.0.1:9")
    assert r.code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in r.err
