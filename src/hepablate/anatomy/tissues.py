"""The tissue table (src/hepablate/data/tissues.yaml) and the tissue map of a case.

Every value is a `Quantity` with a source and a literature range; a user file of the same
shape overrides the packaged one entry by entry.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from hepablate.anatomy.vocabulary import base_name
from hepablate.errors import InputError, input_error_from_validation

T = TypeVar("T")


class Quantity(BaseModel, Generic[T]):
    """A value of a data table with its literature range and its source. Typed by what it
    holds: `Quantity[float]`, `Quantity[int]` (counts), `Quantity[tuple[float, float]]`
    (intervals)."""

    model_config = ConfigDict(extra="forbid")
    value: T
    range: list[float] | None = None
    source: str


class ElectricalProps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sigma_baseline_s_per_m: Quantity[float]
    sigma_electroporated_s_per_m: Quantity[float]
    e_reversible_v_per_cm: Quantity[float]
    e_irreversible_v_per_cm: Quantity[float]
    ire_threshold_v_per_cm: Quantity[float]
    reversible_threshold_v_per_cm: Quantity[float]
    sigma_temperature_coeff_per_c: Quantity[float]


class ThermalProps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conductivity_w_per_m_k: Quantity[float]
    density_kg_per_m3: Quantity[float]
    heat_capacity_j_per_kg_k: Quantity[float]
    perfusion_per_s: Quantity[float]
    metabolic_w_per_m3: Quantity[float]


class OpticalProps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mu_a_per_cm: Quantity[float]
    mu_s_reduced_per_cm: Quantity[float]
    coagulated_mu_a_factor: Quantity[float]
    coagulated_mu_s_factor: Quantity[float]


class Tissue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    electrical: ElectricalProps
    thermal: ThermalProps
    optical_1064nm: OpticalProps


class BloodProps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature_c: Quantity[float]
    density_kg_per_m3: Quantity[float]
    heat_capacity_j_per_kg_k: Quantity[float]


class DamageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arrhenius_a_per_s: Quantity[float]
    arrhenius_ea_j_per_mol: Quantity[float]
    arrhenius_omega_threshold: Quantity[float]
    cem43_threshold_min: Quantity[float]
    peleg_fermi_ec0_v_per_m: Quantity[float]
    peleg_fermi_a0_v_per_m: Quantity[float]
    peleg_fermi_k1: Quantity[float]
    peleg_fermi_k2: Quantity[float]
    peleg_fermi_survival_threshold: Quantity[float]


class TissueTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: int = 1
    structure_tissue: dict[str, str]
    tissues: dict[str, Tissue]
    blood: BloodProps
    damage: DamageParams

    #: Order of tissue indices in tissue maps.
    @property
    def tissue_names(self) -> list[str]:
        return list(self.tissues)

    def tissue(self, name: str) -> Tissue:
        try:
            return self.tissues[name]
        except KeyError:
            raise InputError(
                f"unknown tissue '{name}'; expected one of {', '.join(self.tissues)}",
                field="tissue",
            ) from None

    def tissue_of_structure(self, key: str) -> str:
        name = base_name(key)
        try:
            return self.structure_tissue[name]
        except KeyError:
            raise InputError(
                f"no tissue for structure '{name}' in the tissue table", field="structure_tissue"
            ) from None

    def per_tissue(self, getter) -> np.ndarray:
        """Array of a property over tissue indices, e.g. ``t.per_tissue(lambda x:
        x.electrical.sigma_baseline_s_per_m.value)``."""
        return np.array([float(getter(self.tissues[n])) for n in self.tissue_names])


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and "value" not in v:
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


@lru_cache(maxsize=1)
def _packaged_raw() -> dict:
    text = resources.files("hepablate.data").joinpath("tissues.yaml").read_text()
    return yaml.safe_load(text)


def load_tissue_table(override: str | Path | None = None) -> TissueTable:
    """The packaged tissue table, optionally overridden entry by entry by a YAML file."""
    raw = _packaged_raw()
    if override is not None:
        p = Path(override)
        if not p.exists():
            raise InputError("tissue table file not found", source=str(p))
        try:
            user = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML ({exc})", source=str(p)) from None
        raw = _deep_merge(raw, user)
    try:
        return TissueTable.model_validate(raw)
    except ValidationError as exc:
        raise input_error_from_validation(exc, source=str(override or "tissues.yaml")) from None


#: Painting order of structures when building a tissue map: later wins.
_TISSUE_ORDER = {"body": 0, "liver": 1, "tumour": 3}


def tissue_map(structures: dict[str, np.ndarray], table: TissueTable) -> np.ndarray:
    """Tissue index per voxel (int8; -1 outside the body) from a case's structures.

    Painting order: body (soft tissue), organs, liver, tumours, then vessels and ducts last so
    that thin conductive structures are never swallowed by the tumour they abut.
    """
    names = table.tissue_names
    shape = next(iter(structures.values())).shape
    out = np.full(shape, -1, dtype=np.int8)
    if "body" not in structures:
        out[:] = names.index("soft_tissue")

    def order(key: str) -> int:
        b = base_name(key)
        if b in _TISSUE_ORDER:
            return _TISSUE_ORDER[b]
        t = table.structure_tissue.get(b)
        return 4 if t in ("blood", "bile") else 2

    for key in sorted(structures, key=order):
        out[structures[key]] = names.index(table.tissue_of_structure(key))
    return out
