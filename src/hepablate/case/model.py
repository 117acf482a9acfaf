"""`Case`: every structure as a boolean mask on one reference grid (LPS, mm)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hepablate.anatomy.vocabulary import base_name
from hepablate.case.spec import CaseSpec
from hepablate.core.volume import Volume


@dataclass(eq=False)
class Case:
    case_id: str
    grid: Volume
    """Reference grid; its array is the CT in HU when the case has one, else zeros."""
    structures: dict[str, np.ndarray]
    """Boolean masks (array order k, j, i) on `grid`, keyed by name or ``tumour:<id>``."""
    target_id: str
    margin_mm: float
    ct: Volume | None = None
    root: Path | None = None
    spec: CaseSpec | None = None
    source_files: dict[str, Path] = field(default_factory=dict)
    source_format: str = "nifti"
    """'dicom' when the CT came from a DICOM series (then outputs add DICOM SEG)."""
    dicom_reference: Path | None = None
    notes: list[str] = field(default_factory=list)
    """What validation noticed and accepted (e.g. a subcapsular tumour), for reports."""

    @property
    def target_key(self) -> str:
        return f"tumour:{self.target_id}"

    @property
    def target_mask(self) -> np.ndarray:
        return self.structures[self.target_key]

    @property
    def tumour_keys(self) -> list[str]:
        return [k for k in self.structures if base_name(k) == "tumour"]

    def has(self, name: str) -> bool:
        return name in self.structures

    def mask(self, name: str) -> np.ndarray:
        return self.structures[name]

    def union(self, names: frozenset[str] | set[str] | list[str]) -> np.ndarray:
        """Union of the masks whose key or base name is in `names`."""
        out = np.zeros(self.grid.array.shape, dtype=bool)
        for key, m in self.structures.items():
            if key in names or base_name(key) in names:
                out |= m
        return out

    def volume_ml(self, key: str) -> float:
        return float(self.structures[key].sum()) * self.grid.voxel_volume_ml
