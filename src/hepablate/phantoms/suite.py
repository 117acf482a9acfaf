"""The anatomical planning suite: cases from `src/hepablate/data/anatomy_suite.yaml`.

Each entry names a phantom (the torso of `phantoms.torso`, or the real CT of
`phantoms.real_ct`), a tumour position, diameter (mm) and kind, the case voxel size (x, y, z
in mm, LPS frame), the margin (mm), the modality and planner options. `build_suite_case`
turns an entry into a `Case`, deterministically; `suite_plan_options` gives the options for
`hepablate.plan` at a chosen planning grid. The suite is run by
`tests/planning/test_anatomy_suite.py` (-m slow) and `benchmarks/bench_anatomy_suite.py`.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hepablate.case.model import Case
from hepablate.core.volume import Volume
from hepablate.errors import InputError
from hepablate.phantoms.torso import SEGMENTS, TORSO_HU, TUMOUR_POSITIONS, TumourKind

Vec3 = tuple[float, float, float]


class SuiteCase(BaseModel):
    """One case of the anatomical suite (see anatomy_suite.yaml for the fields)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    phantom: Literal["torso", "real-ct"]
    position: str
    diameter_mm: float = Field(ge=10.0, le=50.0)
    kind: TumourKind = "hcc"
    voxel_mm: Vec3
    margin_mm: float = Field(5.0, ge=0.0)
    modality: Literal["ire", "laser"]
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SuiteCase:
        from hepablate.phantoms.real_ct import REAL_CT_POSITIONS

        if min(self.voxel_mm) <= 0:
            raise ValueError("voxel_mm must be positive")
        if self.phantom == "torso":
            seg = self.position.removeprefix("segment:")
            if self.position not in TUMOUR_POSITIONS and not (
                self.position.startswith("segment:") and seg in SEGMENTS
            ):
                raise ValueError(f"unknown torso position '{self.position}'")
        else:
            if self.position not in REAL_CT_POSITIONS:
                raise ValueError(f"unknown real-ct position '{self.position}'")
            if self.voxel_mm != (3.0, 3.0, 3.0):
                # The real CT is used on its own lattice; a different size would be a
                # resampled CT that nobody acquired.
                raise ValueError("real-ct cases use the CT's own 3 mm voxels")
        if "grid_spacing_mm" in self.options:
            raise ValueError("grid_spacing_mm is set by the runner (--grid), not per case")
        return self


class AnatomySuite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: Literal[1]
    cases: list[SuiteCase]

    @model_validator(mode="after")
    def _unique(self) -> AnatomySuite:
        ids = [c.id for c in self.cases]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate suite case ids: {', '.join(dup)}")
        return self


@cache
def load_suite() -> tuple[SuiteCase, ...]:
    """The packaged suite (anatomy_suite.yaml), in file order."""
    raw = yaml.safe_load(
        resources.files("hepablate.data").joinpath("anatomy_suite.yaml").read_text()
    )
    return tuple(AnatomySuite.model_validate(raw).cases)


def suite_case(case_id: str) -> SuiteCase:
    """The suite entry with this id (InputError naming the id otherwise)."""
    for c in load_suite():
        if c.id == case_id:
            return c
    raise InputError(f"no suite case '{case_id}'", field="case id")


def select_cases(ids: str | None) -> list[SuiteCase]:
    """Entries for a comma-separated id list (None or empty: all), in suite order."""
    if not ids:
        return list(load_suite())
    want = [s.strip() for s in ids.split(",") if s.strip()]
    chosen = [suite_case(i) for i in want]
    return chosen


def build_suite_case(entry: SuiteCase) -> Case:
    """The `Case` of a suite entry (deterministic; LPS mm). The case id is the entry's id."""
    if entry.phantom == "torso":
        from hepablate.phantoms.torso import build_torso, torso_spec

        case = build_torso(
            torso_spec(
                entry.position,
                diameter_mm=entry.diameter_mm,
                spacing_mm=entry.voxel_mm,
                kind=entry.kind,
                margin_mm=entry.margin_mm,
            )
        )
    else:
        from hepablate.phantoms.real_ct import build_real_ct_case

        case = build_real_ct_case(entry.position, entry.diameter_mm, margin_mm=entry.margin_mm)
        case = _paint_tumour(case, entry.kind)
    case.case_id = entry.id
    return case


def _paint_tumour(case: Case, kind: str) -> Case:
    """Give the inserted tumour of a real-CT case its kind's CT number (display only: the real
    CT has no tumour, and an invisible target would make the report's images misleading)."""
    if case.ct is None:
        return case
    arr = case.ct.array.copy()
    tumour = case.structures[f"tumour:{case.target_id}"]
    # Keep the CT's own texture: shift the tumour voxels by (kind HU - liver HU), both from
    # the torso table, so noise and partial volume stay those of the real scan.
    arr[tumour] = np.clip(
        arr[tumour].astype(np.float32) + (TORSO_HU[kind] - TORSO_HU["liver"]), -1024, 3071
    ).astype(arr.dtype)
    ct = Volume(arr, case.ct.spacing_mm, case.ct.origin_lps_mm, case.ct.direction.copy())
    same = case.grid is case.ct
    case.ct = ct
    if same:
        case.grid = ct
    return case


def suite_plan_options(entry: SuiteCase, grid_mm: float, **extra: Any) -> dict[str, Any]:
    """Keyword options for `hepablate.plan(case, entry.modality, **opts)`: the entry's options,
    the planning grid (mm) and any `extra` (e.g. monte_carlo_samples)."""
    return {**entry.options, **extra, "grid_spacing_mm": float(grid_mm)}


#: Words of an infeasible plan's reason that say what could open a path (approaches, patient
#: position, options); the suite records which it finds.
OPENING_WORDS = (
    "would open",
    "open a path",
    "prone",
    "decubitus",
    "intercostal",
    "subcostal",
    "entry window",
    "entry region",
    "--entry",
    "allow-angled",
    "angled",
)


def blocking_structures(reason: str | None) -> list[str]:
    """Structure names (the vocabulary's, and other tumours) that an infeasible plan's reason
    names, from its 'stopped by' clause when it has one; sorted, unique."""
    from hepablate.anatomy.vocabulary import STRUCTURE_NAMES

    if not reason:
        return []
    m = re.search(r"stopped by:?(.*)", reason)
    text = m.group(1) if m else reason
    names = {n for n in STRUCTURE_NAMES if re.search(rf"\b{n}\b", text)}
    names |= set(re.findall(r"tumour:\w+", text))
    return sorted(names - {"tumour", "liver"})


def opening_hints(reason: str | None) -> list[str]:
    """The `OPENING_WORDS` an infeasible plan's reason contains."""
    low = (reason or "").lower()
    return [w for w in OPENING_WORDS if w in low]
