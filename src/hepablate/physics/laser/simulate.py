"""Laser forward model: fibres and illuminations of a plan -> temperature and thermal damage.

Pipeline (LPS mm in, SI inside the heat solver):
1. validate the protocol against the device table (protocol.py: power, energy, duration,
   fibre count, emitters, overlap, fibres inside the body);
2. build the planning grid (isotropic, `grid_spacing_mm`) around the target plus margin and
   every tip position (pull-backs included), padded by `roi_padding_mm`;
3. per step (simultaneous fibres), solve one unit fluence per fibre (light.py), scale by the
   fibre power, and advance the Pennes equation (heat.py); the light is re-solved
   `optical_updates_per_step` times per step with coagulated optical properties (Omega >= 1);
4. after the last step, `cooldown_s` more seconds without light (damage keeps growing).
The zone is Omega >= the tissue table's threshold (Arrhenius) or CEM43 >= its threshold.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hepablate.anatomy.tissues import TissueTable, tissue_map
from hepablate.case.model import Case
from hepablate.core.progress import NullProgress, Progress
from hepablate.core.volume import Volume
from hepablate.devices.catalog import DeviceTable
from hepablate.effect.models import ArrheniusParams
from hepablate.errors import InputError
from hepablate.physics.grid import planning_grid, resample_structures
from hepablate.physics.kernels import blas_single_thread
from hepablate.physics.laser.emission import (
    emission_points,
    source_density,
    surface_points,
    tip_temperature_c,
)
from hepablate.physics.laser.heat import ThermalModel, ThermalState, advance
from hepablate.physics.laser.light import DiffusionOperator
from hepablate.physics.laser.protocol import (
    FibreShot,
    check_in_body,
    emitting_ends,
    resolve_protocol,
)
from hepablate.plans.model import Fibre, Illumination, LaserSimulationSettings

#: Sampling interval (s) of the tip temperature histories.
HISTORY_INTERVAL_S = 5.0

OpticalVariant = Literal["value", "low", "high"]


@dataclass
class LaserResult:
    grid: Volume
    structures: dict[str, np.ndarray]
    tissue_index: np.ndarray
    omega: np.ndarray
    cem43_min: np.ndarray
    tmax_c: np.ndarray
    zone: np.ndarray
    shots: list[FibreShot]
    tip_history: dict[int, tuple[np.ndarray, np.ndarray]]
    """Per illumination index: (times s, trilinear temperature at the tip degC)."""
    tip_max_c: dict[int, float]
    criterion: str
    runtime_s: float
    timings_s: dict[str, float] = field(default_factory=dict)
    light_iterations: int = 0
    domain: LaserDomain | None = None


# ---- materials --------------------------------------------------------------------------------
@dataclass
class Materials:
    """Per-tissue property vectors (index = tissue index in the table)."""

    mu_a_per_mm: np.ndarray
    mu_s_per_mm: np.ndarray
    coag_mu_a: np.ndarray
    coag_mu_s: np.ndarray
    k: np.ndarray
    rho_c: np.ndarray
    wcb: np.ndarray
    qmet: np.ndarray
    t_blood_c: float


def materials(
    table: TissueTable,
    settings: LaserSimulationSettings,
    variant: dict[str, OpticalVariant] | None = None,
) -> Materials:
    """Property vectors; `variant` picks the low/high end of the table range per property
    ('mu_a', 'mu_s', 'perfusion') for the sensitivity study."""
    variant = variant or {}
    bad = set(settings.optical_scale) - {"mu_a", "mu_s"}
    if bad:
        raise InputError(
            f"unknown optical_scale key(s) {sorted(bad)}; expected 'mu_a', 'mu_s'",
            field="laser_simulation.optical_scale",
        )
    for k, v in settings.optical_scale.items():
        if not (math.isfinite(v) and v > 0):
            raise InputError(
                "optical scale factors must be positive",
                field=f"laser_simulation.optical_scale.{k}",
            )

    def q(getter, which: OpticalVariant = "value") -> np.ndarray:
        vals = []
        for name in table.tissue_names:
            qq = getter(table.tissues[name])
            if which == "value" or qq.range is None:
                vals.append(float(qq.value))
            else:
                vals.append(float(qq.range[0] if which == "low" else qq.range[1]))
        return np.array(vals)

    opt = lambda t: t.optical_1064nm  # noqa: E731
    th = lambda t: t.thermal  # noqa: E731
    mu_a = 0.1 * q(lambda t: opt(t).mu_a_per_cm, variant.get("mu_a", "value"))
    mu_s = 0.1 * q(lambda t: opt(t).mu_s_reduced_per_cm, variant.get("mu_s", "value"))
    mu_a *= settings.optical_scale.get("mu_a", 1.0)
    mu_s *= settings.optical_scale.get("mu_s", 1.0)
    b = table.blood
    rho_b_c_b = b.density_kg_per_m3.value * b.heat_capacity_j_per_kg_k.value
    return Materials(
        mu_a_per_mm=mu_a,
        mu_s_per_mm=mu_s,
        coag_mu_a=q(lambda t: opt(t).coagulated_mu_a_factor),
        coag_mu_s=q(lambda t: opt(t).coagulated_mu_s_factor),
        k=q(lambda t: th(t).conductivity_w_per_m_k),
        rho_c=q(lambda t: th(t).density_kg_per_m3) * q(lambda t: th(t).heat_capacity_j_per_kg_k),
        wcb=q(lambda t: th(t).perfusion_per_s, variant.get("perfusion", "value")) * rho_b_c_b,
        qmet=q(lambda t: th(t).metabolic_w_per_m3),
        t_blood_c=b.temperature_c.value,
    )


def check_tissues(table: TissueTable, structures: dict[str, np.ndarray]) -> None:
    for key in structures:
        name = table.tissue_of_structure(key)
        if name not in table.tissues:
            raise InputError(
                f"structure '{key}' maps to unknown tissue '{name}'; the tissue table has "
                f"{', '.join(table.tissues)}",
                field=f"structure_tissue.{key.split(':')[0]}",
            )


# ---- grid -------------------------------------------------------------------------------------
@dataclass
class LaserDomain:
    grid: Volume
    structures: dict[str, np.ndarray]
    tissue_index: np.ndarray
    body: np.ndarray
    heat_sink: np.ndarray


def domain_box(
    case: Case, tips_lps_mm: np.ndarray, settings: LaserSimulationSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The default planning box (LPS mm): target + margin and every tip position, padded by
    `roi_padding_mm`."""
    bb = case.grid.with_array(case.target_mask).bounding_box_lps_mm()
    if bb is None:
        raise InputError("the target tumour mask is empty", field="target")
    pts = np.vstack([bb[0] - case.margin_mm, bb[1] + case.margin_mm, np.atleast_2d(tips_lps_mm)])
    return pts.min(axis=0) - settings.roi_padding_mm, pts.max(axis=0) + settings.roi_padding_mm


