"""Cell-kill models (all parameters come from the tissue table, `damage` section).

- Peleg-Fermi survival after `n` pulses at field E (Garcia et al. 2014, parameters via the
  Go-Smart Elmer module): ``S = 1 / (1 + exp((E - Ec(n)) / A(n)))`` with
  ``Ec(n) = Ec0 exp(-k1 n)`` and ``A(n) = A0 exp(-k2 n)``, E, Ec and A in V/m.
- IRE zone: voxels whose maximum field reaches the irreversible threshold (V/cm); reversible
  zone: at or above the reversible threshold but below the irreversible one.
- Arrhenius damage rate ``dOmega/dt = A exp(-Ea / (R T))``, T in kelvin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepablate.anatomy.tissues import TissueTable

#: Molar gas constant (J/(mol K)), CODATA 2018 exact value.
GAS_CONSTANT_J_PER_MOL_K = 8.314462618
KELVIN_OFFSET_C = 273.15


@dataclass(frozen=True)
class PelegFermiParams:
    ec0_v_per_m: float
    a0_v_per_m: float
    k1: float
    k2: float
    survival_threshold: float

    @classmethod
    def from_table(cls, table: TissueTable) -> PelegFermiParams:
        d = table.damage
        return cls(
            d.peleg_fermi_ec0_v_per_m.value,
            d.peleg_fermi_a0_v_per_m.value,
            d.peleg_fermi_k1.value,
            d.peleg_fermi_k2.value,
            d.peleg_fermi_survival_threshold.value,
        )


@dataclass(frozen=True)
class ArrheniusParams:
    a_per_s: float
    ea_j_per_mol: float
    omega_threshold: float

    @classmethod
    def from_table(cls, table: TissueTable) -> ArrheniusParams:
        d = table.damage
        return cls(
            d.arrhenius_a_per_s.value,
            d.arrhenius_ea_j_per_mol.value,
            d.arrhenius_omega_threshold.value,
        )


def peleg_fermi_survival(
    field_v_per_cm: np.ndarray, pulses: int, params: PelegFermiParams
) -> np.ndarray:
    """Surviving fraction after `pulses` pulses at |E| `field_v_per_cm` (V/cm)."""
    if pulses <= 0:
        raise ValueError("pulses must be positive")
    e_v_per_m = np.asarray(field_v_per_cm, dtype=float) * 100.0
    ec = params.ec0_v_per_m * np.exp(-params.k1 * pulses)
    a = params.a0_v_per_m * np.exp(-params.k2 * pulses)
    # exp overflows to inf for huge fields, which correctly gives survival 0.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp((e_v_per_m - ec) / a))


def ire_zone(field_max_v_per_cm: np.ndarray, threshold_v_per_cm: np.ndarray | float) -> np.ndarray:
    """IRE zone: max field at or above the irreversible threshold (per voxel or scalar)."""
    return np.asarray(field_max_v_per_cm) >= threshold_v_per_cm


def reversible_zone(
    field_max_v_per_cm: np.ndarray,
    reversible_v_per_cm: np.ndarray | float,
    irreversible_v_per_cm: np.ndarray | float,
) -> np.ndarray:
    """Reversibly electroporated: between the reversible and the irreversible threshold."""
    f = np.asarray(field_max_v_per_cm)
    return (f >= reversible_v_per_cm) & (f < irreversible_v_per_cm)


def arrhenius_rate_per_s(temperature_c: np.ndarray | float, params: ArrheniusParams) -> np.ndarray:
    """Damage rate dOmega/dt (1/s) at temperature `temperature_c` (degC)."""
    t_k = np.asarray(temperature_c, dtype=float) + KELVIN_OFFSET_C
    return params.a_per_s * np.exp(-params.ea_j_per_mol / (GAS_CONSTANT_J_PER_MOL_K * t_k))
