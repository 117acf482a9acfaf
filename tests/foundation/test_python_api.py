"""The Python API as a notebook user meets it: the names `import hepablate` exposes, and the
walk-through scripts of docs/python-api.md (examples/python/), run on small phantoms."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hepablate

ROOT = Path(__file__).resolve().parents[2]


def test_public_names_resolve():
    for name in hepablate.__all__:
        assert getattr(hepablate, name) is not None, name
    assert callable(hepablate.evaluate) and callable(hepablate.plan)
    assert hepablate.modality_names() == ["ire", "laser"]
    with pytest.raises(AttributeError):
        hepablate.no_such_name  # noqa: B018


def _run(script: str, case_dir: Path, out: Path) -> str:
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "python" / script),
            str(case_dir),
            "--grid",
            "3",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_ire_walkthrough(tmp_path):
    from hepablate.case.writer import write_case
    from hepablate.phantoms import build_phantom, ire_example_spec

    spec = ire_example_spec().model_copy(update={"spacing_mm": (3.0, 3.0, 3.0)})
    write_case(build_phantom(spec), tmp_path / "case")
    out = tmp_path / "out"
    text = _run("ire_walkthrough.py", tmp_path / "case", out)
    assert "planned:" in text and "target_coverage" in text
    for name in ("plan.json", "zone.nii.gz", "field_max_v_per_cm.nii.gz", "report.pdf"):
        assert (out / name).exists(), name
    plan = json.loads((out / "plan.json").read_text())
    # The walk-through edited the planner's plan: its planning record no longer applies.
    assert plan["planning"] is None
    assert "planning_record_dropped" in {w["code"] for w in plan["warnings"]}


def test_laser_walkthrough(tmp_path):
    from tests.laser._helpers import small_case, write_case_dir

    case_dir = write_case_dir(tmp_path, small_case(spacing_mm=3.0, diameter_mm=18.0))
    out = tmp_path / "out"
    text = _run("laser_walkthrough.py", case_dir, out)
    assert "maximum temperature" in text
    plan = json.loads((out / "plan.json").read_text())
    assert plan["modality"] == "laser" and plan["criteria"]
    assert (out / "temperature_max_c.nii.gz").exists() and (out / "report.pdf").exists()