def build_domain(
    case: Case,
    tips_lps_mm: np.ndarray,
    settings: LaserSimulationSettings,
    table: TissueTable,
    grid: Volume | None = None,
) -> LaserDomain:
    """Tissues on `grid`, or on the default planning box (`domain_box`)."""
    check_tissues(table, case.structures)
    if grid is None:
        lo, hi = domain_box(case, tips_lps_mm, settings)
        grid = planning_grid(case.grid, settings.grid_spacing_mm, lo, hi)
    structures = resample_structures(case.structures, case.grid, grid)
    tix = tissue_map(structures, table)
    body = structures.get("body", np.ones(grid.array.shape, bool)) & (tix >= 0)
    blood = table.tissue_names.index("blood") if "blood" in table.tissues else -2
    return LaserDomain(grid, structures, tix, body, body & (tix == blood))


# ---- forward model ----------------------------------------------------------------------------
def simulate_laser(
    case: Case,
    fibres: list[Fibre],
    illuminations: list[Illumination],
    *,
    settings: LaserSimulationSettings,
    tissues: TissueTable,
    devices: DeviceTable,
    progress: Progress | None = None,
    source: str | None = None,
    optical_variant: dict[str, OpticalVariant] | None = None,
    domain: LaserDomain | None = None,
) -> LaserResult:
    """Run the forward model (see the module docstring). Raises InputError on bad input.

    BLAS runs on one thread meanwhile: the numba kernels use the cores, and OpenBLAS's own
    threads spinning against them made the 1 mm benchmark 3.4 s instead of 2.5 s."""
    with blas_single_thread():
        return _simulate_laser(
            case,
            fibres,
            illuminations,
            settings=settings,
            tissues=tissues,
            devices=devices,
            progress=progress,
            source=source,
            optical_variant=optical_variant,
            domain=domain,
        )


