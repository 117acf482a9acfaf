"""Bad placements and protocols: one clear InputError naming the field."""

from __future__ import annotations

import pydantic
import pytest

from hepablate.errors import InputError
from hepablate.plans.model import IrePair, Probe

from .helpers import block_problem, parallel_probes


@pytest.fixture(scope="module")
def prob():
    return block_problem((41, 41, 41), 1.0)


def _pairs(**kw) -> list[IrePair]:
    base = {"anode": "P1", "cathode": "P2", "voltage_v": 1500.0}
    base.update(kw)
    return [IrePair(**base)]


def _check(prob, probes, pairs, field: str, words: str) -> None:
    with pytest.raises(InputError) as exc:
        prob.validate(probes, pairs)
    assert exc.value.field == field
    assert words in str(exc.value)


def test_valid_layout_passes(prob):
    prob.validate(parallel_probes(15, 10, 20), _pairs())


def test_missing_probe_in_pair(prob):
    _check(
        prob, parallel_probes(15, 10, 20), _pairs(cathode="P9"), "pairs[0].cathode", "no probe 'P9'"
    )


def test_same_anode_and_cathode(prob):
    _check(prob, parallel_probes(15, 10, 20), _pairs(cathode="P1"), "pairs[0].cathode", "different")


def test_voltage_above_generator_limit(prob):
    _check(
        prob,
        parallel_probes(15, 10, 20),
        _pairs(voltage_v=3500),
        "pairs[0].voltage_v",
        "generator limit",
    )


def test_negative_voltage(prob):
    # The plan model refuses it (issue 14); validate_ire_plan still checks pairs that were
    # built without validation.
    with pytest.raises(pydantic.ValidationError, match="greater than 0"):
        _pairs(voltage_v=-5)
    pairs = [IrePair.model_construct(anode="P1", cathode="P2", voltage_v=-5.0, pulses=90, cycle=1)]
    pairs[0].pulse_width_us = 90.0
    _check(prob, parallel_probes(15, 10, 20), pairs, "pairs[0].voltage_v", "positive")


def test_zero_exposure(prob):
    probes = parallel_probes(15, 10, 20)
    probes[1] = probes[1].model_copy(update={"exposure_mm": 0.0})
    _check(prob, probes, _pairs(), "probes[1].exposure_mm", "positive")


def test_negative_exposure(prob):
    probes = parallel_probes(15, 10, 20)
    probes[0] = probes[0].model_copy(update={"exposure_mm": -3.0})
    _check(prob, probes, _pairs(), "probes[0].exposure_mm", "positive")


def test_touching_probes(prob):
    _check(prob, parallel_probes(1.0, 10, 20), _pairs(), "probes[1].tip_lps_mm", "touches")


def test_crossing_probes_overlap(prob):
    probes = [
        Probe(id="P1", tip_lps_mm=(0, 0, 10), direction_lps=(0, 0, 1), exposure_mm=20),
        Probe(id="P2", tip_lps_mm=(10, 0, 0.3), direction_lps=(1, 0, 0), exposure_mm=20),
    ]
    _check(prob, probes, _pairs(), "probes[1].tip_lps_mm", "overlaps")


def test_probe_outside_grid(prob):
    probes = parallel_probes(15, 10, 20)
    probes[1] = probes[1].model_copy(update={"tip_lps_mm": (7.5, 0.0, 35.0)})
    _check(prob, probes, _pairs(), "probes[1].tip_lps_mm", "outside the planning grid")


def test_probe_outside_body():
    p = block_problem((41, 41, 41), 1.0)
    p.active[:, :, 30:] = False  # body ends at x = 10 mm
    probes = parallel_probes(24, 10, 20)  # P2 at x = 12 mm
    _check(p, probes, _pairs(), "probes[1].tip_lps_mm", "outside the body")


def test_duplicate_probe_id(prob):
    probes = parallel_probes(15, 10, 20)
    probes[1] = probes[1].model_copy(update={"id": "P1"})
    _check(prob, probes, _pairs(), "probes[1].id", "duplicate")


def test_pair_in_other_cycle_needs_its_own_probes(prob):
    _check(prob, parallel_probes(15, 10, 20), _pairs(cycle=2), "pairs[0].anode", "cycle 2")


def test_unknown_tissue_in_case_structures():
    import numpy as np

    from hepablate.anatomy.tissues import load_tissue_table, tissue_map

    with pytest.raises(InputError) as exc:
        tissue_map(
            {"body": np.ones((3, 3, 3), bool), "thymus": np.ones((3, 3, 3), bool)},
            load_tissue_table(),
        )
    assert "thymus" in str(exc.value)
