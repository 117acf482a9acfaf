"""Typed view of `data/validation_experiments.yaml`: each experiment's paper, protocol (units in
the field names) and measured zone with its spread. Missing numbers stay None."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

Role = Literal["calibration", "validation"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Paper(_Strict):
    authors: str | None
    year: int | None
    title: str
    journal: str | None
    doi: str | None


class Spread(_Strict):
    """A measured length (mm): a mean with its SD, a range, or the largest of a series."""

    mean: float | None = None
    sd: float | None = None
    range: tuple[float, float] | None = None
    max: float | None = None

    @property
    def value_mm(self) -> float:
        """The number compared with the prediction: mean, else range midpoint, else max."""
        if self.mean is not None:
            return self.mean
        if self.range is not None:
            return 0.5 * (self.range[0] + self.range[1])
        if self.max is not None:
            return self.max
        raise ValueError("a measured length needs mean, range or max")

    def describe(self) -> str:
        if self.mean is not None:
            return f"{self.mean:g} ± {self.sd:g}" if self.sd is not None else f"{self.mean:g}"
        if self.range is not None:
            return f"{self.range[0]:g}–{self.range[1]:g}"
        return f"up to {self.max:g}"


class IreProtocol(_Strict):
    probes: int
    gauge: int
    voltage_v: float | None
    pulses: int
    pulse_width_us: float
    spacing_mm: float
    exposure_mm: float


class IreMeasured(_Strict):
    width_mm: Spread | None = None
    depth_mm: Spread | None = None
    height_mm: Spread | None = None
    n: int | None = None


class _Experiment(_Strict):
    id: str
    role: Role
    paper: Paper
    found_at: str
    excerpt: str
    subject: str
    in_vivo: bool
    protocol_note: str | None = None
    assumed: dict[str, Any] = Field(default_factory=dict)
    measured_by: str


class IreExperiment(_Experiment):
    protocol: IreProtocol
    measured: IreMeasured

    def voltages_v(self) -> list[float]:
        """The voltage, or the assumed bracket where the paper does not give it."""
        if self.protocol.voltage_v is not None:
            return [self.protocol.voltage_v]
        return [float(v) for v in self.assumed["voltage_v"]]


class LaserProtocol(_Strict):
    fibres: int
    fibre_type: Literal["bare", "diffuser"]
    diffuser_length_mm: float | None = None
    core_diameter_um: float | None
    power_w: float
    duration_s: float
    wavelength_nm: float | None
    spacing_mm: float | None
    start_temperature_c: float | None
    perfusion: bool


class LaserMeasured(_Strict):
    length_mm: Spread | None = None
    diameter_mm: Spread | None = None
    fused: bool | None = None
    charring: bool | None = None
    n: int | None = None


class LaserExperiment(_Experiment):
    protocol: LaserProtocol
    measured: LaserMeasured

    @property
    def start_temperature_c(self) -> float | None:
        """Paper value, else the documented assumption, else None (in vivo: blood)."""
        if self.protocol.start_temperature_c is not None:
            return self.protocol.start_temperature_c
        v = self.assumed.get("start_temperature_c")
        return None if v is None else float(v)


class NotReproduced(_Strict):
    modality: Literal["ire", "laser"]
    paper: str
    found_at: str
    reason: str


class GaugeTable(_Strict):
    value: dict[int, float]
    source: str


class ValidationSuite(_Strict):
    format_version: int
    needle_gauge_outer_diameter_mm: GaugeTable
    ire: list[IreExperiment]
    laser: list[LaserExperiment]
    not_reproduced: list[NotReproduced]

    def get(self, exp_id: str) -> IreExperiment | LaserExperiment:
        for ire in self.ire:
            if ire.id == exp_id:
                return ire
        for las in self.laser:
            if las.id == exp_id:
                return las
        raise KeyError(exp_id)


@lru_cache(maxsize=1)
def load_validation_suite() -> ValidationSuite:
    text = resources.files("hepablate.data").joinpath("validation_experiments.yaml").read_text()
    return ValidationSuite.model_validate(yaml.safe_load(text))
