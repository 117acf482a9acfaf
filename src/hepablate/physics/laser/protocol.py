"""A laser protocol checked against the device table and resolved to its illuminations: one
`FibreShot` (tip position LPS mm, direction, emitter, power, duration) per illumination.

Checks: fibre count, unique ids, wavelength, emitter fields, power, duration and energy per
illumination within the device limits, pull-backs, shafts apart by at least the needle
diameter, and every tip inside the body. Each failure is one `InputError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hepablate.case.model import Case
from hepablate.devices.catalog import DeviceTable
from hepablate.errors import InputError
from hepablate.physics.laser.emission import Emitter
from hepablate.plans.limits import check_laser_limits
from hepablate.plans.model import Fibre, Illumination

#: Length (mm) of fibre shaft behind the tip used for the overlap check when no entry is given.
SHAFT_CHECK_MM = 40.0


@dataclass(frozen=True)
class FibreShot:
    """One illumination resolved to a tip position (LPS mm)."""

    index: int  # position in plan.illuminations
    fibre_id: str
    step: int
    tip_lps_mm: np.ndarray
    power_w: float
    duration_s: float
    direction_lps: np.ndarray
    emitter: Emitter


def _unit(v, fld: str, source: str | None) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    n = float(np.linalg.norm(a))
    if not np.all(np.isfinite(a)) or n < 1e-9:
        raise InputError("direction must be a non-zero finite vector", source=source, field=fld)
    return a / n


def _segment_distance(p0, p1, q0, q1) -> float:
    """Smallest distance between segments p0-p1 and q0-q1 (sampled; fibres are short)."""
    t = np.linspace(0.0, 1.0, 81)
    a = p0[None, :] + t[:, None] * (p1 - p0)[None, :]
    b = q0[None, :] + t[:, None] * (q1 - q0)[None, :]
    return float(np.min(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)))


def resolve_protocol(
    fibres: list[Fibre],
    illuminations: list[Illumination],
    devices: DeviceTable,
    source: str | None = None,
) -> list[FibreShot]:
    """Check a laser protocol against the device table; tip position of every illumination."""
    check_laser_limits(fibres, illuminations, source=source)
    dev = devices.laser
    fmin, fmax = dev.fibres_min.value, dev.fibres_max.value
    if not fmin <= len(fibres) <= fmax:
        raise InputError(
            f"{len(fibres)} fibres; the device takes {fmin} to {fmax}",
            source=source,
            field="fibres",
        )
    ids = [f.id for f in fibres]
    if len(set(ids)) != len(ids):
        raise InputError("fibre ids must be unique", source=source, field="fibres")
    if not illuminations:
        raise InputError(
            "a laser plan needs at least one illumination", source=source, field="illuminations"
        )
    by_id = {f.id: f for f in fibres}
    wl = dev.wavelength_nm.value
    for i, f in enumerate(fibres):
        if abs(f.wavelength_nm - wl) > 0.5:
            raise InputError(
                f"wavelength {f.wavelength_nm:g} nm: the tissue table has optical properties "
                f"at {wl:g} nm only",
                source=source,
                field=f"fibres.{i}.wavelength_nm",
            )
    dirs = {
        f.id: _unit(f.direction_lps, f"fibres.{i}.direction_lps", source)
        for i, f in enumerate(fibres)
    }
    emitters = {f.id: fibre_emitter(f, i, devices, source) for i, f in enumerate(fibres)}
    p_lo, p_hi = dev.power_limits_w.value
    e_lo, e_hi = dev.energy_limits_j.value
    shots: list[FibreShot] = []
    seen: set[tuple[int, str]] = set()
    for n, il in enumerate(illuminations):
        fld = f"illuminations.{n}"
        if il.fibre not in by_id:
            raise InputError(
                f"unknown fibre '{il.fibre}'; plan fibres are {', '.join(ids)}",
                source=source,
                field=f"{fld}.fibre",
            )
        if (il.step, il.fibre) in seen:
            raise InputError(
                f"fibre '{il.fibre}' is illuminated twice in step {il.step}",
                source=source,
                field=f"{fld}.step",
            )
        seen.add((il.step, il.fibre))
        if not math.isfinite(il.duration_s) or il.duration_s <= 0:
            raise InputError(
                f"duration must be positive (s), got {il.duration_s:g}",
                source=source,
                field=f"{fld}.duration_s",
            )
        if not math.isfinite(il.power_w) or not p_lo <= il.power_w <= p_hi:
            raise InputError(
                f"power {il.power_w:g} W outside the device limits [{p_lo:g}, {p_hi:g}] W",
                source=source,
                field=f"{fld}.power_w",
            )
        energy = il.power_w * il.duration_s
        if il.energy_j is not None and abs(il.energy_j - energy) > 0.01 * energy + 1e-6:
            raise InputError(
                f"energy {il.energy_j:g} J differs from power x duration = {energy:g} J",
                source=source,
                field=f"{fld}.energy_j",
            )
        if not e_lo <= energy <= e_hi:
            raise InputError(
                f"energy {energy:g} J outside the device limits [{e_lo:g}, {e_hi:g}] J",
                source=source,
                field=f"{fld}.energy_j",
            )
        if not math.isfinite(il.pullback_mm) or il.pullback_mm < 0:
            raise InputError(
                f"pull-back must be >= 0 mm, got {il.pullback_mm:g}",
                source=source,
                field=f"{fld}.pullback_mm",
            )
        f = by_id[il.fibre]
        tip = np.asarray(f.tip_lps_mm, float) - il.pullback_mm * dirs[f.id]
        shots.append(
            FibreShot(
                n,
                f.id,
                il.step,
                tip,
                float(il.power_w),
                float(il.duration_s),
                dirs[f.id],
                emitters[f.id],
            )
        )
    min_gap = dev.needle_diameter_mm.value
    for a in range(len(fibres)):
        for b in range(a + 1, len(fibres)):
            fa, fb = fibres[a], fibres[b]
            ta, tb = np.asarray(fa.tip_lps_mm, float), np.asarray(fb.tip_lps_mm, float)
            ea = ta - SHAFT_CHECK_MM * dirs[fa.id]
            eb = tb - SHAFT_CHECK_MM * dirs[fb.id]
            d = _segment_distance(ta, ea, tb, eb)
            if d < min_gap:
                raise InputError(
                    f"fibres '{fa.id}' and '{fb.id}' overlap: shafts {d:.2f} mm apart "
                    f"(< needle diameter {min_gap:g} mm)",
                    source=source,
                    field=f"fibres.{b}",
                )
    return shots


def emitting_ends(shots: list[FibreShot]) -> np.ndarray:
    """Both ends of every emitting section (LPS mm, (n, 3)): the tip, and for a diffuser
    also the start of its section; the planning and light boxes hold them all."""
    pts = [s.tip_lps_mm for s in shots]
    pts += [
        s.tip_lps_mm - s.emitter.length_mm * s.direction_lps for s in shots if s.emitter.length_mm
    ]
    return np.array(pts)


def fibre_emitter(f: Fibre, i: int, devices: DeviceTable, source: str | None) -> Emitter:
    """The emitting end of fibre `f` (number `i` in the plan), with the device table's
    numerical aperture where the fibre gives none."""
    if f.emitter == "diffuser" and f.diffuser_length_mm is None:
        raise InputError(
            "a diffuser needs its emitting length (mm)",
            source=source,
            field=f"fibres.{i}.diffuser_length_mm",
        )
    if f.emitter == "bare" and f.diffuser_length_mm is not None:
        raise InputError(
            "a bare fibre has no diffuser length; set emitter: diffuser or drop the length",
            source=source,
            field=f"fibres.{i}.diffuser_length_mm",
        )
    dev = devices.laser
    na = dev.numerical_aperture.value if f.numerical_aperture is None else f.numerical_aperture
    n_t = dev.tissue_refractive_index.value
    if na >= n_t:
        raise InputError(
            f"numerical aperture {na:g} must be below the tissue's refractive index {n_t:g}",
            source=source,
            field=f"fibres.{i}.numerical_aperture",
        )
    return Emitter(
        kind=f.emitter,
        length_mm=float(f.diffuser_length_mm or 0.0),
        core_radius_mm=f.core_diameter_um / 2000.0,
        half_angle_rad=math.asin(na / n_t),
    )


def check_in_body(case: Case, shots: list[FibreShot], source: str | None = None) -> None:
    body = case.structures.get("body")
    for s in shots:
        ijk = np.rint(case.grid.lps_to_index(s.tip_lps_mm)).astype(int)
        inside = bool(np.all(ijk >= 0) and np.all(ijk < np.array(case.grid.shape_ijk)))
        if inside and body is not None:
            inside = bool(body[ijk[2], ijk[1], ijk[0]])
        if not inside:
            raise InputError(
                f"fibre '{s.fibre_id}' tip {np.round(s.tip_lps_mm, 1).tolist()} (LPS mm) is "
                "outside the body",
                source=source,
                field=f"illuminations.{s.index}",
            )
