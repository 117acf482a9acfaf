"""Checks on an IRE placement and protocol, shared by the planner and `hepablate simulate`.

Each problem raises `InputError` naming the field, e.g. ``field 'pairs[2].cathode'``.
"""

from __future__ import annotations

import numpy as np

from hepablate.core.volume import Volume
from hepablate.devices.catalog import DeviceTable
from hepablate.errors import InputError
from hepablate.plans.limits import check_ire_limits
from hepablate.plans.model import IrePair, Probe


def probe_axis(probe: Probe) -> tuple[np.ndarray, np.ndarray]:
    """Unit direction and the start of the active exposure (LPS mm)."""
    d = np.asarray(probe.direction_lps, dtype=float)
    d = d / np.linalg.norm(d)
    tip = np.asarray(probe.tip_lps_mm, dtype=float)
    return d, tip - probe.exposure_mm * d


def _needle_segment(probe: Probe) -> tuple[np.ndarray, np.ndarray]:
    """The physical needle as far as the plan knows it: entry (if given) or exposure start
    to tip."""
    d, start = probe_axis(probe)
    tip = np.asarray(probe.tip_lps_mm, dtype=float)
    if probe.entry_lps_mm is not None:
        start = np.asarray(probe.entry_lps_mm, dtype=float)
    return start, tip


def segment_distance_mm(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> float:
    """Smallest distance between segments p0-p1 and q0-q1 (mm): the interior critical point
    (clamped) and the four end-point projections are the candidates."""
    u, v, w0 = p1 - p0, q1 - q0, p0 - q0
    a, b, c, d, e = u @ u, u @ v, v @ v, u @ w0, v @ w0
    den = a * c - b * b
    cands = []
    if den > 1e-12:
        s = np.clip((b * e - c * d) / den, 0, 1)
        t = np.clip((a * e - b * d) / den, 0, 1)
        cands.append((s, t))
    for s in (0.0, 1.0):
        t = np.clip((e + b * s) / c, 0, 1) if c > 0 else 0.0
        cands.append((s, t))
    for t in (0.0, 1.0):
        s = np.clip((b * t - d) / a, 0, 1) if a > 0 else 0.0
        cands.append((s, t))
    return float(min(np.linalg.norm(w0 + s * u - t * v) for s, t in cands))


def validate_ire_plan(
    probes: list[Probe],
    pairs: list[IrePair],
    *,
    grid: Volume,
    body: np.ndarray | None,
    devices: DeviceTable,
    source: str | None = None,
) -> None:
    """Raise `InputError` for the first problem found in `probes`/`pairs`.

    Checks: ids unique per cycle; direction non-zero; exposure and diameter positive and
    within the device's exposure limits; the exposure inside `grid` and inside `body` (if
    given); probes of one cycle neither touching nor overlapping; pairs naming two different
    probes of their cycle; voltage positive and at most the generator limit; pulses and pulse
    width positive.
    """
    check_ire_limits(probes, pairs, source)
    dev = devices.ire
    lo_lim, hi_lim = dev.exposure_limits_mm.value
    if not probes:
        raise InputError("an IRE plan needs at least two probes", source=source, field="probes")
    seen: dict[tuple[int, str], int] = {}
    for i, p in enumerate(probes):
        f = f"probes[{i}]"
        if (p.cycle, p.id) in seen:
            raise InputError(
                f"duplicate probe id '{p.id}' in cycle {p.cycle}", source=source, field=f"{f}.id"
            )
        seen[(p.cycle, p.id)] = i
        if not np.all(np.isfinite(p.tip_lps_mm)):
            raise InputError("must be finite", source=source, field=f"{f}.tip_lps_mm")
        if not np.all(np.isfinite(p.direction_lps)) or np.linalg.norm(p.direction_lps) < 1e-9:
            raise InputError(
                "must be a non-zero direction vector", source=source, field=f"{f}.direction_lps"
            )
        if not p.exposure_mm > 0:
            raise InputError(
                f"exposure must be positive, got {p.exposure_mm} mm",
                source=source,
                field=f"{f}.exposure_mm",
            )
        if not lo_lim <= p.exposure_mm <= hi_lim:
            raise InputError(
                f"exposure {p.exposure_mm} mm outside the device range {lo_lim:g} to {hi_lim:g} mm",
                source=source,
                field=f"{f}.exposure_mm",
            )
        if not p.diameter_mm > 0:
            raise InputError("diameter must be positive", source=source, field=f"{f}.diameter_mm")
        d, start = probe_axis(p)
        pts = start + np.outer(
            np.linspace(0, 1, max(2, int(p.exposure_mm) + 1)), np.asarray(p.tip_lps_mm) - start
        )
        ijk = grid.lps_to_index(pts)
        size = np.asarray(grid.shape_ijk)
        if np.any(ijk < -0.5) or np.any(ijk > size - 0.5):
            raise InputError(
                "the probe's active exposure extends outside the planning grid",
                source=source,
                field=f"{f}.tip_lps_mm",
            )
        if body is not None:
            idx = np.clip(np.round(ijk).astype(int), 0, size - 1)
            if not np.all(body[idx[:, 2], idx[:, 1], idx[:, 0]]):
                raise InputError(
                    "the probe's active exposure lies partly outside the body",
                    source=source,
                    field=f"{f}.tip_lps_mm",
                )
    for i, p in enumerate(probes):
        for j in range(i):
            q = probes[j]
            if q.cycle != p.cycle:
                continue
            gap = segment_distance_mm(*_needle_segment(p), *_needle_segment(q))
            if gap <= 0.5 * (p.diameter_mm + q.diameter_mm):
                raise InputError(
                    f"probe '{p.id}' touches or overlaps probe '{q.id}' (axis distance "
                    f"{gap:.2f} mm)",
                    source=source,
                    field=f"probes[{i}].tip_lps_mm",
                )
    vmax = dev.max_voltage_v.value
    for k, pr in enumerate(pairs):
        f = f"pairs[{k}]"
        for role in ("anode", "cathode"):
            pid = getattr(pr, role)
            if (pr.cycle, pid) not in seen:
                raise InputError(
                    f"no probe '{pid}' in cycle {pr.cycle}", source=source, field=f"{f}.{role}"
                )
        if pr.anode == pr.cathode:
            raise InputError(
                "anode and cathode must be different probes", source=source, field=f"{f}.cathode"
            )
        if not pr.voltage_v > 0:
            raise InputError(
                f"voltage must be positive, got {pr.voltage_v} V",
                source=source,
                field=f"{f}.voltage_v",
            )
        if pr.voltage_v > vmax:
            raise InputError(
                f"voltage {pr.voltage_v:g} V above the generator limit {vmax:g} V",
                source=source,
                field=f"{f}.voltage_v",
            )
        if pr.pulses < 1:
            raise InputError("pulses must be at least 1", source=source, field=f"{f}.pulses")
        if not pr.pulse_width_us > 0:
            raise InputError(
                "pulse width must be positive", source=source, field=f"{f}.pulse_width_us"
            )
