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
    probe_diameter_mm: Quantity
    exposure_mm: Quantity
    exposure_limits_mm: Quantity
    probes_min: Quantity
    probes_max: Quantity
    max_voltage_v: Quantity
    max_current_a: Quantity
    pulses: Quantity
    pulse_width_us: Quantity
    pulses_per_group: Quantity
    voltage_per_cm_v: Quantity
    spacing_mm: Quantity


class LaserDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wavelength_nm: Quantity
    core_diameter_um: Quantity
    fibres_min: Quantity
    fibres_max: Quantity
    power_w: Quantity
    power_limits_w: Quantity
    energy_j: Quantity
    energy_limits_j: Quantity
    spacing_mm: Quantity
    pullback_mm: Quantity
    needle_diameter_mm: Quantity
    tip_charring_c: Quantity


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
