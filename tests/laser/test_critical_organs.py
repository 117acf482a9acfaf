"""Thermal damage to any part of the bowel counts as a complication, and a case that segments
the bowel by its parts is not told that the bowel is unsegmented."""

from __future__ import annotations

import numpy as np

from hepablate.phantoms.torso import build_torso, torso_spec
from hepablate.physics.laser.analysis import critical_keys
from hepablate.report.common import unsegmented_section


def test_bowel_parts_are_critical_for_thermal_damage() -> None:
    m = np.zeros((4, 4, 4), bool)
    m[1, 1, 1] = True
    structures = {
        k: m for k in ("liver", "colon", "duodenum", "stomach", "gallbladder", "portal_vein")
    }
    keys = set(critical_keys(structures))
    assert {"colon", "duodenum", "stomach", "gallbladder", "portal_vein"} <= keys
    assert "liver" not in keys


def test_torso_with_colon_does_not_list_bowel_as_unsegmented() -> None:
    case = build_torso(torso_spec("subcapsular", spacing_mm=4.0))
    assert case.structures["colon"].any()
    section = unsegmented_section(case)
    text = repr(section)
    assert "'bowel'" not in text
    del case.structures["colon"], case.structures["duodenum"], case.structures["stomach"]
    assert "'bowel'" in repr(unsegmented_section(case))
