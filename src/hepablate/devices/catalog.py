"""Device defaults and limits from src/hepablate/data/devices.yaml (each with a source)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from hepablate.anatomy.tissues import Quantity, _deep_merge
from hepablate.errors import InputError, input_error_from_validation


class IreDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    probe_diameter_mm: Quantity[float]
    exposure_mm: Quantity[float]
    exposure_limits_mm: Quantity[tuple[float, float]]
    probes_min: Quantity[int]
    probes_max: Quantity[int]
    max_voltage_v: Quantity[float]
    max_current_a: Quantity[float]
    pulses: Quantity[int]
    pulse_width_us: Quantity[float]
    pulses_per_group: Quantity[int]
    voltage_per_cm_v: Quantity[tuple[float, float]]
    spacing_mm: Quantity[tuple[float, float]]


class LaserDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wavelength_nm: Quantity[float]
    core_diameter_um: Quantity[float]
    fibres_min: Quantity[int]
    fibres_max: Quantity[int]
    power_w: Quantity[float]
    power_limits_w: Quantity[tuple[float, float]]
    energy_j: Quantity[float]
    energy_limits_j: Quantity[tuple[float, float]]
    spacing_mm: Quantity[tuple[float, float]]
    pullback_mm: Quantity[tuple[float, float]]
    needle_diameter_mm: Quantity[float]
    tip_charring_c: Quantity[float]
    numerical_aperture: Quantity[float]
    tissue_refractive_index: Quantity[float]
    tip_temperature_radius_mm: Quantity[float]


class DeviceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: int = 1
    ire: IreDevice
    laser: LaserDevice


def load_device_table(override: str | Path | None = None) -> DeviceTable:
    raw = yaml.safe_load(resources.files("hepablate.data").joinpath("devices.yaml").read_text())
    if override is not None:
        p = Path(override)
        if not p.exists():
            raise InputError("device table file not found", source=str(p))
        raw = _deep_merge(raw, yaml.safe_load(p.read_text()) or {})
    try:
        return DeviceTable.model_validate(raw)
    except ValidationError as exc:
        raise input_error_from_validation(exc, source=str(override or "devices.yaml")) from None
