"""The needle tract through normal liver before the tumour (laser fibres; LPS, mm).

Percutaneous thermal ablation approaches a tumour through normal liver where it can: a tract
through parenchyma tamponades bleeding from the puncture and lowers the risk of seeding along
it, above all for subcapsular tumours. `liver_path_before_target_mm` measures that tract: along
the line from the tip back towards the skin, past the part inside the target, the length of
the contiguous run of liver before it (tumour voxels are not liver here; intrahepatic vessels
and ducts are, as the containment rules make them). The required length is
`laser_min_liver_path_mm` in planning.yaml (default 10 mm, with its source).

Membership is read with box semantics (a point is in the voxel whose box holds it), sampled
every `TRACT_STEP_MM`, so the length is exact to that step on any grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepablate.case.model import Case
from hepablate.placement.geometry import unit

#: Sampling step along the tract (mm).
TRACT_STEP_MM = 0.25


@dataclass
class TractCheck:
    liver_mm: float
    """Length of normal liver along the path immediately before the target (mm)."""
    required_mm: float
    ok: bool
    message: str


def _lookup(case: Case, mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
    ijk = np.rint(case.grid.lps_to_index(pts)).astype(int)
    shape = np.array(case.grid.shape_ijk)
    inside = np.all((ijk >= 0) & (ijk < shape), axis=-1)
    out = np.zeros(len(pts), dtype=bool)
    k = ijk[inside]
    out[inside] = mask[k[:, 2], k[:, 1], k[:, 0]]
    return out


def liver_path_before_target_mm(
    case: Case, tip: np.ndarray, direction: np.ndarray, target_key: str | None = None
) -> float:
    """Length (mm) of normal liver that the path (entry -> tip along `direction`) crosses
    immediately before it enters the target tumour.

    Walking back from the tip: first across the target (if the tip is in it), then along the
    contiguous liver that is not tumour; the walk stops at the first point outside the liver
    (capsule, a gallbladder, a lung). A tip outside the target measures the liver just behind
    the tip. 0 when the path enters the tumour straight from outside the liver (e.g. an
    exophytic tumour approached from its free side)."""
    key = target_key or case.target_key
    target = case.structures[key]
    tumours = case.union({"tumour"})
    liver = case.structures["liver"] & ~tumours
    d = unit(np.asarray(direction, float))
    span = float(np.linalg.norm(np.array(case.grid.shape_ijk) * case.grid.spacing_mm))
    t = np.arange(0.0, span, TRACT_STEP_MM)
    pts = np.asarray(tip, float)[None, :] - t[:, None] * d[None, :]
    in_t = _lookup(case, target, pts)
    i = 0
    while i < len(pts) and in_t[i]:
        i += 1
    in_l = _lookup(case, liver, pts[i:])
    run = np.flatnonzero(~in_l)
    n = int(run[0]) if run.size else len(in_l)
    return float(n * TRACT_STEP_MM)


def check_liver_tract(
    case: Case,
    tip: np.ndarray,
    direction: np.ndarray,
    min_liver_mm: float | None = None,
    name: str = "fibre",
) -> TractCheck:
    """Whether the path crosses at least `min_liver_mm` of normal liver before the target
    (default: planning.yaml `laser_min_liver_path_mm`)."""
    if min_liver_mm is None:
        from hepablate.evaluation.defaults import load_planning_defaults

        min_liver_mm = float(load_planning_defaults().laser_min_liver_path_mm.value)
    length = liver_path_before_target_mm(case, tip, direction)
    ok = length >= min_liver_mm - 1e-9
    msg = f"{name}: {length:.1f} mm of normal liver before the tumour" + (
        "" if ok else f" ({min_liver_mm:g} mm required)"
    )
    return TractCheck(length, float(min_liver_mm), ok, msg)
