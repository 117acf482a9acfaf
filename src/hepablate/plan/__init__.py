"""The Plan: case reference + placement + protocol + predicted effect + metrics + warnings +
provenance, in one versioned JSON format (docs/plan-format.md)."""

from hepablate.plan.model import (
    PLAN_FORMAT_VERSION,
    Fibre,
    Illumination,
    IrePair,
    IreSimulationSettings,
    LaserSimulationSettings,
    Metrics,
    Parameter,
    Plan,
    PlanWarning,
    Probe,
    Provenance,
    read_plan,
    write_plan,
)

__all__ = [
    "PLAN_FORMAT_VERSION",
    "Plan",
    "Probe",
    "IrePair",
    "Fibre",
    "Illumination",
    "IreSimulationSettings",
    "LaserSimulationSettings",
    "Metrics",
    "PlanWarning",
    "Parameter",
    "Provenance",
    "read_plan",
    "write_plan",
]
