"""Per-tissue arrays for the IRE engine (from the tissue table) and the engine defaults from
src/hepablate/data/ire_physics.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict

from hepablate.anatomy.tissues import Quantity, TissueTable


class IrePhysicsDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: int = 1
    pulse_rate_hz: Quantity[float]
    cooling_after_s: Quantity[float]
    thermal_time_step_s: Quantity[float]
    nonlinear_relaxation: Quantity[float]
    nonlinear_tolerance: Quantity[float]
    nonlinear_max_iterations: Quantity[int]


@lru_cache(maxsize=1)
def load_ire_physics_defaults() -> IrePhysicsDefaults:
    text = resources.files("hepablate.data").joinpath("ire_physics.yaml").read_text()
    return IrePhysicsDefaults.model_validate(yaml.safe_load(text))


@dataclass(frozen=True)
class TissueArrays:
    """Properties indexed by tissue index (the order of `TissueTable.tissue_names`)."""

    names: list[str]
    sigma0_s_per_m: np.ndarray
    sigma1_s_per_m: np.ndarray
    e_rev_v_per_cm: np.ndarray
    e_irr_v_per_cm: np.ndarray
    ire_threshold_v_per_cm: np.ndarray
    reversible_threshold_v_per_cm: np.ndarray
    alpha_per_c: np.ndarray
    k_w_per_m_k: np.ndarray
    rho_kg_per_m3: np.ndarray
    c_j_per_kg_k: np.ndarray
    perfusion_per_s: np.ndarray

    @classmethod
    def from_table(cls, t: TissueTable) -> TissueArrays:
        e = lambda name: t.per_tissue(lambda x: getattr(x.electrical, name).value)  # noqa: E731
        th = lambda name: t.per_tissue(lambda x: getattr(x.thermal, name).value)  # noqa: E731
        return cls(
            names=t.tissue_names,
            sigma0_s_per_m=e("sigma_baseline_s_per_m"),
            sigma1_s_per_m=e("sigma_electroporated_s_per_m"),
            e_rev_v_per_cm=e("e_reversible_v_per_cm"),
            e_irr_v_per_cm=e("e_irreversible_v_per_cm"),
            ire_threshold_v_per_cm=e("ire_threshold_v_per_cm"),
            reversible_threshold_v_per_cm=e("reversible_threshold_v_per_cm"),
            alpha_per_c=e("sigma_temperature_coeff_per_c"),
            k_w_per_m_k=th("conductivity_w_per_m_k"),
            rho_kg_per_m3=th("density_kg_per_m3"),
            c_j_per_kg_k=th("heat_capacity_j_per_kg_k"),
            perfusion_per_s=th("perfusion_per_s"),
        )


def sigma_of_field(
    e_v_per_cm: np.ndarray,
    sigma0: np.ndarray,
    sigma1: np.ndarray,
    e_rev: np.ndarray,
    e_irr: np.ndarray,
) -> np.ndarray:
    """Field-dependent conductivity (S/m): a C1 smoothed step (smoothstep 3s^2 - 2s^3) from
    sigma0 at e_rev to sigma1 at e_irr (the Go-Smart ramp thresholds; smoothed-step form of
    Sel et al. 2005)."""
    s = np.clip((e_v_per_cm - e_rev) / np.maximum(e_irr - e_rev, 1e-9), 0.0, 1.0)
    return sigma0 + (sigma1 - sigma0) * (s * s * (3.0 - 2.0 * s))


def sigma_log_slope(
    e_v_per_cm: np.ndarray,
    sigma0: np.ndarray,
    sigma1: np.ndarray,
    e_rev: np.ndarray,
    e_irr: np.ndarray,
) -> np.ndarray:
    """d ln(sigma) / d ln(E) of `sigma_of_field` (>= 0), for the Picard relaxation."""
    width = np.maximum(e_irr - e_rev, 1e-9)
    s = np.clip((e_v_per_cm - e_rev) / width, 0.0, 1.0)
    dsig = (sigma1 - sigma0) * 6.0 * s * (1.0 - s) / width
    sig = sigma0 + (sigma1 - sigma0) * (s * s * (3.0 - 2.0 * s))
    return dsig * e_v_per_cm / sig
