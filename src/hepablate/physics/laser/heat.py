"""Transient Pennes bioheat equation with thermal damage, explicit finite volumes.

    rho c dT/dt = div(k grad T) + Q - w rho_b c_b (T - T_b) + Q_met

Units: SI inside (m, W/m^3, J/(m^3 K)); temperatures in degC. Cell-centred finite volumes on
an isotropic grid, face conductivity the harmonic mean of the two cells. Boundary models:
- large vessels (tissue 'blood') are heat sinks held at blood temperature (Dirichlet on vessel
  voxels, conduction through the faces to them);
- air (outside the body) is insulating (no flux);
- the grid edge is either at blood temperature (ghost cell one voxel out, default) or
  insulated (used by the energy-balance test).
Perfusion and metabolic heat stop where Omega >= 1 (coagulated tissue).

Time stepping: forward Euler with a step below the stability limit
``dt <= rho c / (sum of face conductances + w rho_b c_b)`` (about 1.2 s at 1 mm in liver), so
every step is a cheap stencil pass; at the 1 mm planning grid this is cheaper than an implicit
solve per step. The scheme is in flux form, so energy is conserved to round-off.

Damage is accumulated per voxel at every step (rectangle rule on the end-of-step temperature):
Arrhenius Omega and CEM43 (see `damage.py`); the maximum temperature is tracked too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from hepablate.physics.kernels import _variant, use_parallel
from hepablate.physics.laser.damage import GAS_CONSTANT_J_PER_MOL_K


def _steps_py(
    t,
    t_new,
    rho_c,
    kx,
    ky,
    kz,
    edge_g,
    wcb,
    qmet,
    q,
    fixed,
    omega,
    cem,
    tmax,
    t_blood,
    dt,
    n_steps,
    a_per_s,
    ea_over_r,
    coag_omega,
    damage_floor_c,
):
    nk, nj, ni = t.shape
    # Ping-pong between the two buffers instead of copying back after every step.
    for step in range(n_steps):
        a = t if step % 2 == 0 else t_new
        b = t_new if step % 2 == 0 else t
        for k in nb.prange(nk):
            for j in range(nj):
                for i in range(ni):
                    tp = a[k, j, i]
                    if fixed[k, j, i]:
                        b[k, j, i] = tp
                        continue
                    flux = edge_g[k, j, i] * (t_blood - tp)
                    if i > 0:
                        flux += kx[k, j, i - 1] * (a[k, j, i - 1] - tp)
                    if i < ni - 1:
                        flux += kx[k, j, i] * (a[k, j, i + 1] - tp)
                    if j > 0:
                        flux += ky[k, j - 1, i] * (a[k, j - 1, i] - tp)
                    if j < nj - 1:
                        flux += ky[k, j, i] * (a[k, j + 1, i] - tp)
                    if k > 0:
                        flux += kz[k - 1, j, i] * (a[k - 1, j, i] - tp)
                    if k < nk - 1:
                        flux += kz[k, j, i] * (a[k + 1, j, i] - tp)
                    src = q[k, j, i]
                    if omega[k, j, i] < coag_omega:
                        src += qmet[k, j, i] - wcb[k, j, i] * (tp - t_blood)
                    tn = tp + dt * (flux + src) / rho_c[k, j, i]
                    b[k, j, i] = tn
                    if tn > tmax[k, j, i]:
                        tmax[k, j, i] = tn
                    # No dose below the floor (DAMAGE_FLOOR_C explains why); skipping the
                    # exponentials there also halves the cost of a step.
                    if tn > damage_floor_c:
                        omega[k, j, i] += dt * a_per_s * math.exp(-ea_over_r / (tn + 273.15))
                        r = 0.5 if tn >= 43.0 else 0.25
                        cem[k, j, i] += dt / 60.0 * r ** (43.0 - tn)
    if n_steps % 2 == 1:
        for k in nb.prange(nk):
            for j in range(nj):
                for i in range(ni):
                    t[k, j, i] = t_new[k, j, i]


_STEPS = {
    par: nb.njit(parallel=par, cache=True)(_variant(_steps_py, "_par" if par else "_ser"))
    for par in (False, True)
}


@dataclass
class ThermalModel:
    """Per-voxel thermal coefficients on an isotropic grid (arrays in [k, j, i] order)."""

    rho_c_j_per_m3_k: np.ndarray
    kx: np.ndarray  # face conductances k_face / h^2, W/(m^3 K)
    ky: np.ndarray
    kz: np.ndarray
    edge_g: np.ndarray  # conductance to the grid-edge ghost at blood temperature, W/(m^3 K)
    wcb_w_per_m3_k: np.ndarray  # w rho_b c_b
    qmet_w_per_m3: np.ndarray
    fixed: np.ndarray  # voxels held at blood temperature (vessels)
    t_blood_c: float
    spacing_mm: float

    @classmethod
    def build(
        cls,
        *,
        conductivity_w_per_m_k: np.ndarray,
        rho_c_j_per_m3_k: np.ndarray,
        wcb_w_per_m3_k: np.ndarray,
        qmet_w_per_m3: np.ndarray,
        body: np.ndarray,
        heat_sink: np.ndarray,
        spacing_mm: float,
        t_blood_c: float,
        edge: str = "blood_temperature",
    ) -> ThermalModel:
        h = spacing_mm * 1e-3
        kk = np.where(body, conductivity_w_per_m_k, 0.0)

        def face(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            s = a + b
            return np.divide(2.0 * a * b, s, out=np.zeros_like(s), where=s > 0) / h**2

        kx = face(kk[:, :, :-1], kk[:, :, 1:])
        ky = face(kk[:, :-1, :], kk[:, 1:, :])
        kz = face(kk[:-1, :, :], kk[1:, :, :])
        edge_g = np.zeros_like(kk)
        if edge == "blood_temperature":
            for ax in range(3):
                for end in (0, -1):
                    sl: list[slice | int] = [slice(None)] * 3
                    sl[ax] = end
                    edge_g[tuple(sl)] += kk[tuple(sl)] / h**2
        elif edge != "insulated":
            raise ValueError(f"unknown edge model {edge!r}")
        rho_c = np.where(body, rho_c_j_per_m3_k, 1.0)
        fixed = heat_sink | ~body
        # Coefficients in float32 halve the memory traffic of the (bandwidth-bound) stencil;
        # temperatures and doses stay float64. The flux form still conserves energy exactly.
        f32 = np.float32
        return cls(
            rho_c,
            kx.astype(f32),
            ky.astype(f32),
            kz.astype(f32),
            edge_g.astype(f32),
            np.where(body, wcb_w_per_m3_k, 0.0).astype(f32),
            np.where(body, qmet_w_per_m3, 0.0).astype(f32),
            fixed,
            t_blood_c,
            spacing_mm,
        )

    def stable_dt_s(self) -> float:
        """Largest forward-Euler step that keeps every update a convex combination."""
        g = self.edge_g.astype(float) + self.wcb_w_per_m3_k
        g[:, :, :-1] += self.kx
        g[:, :, 1:] += self.kx
        g[:, :-1, :] += self.ky
        g[:, 1:, :] += self.ky
        g[:-1, :, :] += self.kz
        g[1:, :, :] += self.kz
        ratio = np.where(self.fixed, np.inf, self.rho_c_j_per_m3_k / np.maximum(g, 1e-30))
        return float(ratio.min())


@dataclass
class ThermalState:
    """Temperature and accumulated dose per voxel."""

    temperature_c: np.ndarray
    omega: np.ndarray
    cem43_min: np.ndarray
    tmax_c: np.ndarray
    time_s: float = 0.0

    @classmethod
    def initial(cls, shape: tuple[int, int, int], t0_c: float) -> ThermalState:
        t = np.full(shape, float(t0_c))
        return cls(t, np.zeros(shape), np.zeros(shape), t.copy())


#: Temperatures at or below this (degC) add no damage in the solver: at 39 degC the
#: tissue-table Arrhenius rate is 5e-4/s (0.3 over 10 min) -- see docs/physics-laser.md for why
#: the baseline is excluded -- and CEM43 grows by 0.004 min per minute.
DAMAGE_FLOOR_C = 39.0


def advance(
    model: ThermalModel,
    state: ThermalState,
    source_w_per_m3: np.ndarray,
    duration_s: float,
    dt_s: float,
    *,
    a_per_s: float,
    ea_j_per_mol: float,
    coag_omega: float = 1.0,
    damage_floor_c: float = DAMAGE_FLOOR_C,
) -> float:
    """Advance `state` by `duration_s` with a constant source; returns the step used (s).

    The step is `dt_s` shortened so that a whole number of steps fills `duration_s`.
    """
    if duration_s <= 0:
        return 0.0
    n = max(1, math.ceil(duration_s / dt_s - 1e-9))
    dt = duration_s / n
    buf = np.empty_like(state.temperature_c)
    _STEPS[use_parallel(buf.size)](
        state.temperature_c,
        buf,
        model.rho_c_j_per_m3_k,
        model.kx,
        model.ky,
        model.kz,
        model.edge_g,
        model.wcb_w_per_m3_k,
        model.qmet_w_per_m3,
        np.asarray(source_w_per_m3, dtype=np.float32),
        model.fixed,
        state.omega,
        state.cem43_min,
        state.tmax_c,
        model.t_blood_c,
        dt,
        n,
        a_per_s,
        ea_j_per_mol / GAS_CONSTANT_J_PER_MOL_K,
        coag_omega,
        damage_floor_c,
    )
    state.time_s += duration_s
    return dt


def analytic_perfused_point_source(
    r_m: np.ndarray, power_w: float, k_w_per_m_k: float, wcb_w_per_m3_k: float
) -> np.ndarray:
    """Steady temperature rise (K) around a point heat source in an infinite perfused medium:
    P / (4 pi k r) exp(-r sqrt(w rho_b c_b / k))."""
    return (
        power_w
        / (4 * np.pi * k_w_per_m_k * r_m)
        * np.exp(-r_m * np.sqrt(wcb_w_per_m3_k / k_w_per_m_k))
    )
