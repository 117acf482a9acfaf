"""Cell-kill models: Peleg-Fermi survival after electroporation pulses, field-threshold IRE
zones, and Arrhenius thermal damage."""

from hepablate.effect.models import (
    GAS_CONSTANT_J_PER_MOL_K,
    ArrheniusParams,
    PelegFermiParams,
    arrhenius_rate_per_s,
    ire_zone,
    peleg_fermi_survival,
    reversible_zone,
)

__all__ = [
    "GAS_CONSTANT_J_PER_MOL_K",
    "ArrheniusParams",
    "PelegFermiParams",
    "arrhenius_rate_per_s",
    "ire_zone",
    "peleg_fermi_survival",
    "reversible_zone",
]
