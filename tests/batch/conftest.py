"""Tiny phantom cases and one 2-worker LocalCluster (1 thread each, worker processes) shared
by the batch tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cases(tmp_path_factory) -> Path:
    """A folder holding `laser/` (the laser example phantom at 3 mm), `laser2/` (the same,
    another case directory) and `broken/` (a case.yaml that does not load)."""
    from hepablate.case.writer import write_case
    from hepablate.phantoms import build_phantom, laser_example_spec

    root = tmp_path_factory.mktemp("batch-cases")
    spec = laser_example_spec().model_copy(update={"spacing_mm": (3.0, 3.0, 3.0)})
    case = build_phantom(spec)
    write_case(case, root / "laser")
    write_case(case, root / "laser2", description="the same phantom again")
    (root / "broken").mkdir()
    (root / "broken" / "case.yaml").write_text("format_version: 1\nimages: [not valid\n")
    return root


@pytest.fixture(scope="module")
def client():
    """A 2-worker LocalCluster (processes, 1 thread each) on 127.0.0.1, no dashboard."""
    from hepablate.batch import connect

    c, cluster = connect(None, workers=2, threads=1, numba_threads=1, retries=3)
    yield c
    c.close()
    cluster.close()
