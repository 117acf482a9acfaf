"""The bundled anatomical examples (issue 12): suite cases written by scripts/make_examples.sh.
They load, pass `case check`, stay small, and regenerating them gives the same images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hepablate.case import load_case
from hepablate.phantoms.suite import build_suite_case, suite_case

ROOT = Path(__file__).resolve().parents[2]
#: example directory -> the suite case it was written from (scripts/make_examples.sh)
EXAMPLES = {
    "torso-ire-segment-vii": "torso-ire-posterior-25",
    "torso-laser-subcapsular": "torso-laser-subcapsular-20",
}


def test_make_examples_writes_each_anatomical_example():
    script = (ROOT / "scripts" / "make_examples.sh").read_text()
    for d, cid in EXAMPLES.items():
        assert f"--suite-case {cid} --out examples/{d}" in script


@pytest.mark.parametrize(("example", "case_id"), list(EXAMPLES.items()))
def test_example_loads_passes_check_and_regenerates(example, case_id, capsys):
    from hepablate.cli import main

    d = ROOT / "examples" / example
    size_mb = sum(f.stat().st_size for f in d.iterdir()) / 1e6
    assert size_mb < 3.0, size_mb
    assert main(["case", "check", str(d)]) == 0
    assert "target T1" in capsys.readouterr().out
    back = load_case(d)
    entry = suite_case(case_id)
    fresh = build_suite_case(entry)
    assert back.case_id == entry.id
    assert back.grid.same_geometry(fresh.grid)
    assert np.allclose(back.grid.spacing_mm, entry.voxel_mm)
    assert set(back.structures) == set(fresh.structures)
    for k in fresh.structures:
        assert np.array_equal(back.structures[k], fresh.structures[k]), k
    assert back.ct is not None and fresh.ct is not None
    assert np.array_equal(back.ct.array, fresh.ct.array)
    # One of each modality among the anatomical examples.
    assert {suite_case(c).modality for c in EXAMPLES.values()} == {"ire", "laser"}
