"""IRE physics: electric field with sigma(E), currents, cell kill and Joule heating for needle
electrodes on a planning grid (docs/physics-ire.md)."""

from hepablate.physics.ire.problem import IreProblem, IreResult, PairResult, UnitBasis
from hepablate.physics.ire.validate import validate_ire_plan

__all__ = ["IreProblem", "IreResult", "PairResult", "UnitBasis", "validate_ire_plan"]
