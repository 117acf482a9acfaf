"""Outcome engines (pure functions over typed inputs) and the audit report.

- `recist`: RECIST 1.1 and mRECIST response with exact decimal arithmetic.
- `grading`: Clavien-Dindo (+ suffix d), CCI, SIR 2003 / 2017, CIRSE, CTCAE v5, timing.
- `endpoints`: Ahmed 2014 ablation end points (technical success, efficacy, residual vs LTP).
- `survival`: Puijk 2021 time-to-event end points, Kaplan-Meier (Greenwood; log / log-log CI),
  log-rank, Cox.
- `proportions`: Wilson and Clopper-Pearson intervals.
- `audit` / `audit_render` / `audit_figures`: the registry audit report (imported lazily:
  pandas, matplotlib).
"""

from __future__ import annotations

from typing import Any

from hepablate.outcomes.endpoints import (
    PatientFollowup,
    PatientRecurrence,
    TumourEndpoints,
    TumourImaging,
    TumourSession,
    patient_recurrence,
    technique_efficacy,
    tumour_endpoints,
)
from hepablate.outcomes.grading import (
    AdverseEventFacts,
    Grades,
    cirse,
    clavien_dindo,
    comprehensive_complication_index,
    ctcae,
    grade_all,
    sir_2003,
    sir_2017,
    timing,
)
from hepablate.outcomes.proportions import (
    Proportion,
    clopper_pearson_interval,
    proportion,
    wilson_interval,
)
from hepablate.outcomes.recist import (
    Assessment,
    Lesion,
    ResponseInputError,
    TimepointResponse,
    best_overall_response,
    evaluate_response,
    overall_response,
)
from hepablate.outcomes.survival import (
    KaplanMeier,
    LogRank,
    PatientCourse,
    TimeToEvent,
    cox_model,
    disease_free_survival,
    kaplan_meier,
    logrank,
    ltp_free_survival,
    overall_survival,
    time_to_progression,
)

_LAZY = {
    "AuditSettings": "hepablate.outcomes.audit",
    "FollowupSchedule": "hepablate.outcomes.audit",
    "load_schedule": "hepablate.outcomes.audit",
    "read_registry": "hepablate.outcomes.audit",
    "build_audit": "hepablate.outcomes.audit",
    "write_audit_report": "hepablate.outcomes.audit_render",
    "load_published_series": "hepablate.outcomes.published",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hepablate.outcomes' has no attribute {name!r}")


__all__ = [
    "AdverseEventFacts",
    "Assessment",
    "Grades",
    "KaplanMeier",
    "Lesion",
    "LogRank",
    "PatientCourse",
    "PatientFollowup",
    "PatientRecurrence",
    "Proportion",
    "ResponseInputError",
    "TimeToEvent",
    "TimepointResponse",
    "TumourEndpoints",
    "TumourImaging",
    "TumourSession",
    "best_overall_response",
    "cirse",
    "clavien_dindo",
    "clopper_pearson_interval",
    "comprehensive_complication_index",
    "cox_model",
    "ctcae",
    "disease_free_survival",
    "evaluate_response",
    "grade_all",
    "kaplan_meier",
    "logrank",
    "ltp_free_survival",
    "overall_response",
    "overall_survival",
    "patient_recurrence",
    "proportion",
    "sir_2003",
    "sir_2017",
    "technique_efficacy",
    "time_to_progression",
    "timing",
    "tumour_endpoints",
    "wilson_interval",
    *_LAZY,
]
