"""What the IRE planner may do: the user's options and the device limits they resolve to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hepablate.devices.catalog import DeviceTable
from hepablate.placement.approach import PatientPosition


class IrePlanOptions(BaseModel):
    """User options of the IRE planner; `None` means the device/planning table default."""

    model_config = ConfigDict(extra="forbid")
    min_probes: int | None = Field(None, ge=1)
    max_probes: int | None = Field(None, ge=1)
    min_spacing_mm: float | None = Field(None, gt=0)
    max_spacing_mm: float | None = Field(None, gt=0)
    allow_angled: bool = False
    """Angled probes from the start; without it they are tried once parallel paths are
    blocked."""
    patient_position: PatientPosition = "supine"
    """Which skin is accessible: supine anterior and lateral, prone posterior and lateral,
    left lateral decubitus right lateral and posterolateral (approaches.yaml)."""
    entry: EntryRegionModel | None = None
    safety_distance_mm: float | None = Field(None, ge=0)
    placement_error_mm: float | None = Field(None, ge=0)
    monte_carlo_samples: int | None = Field(None, ge=0)
    robust: bool = False
    grid_spacing_mm: float = Field(1.0, gt=0)
    required_coverage: float | None = Field(
        None, gt=0, le=1, description="target coverage to reach; default criteria.yaml"
    )
    max_cycles: int | None = Field(None, ge=1)
    seed: int = 0
    plan_to_confident_zone: bool = False
    """Plan so that the confident zone (the threshold band's, optimize/ire/confident.py)
    covers the target; the plan's notes compare it with the nominal plan."""

    @model_validator(mode="after")
    def _check(self) -> IrePlanOptions:
        if (self.min_probes and self.max_probes) and self.max_probes < self.min_probes:
            raise ValueError("max_probes must be >= min_probes")
        if (self.min_spacing_mm and self.max_spacing_mm) and (
            self.max_spacing_mm < self.min_spacing_mm
        ):
            raise ValueError(
                f"max spacing {self.max_spacing_mm:g} mm is below min spacing "
                f"{self.min_spacing_mm:g} mm"
            )
        return self


class EntryRegionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    centre_lps_mm: tuple[float, float, float]
    radius_mm: float = Field(20.0, gt=0)


IrePlanOptions.model_rebuild()


@dataclass
class Limits:
    probes_min: int
    probes_max: int
    spacing_min_mm: float
    spacing_max_mm: float
    exposure_practice_max_mm: float
    exposure_min_mm: float
    exposure_max_mm: float
    v_per_cm_low: float
    v_per_cm_high: float
    max_voltage_v: float
    max_current_a: float
    pulses: int
    pulse_width_us: float
    diameter_mm: float
    threshold_v_per_cm: float
    spacing_device_max_mm: float | None = None
    """The device table's (or option's) maximum spacing before the generator cap."""


def limits_from(devices: DeviceTable, threshold_v_per_cm: float, opts: IrePlanOptions) -> Limits:
    d = devices.ire
    smin, smax = d.spacing_mm.value
    smin = opts.min_spacing_mm or smin
    smax = opts.max_spacing_mm or smax
    if smax < smin:
        from hepablate.errors import InputError

        raise InputError(
            f"max spacing {smax:g} mm is below min spacing {smin:g} mm", field="spacing"
        )
    pmin = max(d.probes_min.value, opts.min_probes or 0)
    pmax = min(d.probes_max.value, opts.max_probes or 99)
    if pmax < pmin:
        from hepablate.errors import InputError

        raise InputError(
            f"probe count range {pmin}..{pmax} is empty (device allows "
            f"{d.probes_min.value}..{d.probes_max.value})",
            field="probes",
        )
    lo, hi = d.voltage_per_cm_v.value
    emin, emax = d.exposure_limits_mm.value
    # Wider pairs would need more than the generator's voltage at the spacing rule's low end.
    s_volt = 10.0 * d.max_voltage_v.value / lo
    if smin > s_volt:
        from hepablate.errors import InputError

        raise InputError(
            f"min spacing {smin:g} mm needs more than the generator's "
            f"{d.max_voltage_v.value:g} V at {lo:g} V/cm",
            field="spacing",
        )
    s_device = smax
    smax = min(smax, s_volt)
    return Limits(
        probes_min=pmin,
        probes_max=pmax,
        spacing_min_mm=smin,
        spacing_max_mm=smax,
        exposure_practice_max_mm=float(d.exposure_mm.range[1])
        if d.exposure_mm.range
        else d.exposure_mm.value,
        exposure_min_mm=emin,
        exposure_max_mm=emax,
        v_per_cm_low=lo,
        v_per_cm_high=hi,
        max_voltage_v=d.max_voltage_v.value,
        max_current_a=d.max_current_a.value,
        pulses=d.pulses.value,
        pulse_width_us=d.pulse_width_us.value,
        diameter_mm=d.probe_diameter_mm.value,
        threshold_v_per_cm=threshold_v_per_cm,
        spacing_device_max_mm=s_device,
    )


def search_threshold_v_per_cm(tissues: Any, settings: Any) -> float:
    """The IRE threshold the search aims at: the settings' override, else the highest of the
    liver and tumour thresholds in the tissue table (conservative)."""
    if settings.zone_threshold_v_per_cm is not None:
        return float(settings.zone_threshold_v_per_cm)
    vals = []
    for name in ("liver", "tumour"):
        if name in tissues.tissues:
            vals.append(tissues.tissues[name].electrical.ire_threshold_v_per_cm.value)
    return max(vals) if vals else 600.0