def _simulate_laser(
    case: Case,
    fibres: list[Fibre],
    illuminations: list[Illumination],
    *,
    settings: LaserSimulationSettings,
    tissues: TissueTable,
    devices: DeviceTable,
    progress: Progress | None,
    source: str | None,
    optical_variant: dict[str, OpticalVariant] | None,
    domain: LaserDomain | None,
) -> LaserResult:
    t_start = time.perf_counter()
    progress = progress or NullProgress()
    shots = resolve_protocol(fibres, illuminations, devices, source)
    check_in_body(case, shots, source)
    mats = materials(tissues, settings, optical_variant)
    if domain is None:
        domain = build_domain(case, emitting_ends(shots), settings, tissues)
    grid, tix, body = domain.grid, domain.tissue_index, domain.body
    h = float(grid.spacing_mm[0])
    t_idx = np.where(tix >= 0, tix, 0).astype(np.intp)
    # Ex-vivo mode (perfusion off): dead tissue has neither perfusion nor metabolism, and the
    # temperature that the surface and the vessels hold is the ambient start temperature.
    t_start_c = (
        mats.t_blood_c if settings.initial_temperature_c is None else settings.initial_temperature_c
    )
    t_ref_c = mats.t_blood_c if settings.perfusion else t_start_c
    live = 1.0 if settings.perfusion else 0.0
    model = ThermalModel.build(
        conductivity_w_per_m_k=mats.k[t_idx],
        rho_c_j_per_m3_k=mats.rho_c[t_idx],
        wcb_w_per_m3_k=live * mats.wcb[t_idx],
        qmet_w_per_m3=live * mats.qmet[t_idx],
        body=body,
        heat_sink=domain.heat_sink,
        spacing_mm=h,
        t_blood_c=t_ref_c,
    )
    dt_max = min(settings.time_step_s, 0.95 * model.stable_dt_s())
    arr = ArrheniusParams.from_table(tissues)
    cem_thr = tissues.damage.cem43_threshold_min.value
    state = ThermalState.initial(grid.array.shape, t_start_c)
    shape = grid.array.shape
    steps = sorted({s.step for s in shots})
    total_s = sum(max(s.duration_s for s in shots if s.step == st) for st in steps)
    total_s += settings.cooldown_s
    progress.start("laser: light and heat", total=total_s)
    history: dict[int, list[tuple[float, float]]] = {s.index: [] for s in shots}
    timings = {"light_s": 0.0, "heat_s": 0.0}
    light_iters = 0
    pad = settings.light_padding_mm
    tip_radius_mm = devices.laser.tip_temperature_radius_mm.value
    for st in steps:
        on = [s for s in shots if s.step == st]
        ijk = {s.index: grid.lps_to_index(s.tip_lps_mm) for s in on}
        near = {
            s.index: surface_points(s.tip_lps_mm, s.direction_lps, s.emitter, tip_radius_mm)
            for s in on
        }
        step_len = max(s.duration_s for s in on)
        n_upd = settings.optical_updates_per_step
        # Segments end where the light is re-solved (coagulated optics) or a fibre stops.
        update_at = {0.0} | {step_len * (j + 1) / (n_upd + 1) for j in range(n_upd)}
        cuts = update_at | {s.duration_s for s in on}
        bounds = sorted(c for c in cuts if 0 <= c < step_len) + [step_len]
        # Light sub-domain: a box `pad` mm around this step's tips.
        all_ijk = grid.lps_to_index(emitting_ends(on))
        lo = np.maximum(np.floor(all_ijk.min(axis=0) - pad / h).astype(int), 0)
        hi = np.minimum(
            np.ceil(all_ijk.max(axis=0) + pad / h).astype(int) + 1, np.array(grid.shape_ijk)
        )
        crop = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
        cshape = tuple(hi[::-1] - lo[::-1])
        unit_phi: dict[int, np.ndarray] = {}
        mu_a_c: np.ndarray | None = None
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if a in update_at or not unit_phi:
                t0 = time.perf_counter()
                coag = state.omega[crop] >= arr.omega_threshold
                ti = t_idx[crop]
                mu_a_c = mats.mu_a_per_mm[ti] * np.where(coag, mats.coag_mu_a[ti], 1.0)
                mu_s_c = mats.mu_s_per_mm[ti] * np.where(coag, mats.coag_mu_s[ti], 1.0)
                op = DiffusionOperator.build(mu_a_c, mu_s_c, body[crop], h)
                for s in on:
                    # The beam's first-collision depth uses the (coagulated) optics at the tip.
                    c = np.clip(
                        np.rint(ijk[s.index] - lo).astype(int), 0, np.array(cshape[::-1]) - 1
                    )
                    mu_t = float(mu_a_c[c[2], c[1], c[0]] + mu_s_c[c[2], c[1], c[0]])
                    pts, w = emission_points(
                        s.tip_lps_mm, s.direction_lps, s.emitter, max(mu_t, 1e-3), h
                    )
                    src = source_density(cshape, grid.lps_to_index(pts) - lo, w, 1.0, h**3)
                    phi, it = op.solve(src, x0=unit_phi.get(s.index))
                    unit_phi[s.index] = phi
                    light_iters += it
                timings["light_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            q = np.zeros(shape, dtype=np.float32)
            for s in on:
                if s.duration_s > a + 1e-9:
                    # W/mm^3 -> W/m^3
                    assert mu_a_c is not None  # set with the first light solve
                    q[crop] += s.power_w * mu_a_c * unit_phi[s.index] * 1e9
            t = a
            while t < b - 1e-9:
                chunk = min(HISTORY_INTERVAL_S, b - t)
                advance(
                    model,
                    state,
                    q,
                    chunk,
                    dt_max,
                    a_per_s=arr.a_per_s,
                    ea_j_per_mol=arr.ea_j_per_mol,
                    coag_omega=arr.omega_threshold,
                )
                t += chunk
                for s in on:
                    history[s.index].append(
                        (state.time_s, tip_temperature_c(state.temperature_c, grid, near[s.index]))
                    )
                progress.advance(chunk)
            timings["heat_s"] += time.perf_counter() - t0
    if settings.cooldown_s > 0:
        t0 = time.perf_counter()
        advance(
            model,
            state,
            np.zeros(shape),
            settings.cooldown_s,
            dt_max,
            a_per_s=arr.a_per_s,
            ea_j_per_mol=arr.ea_j_per_mol,
            coag_omega=arr.omega_threshold,
        )
        progress.advance(settings.cooldown_s)
        timings["heat_s"] += time.perf_counter() - t0
    progress.finish()
    if settings.damage_criterion == "arrhenius":
        zone = state.omega >= arr.omega_threshold
    else:
        zone = state.cem43_min >= cem_thr
    zone &= body & ~domain.heat_sink
    hist = {
        i: (np.array([x[0] for x in v]), np.array([x[1] for x in v])) for i, v in history.items()
    }
    tip_max = {i: float(v[1].max()) if v[1].size else t_start_c for i, v in hist.items()}
    return LaserResult(
        grid=grid,
        structures=domain.structures,
        tissue_index=tix,
        omega=state.omega,
        cem43_min=state.cem43_min,
        tmax_c=state.tmax_c,
        zone=zone,
        shots=shots,
        tip_history=hist,
        tip_max_c=tip_max,
        criterion=settings.damage_criterion,
        runtime_s=time.perf_counter() - t_start,
        timings_s=timings,
        light_iterations=light_iters,
        domain=domain,
    )
