"""RECIST 1.1 / mRECIST responses derived from the registry's lesion measurements.

The registry's `followups.overall_response_recist/_mrecist` are a cache of the engine's
response (`hepablate.outcomes.recist`), not a source of truth. This module derives both
responses for every live follow-up from its `followup_lesions` rows and compares them with
what is stored (docs/outcomes.md, "Tumour response"):

- Baseline. The registry holds one baseline measurement per tumour: `tumours.size_mm`, the
  longest diameter at baseline. A patient's baseline targets are the tumours that any of
  their follow-ups measures with role `target`; their baseline diameter (and, for mRECIST,
  their baseline viable diameter: untreated tumour is taken as entirely viable) is
  `tumours.size_mm`. Tumours measured as `non_target` are baseline non-targets (present).
  A patient without any such tumour has no baseline: every response is NE, with that reason.
  A baseline that breaks the target-selection rules (more than 2 liver targets, a target
  < 10 mm) gives NE with the rule as the reason.
- New lesions. A `followup_lesions` row with role `new` counts as a new lesion under both
  criteria (the registry does not record the vascular pattern; the entry is the reader's
  statement that a new HCC lesion is present, i.e. `confirmed_hcc`).
- mRECIST is for HCC: it is derived only for patients whose diagnosis is `hcc`.
- Rule: the derived response wins in reports; a stored response that differs is kept
  unchanged in the database and listed as a discrepancy. The engine's `non_cr_non_pd`
  (non-target disease only) agrees with a stored `sd` (the stored vocabulary has no
  non-CR/non-PD). An empty stored response is "not entered", not a discrepancy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd

from hepablate.outcomes.recist import (
    Assessment,
    Criteria,
    Lesion,
    Response,
    ResponseInputError,
    evaluate_response,
)

CRITERIA: tuple[Criteria, ...] = ("recist1.1", "mrecist")
STORED_COLUMN: dict[Criteria, str] = {
    "recist1.1": "overall_response_recist",
    "mrecist": "overall_response_mrecist",
}
RESPONSE_ORDER: tuple[Response, ...] = ("cr", "pr", "sd", "non_cr_non_pd", "pd", "ne")
NO_BASELINE = "no baseline measurements (no tumour of the patient is measured as a lesion)"
RULE = (
    "derived response wins in reports; a differing stored response is kept and flagged "
    "(non_cr_non_pd agrees with stored sd; an empty stored response is not flagged)"
)


@dataclass(frozen=True)
class DerivedResponse:
    followup_id: int
    patient_id: int
    followup_date: date
    criteria: Criteria
    derived: Response
    stored: str | None
    reasons: list[str] = field(default_factory=list)

    @property
    def discrepant(self) -> bool:
        return agrees(self.stored, self.derived) is False


def agrees(stored: str | None, derived: Response) -> bool | None:
    """None when nothing is stored; otherwise whether the stored response matches."""
    if stored is None:
        return None
    if derived == "non_cr_non_pd":
        return stored == "sd"
    return stored == derived


def _dec(v: Any) -> Decimal | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    return Decimal(str(v))


def _opt(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def _lesion(row: dict[str, Any]) -> Lesion:
    role = row["role"]
    node = bool(_opt(row.get("is_lymph_node")))
    lid = f"new-{int(row['id'])}" if role == "new" else str(int(row["tumour_id"]))
    return Lesion(
        lesion_id=lid,
        role=role,
        is_lymph_node=node,
        longest_diameter_mm=_dec(row.get("longest_diameter_mm")),
        short_axis_mm=_dec(row.get("short_axis_mm")),
        viable_longest_diameter_mm=_dec(row.get("viable_longest_diameter_mm")),
        non_target_status=_opt(row.get("non_target_status")),
        confirmed_hcc=True if role == "new" else None,
    )


def derive_responses(
    fr: dict[str, pd.DataFrame], first_date: dict[int, date] | None = None
) -> list[DerivedResponse]:
    """Derived responses of every live follow-up (on or after the first ablation if
    `first_date` is given), both criteria, in patient then date order."""
    fu = fr["followups"]
    fl = fr["followup_lesions"]
    tum = fr["tumours"]
    pts = fr["patients"]
    diagnosis = {int(p): d for p, d in zip(pts["id"], pts["diagnosis"], strict=True)}
    size = {int(t): _dec(s) for t, s in zip(tum["id"], tum["size_mm"], strict=True)}
    lesions_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in _records(fl):
        lesions_of[int(row["followup_id"])].append(row)
    fus_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in _records(fu.sort_values(["followup_date", "id"])):
        pid = int(row["patient_id"])
        if first_date is not None and (
            pid not in first_date or row["followup_date"] < first_date[pid]
        ):
            continue
        fus_of[pid].append(row)
    out: list[DerivedResponse] = []
    for pid in sorted(fus_of):
        fus = fus_of[pid]
        roles: dict[int, str] = {}
        for f in fus:
            for ls in lesions_of.get(int(f["id"]), []):
                tid = _opt(ls.get("tumour_id"))
                if tid is not None and ls["role"] in ("target", "non_target"):
                    # a tumour measured as a target at any follow-up is a baseline target
                    if roles.get(int(tid)) != "target":
                        roles[int(tid)] = ls["role"]
        baseline_lesions = [
            Lesion(
                lesion_id=str(tid),
                role="target",
                longest_diameter_mm=size.get(tid),
                viable_longest_diameter_mm=size.get(tid),
            )
            if role == "target"
            else Lesion(lesion_id=str(tid), role="non_target", non_target_status="present")
            for tid, role in sorted(roles.items())
        ]
        baseline = Assessment("baseline", tuple(baseline_lesions))
        follow = [
            Assessment(str(f["id"]), tuple(_lesion(ls) for ls in lesions_of.get(int(f["id"]), [])))
            for f in fus
        ]
        for crit in CRITERIA:
            if crit == "mrecist" and diagnosis.get(pid) != "hcc":
                continue
            results: list[tuple[Response, list[str]]]
            if not baseline_lesions:
                results = [("ne", [NO_BASELINE])] * len(fus)
            else:
                try:
                    results = [
                        (r.overall, r.reasons) for r in evaluate_response(baseline, follow, crit)
                    ]
                except ResponseInputError as exc:
                    results = [("ne", [f"baseline not evaluable: {exc}"])] * len(fus)
            for f, (resp, why) in zip(fus, results, strict=True):
                out.append(
                    DerivedResponse(
                        int(f["id"]),
                        pid,
                        f["followup_date"],
                        crit,
                        resp,
                        _opt(f.get(STORED_COLUMN[crit])),
                        list(why),
                    )
                )
    return out


def _time_point(days: int, due_days: Sequence[tuple[int, int]], tol: int) -> int | None:
    best: tuple[int, int] | None = None
    for month, due in due_days:
        gap = abs(days - due)
        if gap <= tol and (best is None or gap < best[0]):
            best = (gap, month)
    return None if best is None else best[1]


def response_section(
    derived: Sequence[DerivedResponse],
    groups: dict[str, set[int]],
    first_date: dict[int, date],
    due_days: Sequence[tuple[int, int]],
    tolerance_days: int,
    prop: Callable[[int, int, float], dict[str, Any]],
    level: float,
    patient_code: dict[int, str],
) -> dict[str, Any]:
    """The `responses` block of audit.json: per group (patients), per criteria, per time
    point (scheduled month +/- tolerance; the follow-up nearest the due day, the earlier on
    a tie), counts and proportions of each response; and the discrepancies."""
    chosen: dict[tuple[int, Criteria, int], tuple[int, DerivedResponse]] = {}
    for d in derived:
        days = (d.followup_date - first_date[d.patient_id]).days
        month = _time_point(days, due_days, tolerance_days)
        if month is None:
            continue
        gap = abs(days - dict(due_days)[month])
        key = (d.patient_id, d.criteria, month)
        if key not in chosen or gap < chosen[key][0]:
            chosen[key] = (gap, d)
    by_group: dict[str, Any] = {}
    for g, pids in groups.items():
        block: dict[str, Any] = {}
        for crit in CRITERIA:
            tps: dict[str, Any] = {}
            for month, _ in due_days:
                rs = [
                    v[1].derived
                    for k, v in chosen.items()
                    if k[1] == crit and k[2] == month and k[0] in pids
                ]
                n = len(rs)
                tps[str(month)] = {
                    "n": n,
                    **{r: prop(sum(1 for x in rs if x == r), n, level) for r in RESPONSE_ORDER},
                    "objective_response": prop(sum(1 for x in rs if x in ("cr", "pr")), n, level),
                }
            block[crit] = tps
        by_group[g] = block
    disc = [d for d in derived if d.discrepant]
    not_entered = sum(1 for d in derived if d.stored is None)
    return {
        "rule": RULE,
        "baseline": "tumours.size_mm of the tumours measured as targets (docs/outcomes.md)",
        "time_points_months": [m for m, _ in due_days],
        "tolerance_days": tolerance_days,
        "followups_evaluated": len({d.followup_id for d in derived}),
        "patients_without_baseline": len(
            {d.patient_id for d in derived if NO_BASELINE in d.reasons}
        ),
        "stored_not_entered": not_entered,
        "by_group": by_group,
        "discrepancies": {
            "count": len(disc),
            "followups": [
                {
                    "followup_id": d.followup_id,
                    "patient_code": patient_code.get(d.patient_id),
                    "followup_date": d.followup_date.isoformat(),
                    "criteria": d.criteria,
                    "stored": d.stored,
                    "derived": d.derived,
                    "reasons": d.reasons,
                }
                for d in disc
            ],
        },
    }
