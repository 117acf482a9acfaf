"""Treatment-plan optimisation: the IRE planner (`plan_ire`) and its robustness estimate.
The laser planner lives in `hepablate.optimize.laser` (when present)."""

from hepablate.optimize.ire import (
    IrePlanOptions,
    coverage_probability,
    plan_ire,
)

__all__ = ["IrePlanOptions", "plan_ire", "coverage_probability"]
