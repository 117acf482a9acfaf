"""Treatment modalities behind one interface (`Modality`), chosen by name.

Each modality module provides its planner, its engine run and its outputs; everything else
(zone metrics, criteria, status, provenance: `hepablate.evaluation.evaluation`) is shared. To
add one (RFA, MWA), write a module with a `MODALITY` object and add its name to `_MODULES`.
"""

from __future__ import annotations

import importlib

from hepablate.errors import InputError
from hepablate.modalities.base import Modality

_MODULES = {
    "ire": "hepablate.modalities.ire",
    "laser": "hepablate.modalities.laser",
}


def modality_names() -> list[str]:
    return list(_MODULES)


def get_modality(name: str) -> Modality:
    """The modality called `name` ('ire', 'laser'); InputError for an unknown name."""
    mod = _MODULES.get(name)
    if mod is None:
        raise InputError(
            f"unknown modality '{name}' (expected one of {', '.join(_MODULES)})",
            field="modality",
        )
    try:
        obj: Modality = importlib.import_module(mod).MODALITY
    except ImportError:
        raise InputError(
            f"{name} planning is not available in this installation", field="modality"
        ) from None
    return obj


__all__ = ["Modality", "get_modality", "modality_names"]
