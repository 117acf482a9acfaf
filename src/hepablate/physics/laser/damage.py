"""Thermal damage models (temperatures in degC, times in s).

- Arrhenius damage integral ``Omega = integral A exp(-Ea / (R T)) dt`` (T in kelvin; A and Ea
  from the tissue table, ``damage.arrhenius_*``). The rate and parameters are the shared ones
  in `hepablate.effect.models` (reused, not duplicated). Omega = 1 is 63 % cell death.
- CEM43 (cumulative equivalent minutes at 43 degC, Sapareto and Dewey 1984):
  ``CEM43 = sum R^(43 - T) dt / 60`` with R = 0.5 at or above 43 degC and 0.25 below.

The heat solver accumulates both per voxel inside its time loop (`heat.py`); these functions
are the reference definitions, used for probe-point histories and by the tests.
"""

from __future__ import annotations

import numpy as np

from hepablate.effect.models import (
    GAS_CONSTANT_J_PER_MOL_K,
    ArrheniusParams,
    arrhenius_rate_per_s,
)

__all__ = [
    "GAS_CONSTANT_J_PER_MOL_K",
    "ArrheniusParams",
    "arrhenius_rate_per_s",
    "arrhenius_omega",
    "cem43_min",
]


def arrhenius_omega(temperature_c: np.ndarray, dt_s: float, params: ArrheniusParams) -> np.ndarray:
    """Omega from a temperature history sampled every `dt_s` (time along axis 0; rectangle
    rule on the end-of-step temperature, as the solver accumulates it)."""
    return np.sum(arrhenius_rate_per_s(temperature_c, params), axis=0) * dt_s


def cem43_min(temperature_c: np.ndarray, dt_s: float) -> np.ndarray:
    """CEM43 (minutes) from a temperature history sampled every `dt_s` (time along axis 0)."""
    t = np.asarray(temperature_c, dtype=float)
    r = np.where(t >= 43.0, 0.5, 0.25)
    return np.sum(r ** (43.0 - t), axis=0) * dt_s / 60.0
