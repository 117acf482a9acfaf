"""hepablate: planning and auditing image-guided percutaneous ablation of liver tumours.

The Python API (docs/python-api.md)::

    import hepablate
    case = hepablate.load_case("examples/ire-perihilar")
    ev = hepablate.plan(case, "ire")                # search, then evaluate the chosen plan
    edited = ev.plan.model_copy(deep=True)
    edited.pairs[0].voltage_v = 2400.0
    ev2 = hepablate.evaluate(case, edited)           # the one evaluation every caller uses
    print(ev2.status, ev2.metrics.target_coverage)
    hepablate.write_outputs(ev2, "out/edited")       # plan.json, zone.nii.gz, report.pdf, ...

Names are imported on first use, so `import hepablate` stays cheap.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("hepablate")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

_API = {
    "load_case": "hepablate.case",
    "Case": "hepablate.case.model",
    "plan": "hepablate.pipeline",
    "evaluate": "hepablate.pipeline",
    "write_outputs": "hepablate.pipeline",
    "Evaluation": "hepablate.evaluation.evaluation",
    "Plan": "hepablate.plans.model",
    "Probe": "hepablate.plans.model",
    "IrePair": "hepablate.plans.model",
    "Fibre": "hepablate.plans.model",
    "Illumination": "hepablate.plans.model",
    "read_plan": "hepablate.plans.model",
    "write_plan": "hepablate.plans.model",
    "IrePlanOptions": "hepablate.optimize.ire",
    "LaserPlanOptions": "hepablate.optimize.laser",
    "build_phantom": "hepablate.phantoms",
    "modality_names": "hepablate.modalities",
    "connect_registry": "hepablate.registry.db:connect",
    "migrate_registry": "hepablate.registry.db:migrate",
    "write_audit_report": "hepablate.outcomes",
    "InputError": "hepablate.errors",
}

if TYPE_CHECKING:
    from hepablate.case import load_case
    from hepablate.case.model import Case
    from hepablate.errors import InputError
    from hepablate.evaluation.evaluation import Evaluation
    from hepablate.modalities import modality_names
    from hepablate.optimize.ire import IrePlanOptions
    from hepablate.optimize.laser import LaserPlanOptions
    from hepablate.outcomes import write_audit_report
    from hepablate.phantoms import build_phantom
    from hepablate.pipeline import evaluate, plan, write_outputs
    from hepablate.plans.model import (
        Fibre,
        Illumination,
        IrePair,
        Plan,
        Probe,
        read_plan,
        write_plan,
    )
    from hepablate.registry.db import connect as connect_registry
    from hepablate.registry.db import migrate as migrate_registry


def __getattr__(name: str) -> Any:
    where = _API.get(name)
    if where is None:
        raise AttributeError(f"module 'hepablate' has no attribute '{name}'")
    mod, _, attr = where.partition(":")
    return getattr(importlib.import_module(mod), attr or name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = [
    "Case",
    "Evaluation",
    "Fibre",
    "Illumination",
    "InputError",
    "IrePair",
    "IrePlanOptions",
    "LaserPlanOptions",
    "Plan",
    "Probe",
    "__version__",
    "build_phantom",
    "connect_registry",
    "evaluate",
    "load_case",
    "migrate_registry",
    "modality_names",
    "plan",
    "read_plan",
    "write_audit_report",
    "write_outputs",
    "write_plan",
]
