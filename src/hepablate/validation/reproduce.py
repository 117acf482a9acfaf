"""Reproduce a published experiment with the forward models and measure the predicted zone the
way the paper measured it.

Set-up (LPS mm, homogeneous liver block centred on the origin):
- IRE: the probes lie along +z with their active parts centred on z = 0 (the mid-exposure
  plane); pairs on the x axis (x = the electrode line). The zone is max|E| >= threshold
  (field-based, so a threshold scan needs no new solve).
- Laser: fibres advance along +z; a bare tip, or the centre of a diffuser's emitting section,
  lies in the plane z = 0. Length is the longest extent along z, diameter the widest across
  (along x, in any plane).
  Ex-vivo experiments run with perfusion off and the paper's (or the assumed) start
  temperature (`LaserSimulationSettings.initial_temperature_c`, `perfusion`).
Lengths are measured on profiles of the field (IRE) or of log Omega (laser) with linear
interpolation of the threshold crossing, so the 2 mm test grids resolve them below a voxel.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.ndimage as ndi

from hepablate.anatomy.tissues import TissueTable, load_tissue_table
from hepablate.core.volume import Volume
from hepablate.devices import load_device_table
from hepablate.devices.catalog import DeviceTable
from hepablate.phantoms import BlockSpec, build_block
from hepablate.physics.ire import IreProblem
from hepablate.physics.laser.simulate import simulate_laser
from hepablate.plans.model import (
    Fibre,
    Illumination,
    IrePair,
    IreSimulationSettings,
    LaserSimulationSettings,
    Probe,
)
from hepablate.validation.experiments import IreExperiment, LaserExperiment, load_validation_suite

ConductivityModel = Literal["nonlinear", "constant"]

#: Margin (mm) of tissue around the expected zone; the zero-flux / fixed-temperature block
#: boundary is this far from the probes (the measured zones reach at most 25 mm from them).
BLOCK_MARGIN_MM = 40.0


def _extent(profile: np.ndarray, coords_mm: np.ndarray, thr: float) -> float:
    """Distance between the outermost threshold crossings of a 1-D profile (mm), linearly
    interpolated; 0 when the profile never reaches the threshold."""
    idx = np.flatnonzero(profile >= thr)
    if idx.size == 0:
        return 0.0

    def cross(i_in: int, i_out: int) -> float:
        if i_out < 0 or i_out >= profile.size:
            return float(coords_mm[i_in])
        p_in, p_out = float(profile[i_in]), float(profile[i_out])
        f = (p_in - thr) / (p_in - p_out) if p_in != p_out else 0.0
        return float(coords_mm[i_in] + f * (coords_mm[i_out] - coords_mm[i_in]))

    return abs(cross(int(idx[-1]), int(idx[-1]) + 1) - cross(int(idx[0]), int(idx[0]) - 1))


def _axes(grid: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nk, nj, ni = grid.array.shape
    (sx, sy, sz), (ox, oy, oz) = grid.spacing_mm, grid.origin_lps_mm
    return ox + sx * np.arange(ni), oy + sy * np.arange(nj), oz + sz * np.arange(nk)


def _nearest(coords: np.ndarray, v: float) -> int:
    return int(np.argmin(np.abs(coords - v)))


def _max_extent(vol: np.ndarray, axis: int, thr: float, coords: np.ndarray) -> float:
    """Largest extent along `axis` (0 = k/z, 1 = j/y, 2 = i/x) over all lines of `vol`."""
    moved = np.moveaxis(vol, axis, -1).reshape(-1, vol.shape[axis])
    hit = np.flatnonzero((moved >= thr).any(axis=1))
    return max((_extent(moved[r], coords, thr) for r in hit), default=0.0)


# ---- IRE --------------------------------------------------------------------------------------
def gauge_diameter_mm(gauge: int) -> float:
    table = load_validation_suite().needle_gauge_outer_diameter_mm
    if gauge not in table.value:
        raise KeyError(f"needle gauge {gauge} not in validation_experiments.yaml")
    return float(table.value[gauge])


@dataclass
class IreField:
    """The cumulative max|E| (V/cm, k j i) of one reproduced IRE experiment."""

    experiment_id: str
    voltage_v: float
    grid: Volume
    field_v_per_cm: np.ndarray
    currents_a: list[float]
    solve_s: float

    def dimensions_mm(self, threshold_v_per_cm: float) -> dict[str, float]:
        """width (x, mid-exposure plane y = 0), depth (largest y extent in that plane), height
        (largest z extent in the electrode plane y = 0)."""
        x, y, z = _axes(self.grid)
        e = self.field_v_per_cm
        k0, j0 = _nearest(z, 0.0), _nearest(y, 0.0)
        mid = e[k0]
        return {
            "width_mm": _extent(mid[j0, :], x, threshold_v_per_cm),
            "depth_mm": _max_extent(mid, 0, threshold_v_per_cm, y),
            "height_mm": _max_extent(e[:, j0, :], 0, threshold_v_per_cm, z),
        }


def ire_block_problem(
    half_size_mm: tuple[float, float, float],
    spacing_mm: float,
    tissues: TissueTable,
    devices: DeviceTable,
    model: ConductivityModel = "nonlinear",
    temperature_dependence: bool = False,
) -> IreProblem:
    """Homogeneous liver block centred on the origin (odd sizes: a cell centre at 0). With
    `temperature_dependence` the Joule heating is solved and sigma follows the temperature."""
    n = [2 * int(math.ceil(hs / spacing_mm)) + 1 for hs in half_size_mm]
    shape_kji = (n[2], n[1], n[0])
    origin = (
        -(n[0] - 1) * spacing_mm / 2,
        -(n[1] - 1) * spacing_mm / 2,
        -(n[2] - 1) * spacing_mm / 2,
    )
    grid = Volume(np.zeros(shape_kji, np.uint8), (spacing_mm,) * 3, origin)
    full = np.ones(shape_kji, bool)
    return IreProblem(
        grid,
        {"body": full, "liver": full.copy()},
        tissues,
        devices,
        IreSimulationSettings(
            conductivity_model=model,
            thermal=temperature_dependence,
            temperature_dependence=temperature_dependence,
            grid_spacing_mm=spacing_mm,
        ),
    )


def ire_layout(exp: IreExperiment, voltage_v: float) -> tuple[list[Probe], list[IrePair]]:
    p = exp.protocol
    if p.probes != 2:
        raise ValueError(f"{exp.id}: only two-probe experiments are reproduced so far")
    half = p.spacing_mm / 2
    probes = [
        Probe(
            id=f"P{i + 1}",
            tip_lps_mm=(x, 0.0, p.exposure_mm / 2),
            direction_lps=(0.0, 0.0, 1.0),
            exposure_mm=p.exposure_mm,
            diameter_mm=gauge_diameter_mm(p.gauge),
        )
        for i, x in enumerate((-half, half))
    ]
    pairs = [
        IrePair(
            anode="P1",
            cathode="P2",
            voltage_v=voltage_v,
            pulses=p.pulses,
            pulse_width_us=p.pulse_width_us,
        )
    ]
    return probes, pairs


def reproduce_ire(
    exp: IreExperiment,
    voltage_v: float,
    spacing_mm: float = 1.0,
    tissues: TissueTable | None = None,
    model: ConductivityModel = "nonlinear",
    temperature_dependence: bool = False,
) -> IreField:

    tissues = tissues or load_tissue_table()
    p = exp.protocol
    half = (
        p.spacing_mm / 2 + BLOCK_MARGIN_MM,
        BLOCK_MARGIN_MM,
        p.exposure_mm / 2 + BLOCK_MARGIN_MM,
    )
    prob = ire_block_problem(
        half, spacing_mm, tissues, load_device_table(), model, temperature_dependence
    )
    probes, pairs = ire_layout(exp, voltage_v)
    t0 = time.perf_counter()
    res = prob.simulate(probes, pairs)
    return IreField(
        exp.id,
        voltage_v,
        res.grid,
        res.field_max_v_per_cm,
        [r.current_a for r in res.pair_results],
        time.perf_counter() - t0,
    )


# ---- laser ------------------------------------------------------------------------------------
@dataclass
class LaserPrediction:
    experiment_id: str
    length_mm: float
    diameter_mm: float
    fused: bool | None
    tip_max_c: float
    zone_volume_ml: float
    runtime_s: float
    notes: list[str] = field(default_factory=list)


def _square(n: int, s: float) -> list[tuple[float, float]]:
    if n == 1:
        return [(0.0, 0.0)]
    if n == 2:
        return [(-s / 2, 0.0), (s / 2, 0.0)]
    if n == 4:
        return [(-s / 2, -s / 2), (s / 2, -s / 2), (-s / 2, s / 2), (s / 2, s / 2)]
    raise ValueError(f"{n} fibres: layouts for 1, 2 or 4 fibres only")


def experiment_devices(exp: LaserExperiment) -> DeviceTable:
    """The device table with its laser power/energy limits widened to the experiment's protocol:
    bench protocols (up to 7 W x 9 min) lie outside the assumed clinical device limits, which
    are a device property, not physics."""
    dev = load_device_table().model_copy(deep=True)
    p = exp.protocol
    lo, hi = dev.laser.power_limits_w.value
    dev.laser.power_limits_w.value = (min(lo, p.power_w), max(hi, p.power_w))
    e = p.power_w * p.duration_s
    lo, hi = dev.laser.energy_limits_j.value
    dev.laser.energy_limits_j.value = (min(lo, e), max(hi, e))
    return dev


def reproduce_laser(
    exp: LaserExperiment,
    spacing_mm: float = 1.0,
    time_step_s: float = 1.0,
    tissues: TissueTable | None = None,
) -> LaserPrediction:
    tissues = tissues or load_tissue_table()
    p = exp.protocol
    s = p.spacing_mm or 0.0
    size = s + 2 * BLOCK_MARGIN_MM + 20.0
    case = build_block(BlockSpec(size_mm=(size, size, size), spacing_mm=(spacing_mm,) * 3))
    # A bare tip on z = 0; a diffuser's emitting section centred on z = 0 (it ends at the tip).
    diffuser = p.fibre_type == "diffuser"
    length = float(p.diffuser_length_mm or 0.0) if diffuser else 0.0
    if diffuser and not length:
        raise ValueError(f"{exp.id}: a diffuser experiment needs diffuser_length_mm")
    tip_z = length / 2.0
    notes = []
    if p.wavelength_nm is None:
        notes.append("wavelength not given; 1064 nm optics used")
    xy = _square(p.fibres, s)
    fibres = [
        Fibre(
            id=f"F{i + 1}",
            tip_lps_mm=(x, y, tip_z),
            direction_lps=(0.0, 0.0, 1.0),
            emitter="diffuser" if diffuser else "bare",
            diffuser_length_mm=length or None,
            core_diameter_um=p.core_diameter_um or 300.0,
        )
        for i, (x, y) in enumerate(xy)
    ]
    ills = [
        Illumination(step=1, fibre=f.id, power_w=p.power_w, duration_s=p.duration_s) for f in fibres
    ]
    settings = LaserSimulationSettings(
        grid_spacing_mm=spacing_mm,
        roi_padding_mm=BLOCK_MARGIN_MM,
        time_step_s=time_step_s,
        initial_temperature_c=None if exp.in_vivo else exp.start_temperature_c,
        perfusion=p.perfusion,
        light_padding_mm=BLOCK_MARGIN_MM,
    )
    r = simulate_laser(
        case, fibres, ills, settings=settings, tissues=tissues, devices=experiment_devices(exp)
    )
    x, y, z = _axes(r.grid)
    thr = float(tissues.damage.arrhenius_omega_threshold.value)
    # log10 Omega is close to linear in distance near the boundary: interpolate on it.
    lw = np.log10(np.maximum(r.omega, 1e-30))
    lt = math.log10(thr)
    lw = np.where(r.zone, np.maximum(lw, lt), np.minimum(lw, lt - 1e-9))
    k0 = _nearest(z, 0.0)
    length = _max_extent(lw, 0, lt, z)
    # Width across the fibre: the widest line along x in any plane (a bare fibre's lesion
    # is widest ahead of its tip).
    diameter = _max_extent(lw, 2, lt, x)
    fused = None
    if p.fibres > 1:
        lab, _ = ndi.label(r.zone[k0])
        ids = {int(lab[_nearest(y, fy), _nearest(x, fx)]) for fx, fy in xy}
        fused = len(ids) == 1 and 0 not in ids
    return LaserPrediction(
        exp.id,
        length,
        diameter,
        fused,
        max(r.tip_max_c.values()),
        float(r.zone.sum()) * r.grid.voxel_volume_ml,
        r.runtime_s,
        notes,
    )
