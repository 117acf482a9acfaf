"""Tumour response by RECIST 1.1 and mRECIST, decided with exact decimal arithmetic.

Sources:
- RECIST 1.1: Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised
  RECIST guideline (version 1.1). Eur J Cancer 2009;45:228-247. Target lesions: at most 5, at
  most 2 per organ, measurable (longest diameter >= 10 mm; lymph nodes short axis >= 15 mm).
  Target response (section 4.3.1): CR all non-nodal targets gone and every target node short
  axis < 10 mm; PR sum of diameters decreased by >= 30 % from baseline; PD sum increased by
  >= 20 % from the nadir (smallest sum on study, baseline included) AND by >= 5 mm absolute;
  SD otherwise. Overall response: Table 1 (targets present) and Table 2 (non-targets only).
- mRECIST: Lencioni R, Llovet JM. Modified RECIST (mRECIST) assessment for hepatocellular
  carcinoma. Semin Liver Dis 2010;30:52-60. Sums use the viable (arterially enhancing)
  longest diameter of typical HCC targets; CR = no intratumoural arterial enhancement in any
  target; PR >= 30 % decrease of the viable sum from baseline; PD >= 20 % increase from the
  nadir of viable sums (no absolute-increase rule). A new lesion counts when it is >= 10 mm
  with the typical vascular pattern (arterial hyperenhancement with washout) or is confirmed
  as HCC otherwise; an effusion or ascites counts as progression only when cytologically
  proven malignant; malignant portal vein thrombosis is a non-measurable (non-target) lesion.

All thresholds are compared with `fractions.Fraction` built from the decimal strings, never
floats, so a value exactly on a threshold (-30 %, +20 % with +5 mm) is classified exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

Role = Literal["target", "non_target", "new"]
NonTargetStatus = Literal["present", "absent", "unequivocal_progression"]
NonTargetKind = Literal["lesion", "effusion", "portal_vein_thrombosis"]
Response = Literal["cr", "pr", "sd", "pd", "ne", "non_cr_non_pd"]
Criteria = Literal["recist1.1", "mrecist"]

PR_DECREASE = Fraction(-30, 100)
PD_INCREASE = Fraction(20, 100)
PD_ABSOLUTE_MM = Fraction(5)
NODE_NORMAL_SHORT_AXIS_MM = Fraction(10)
MEASURABLE_LESION_MM = Fraction(10)
MEASURABLE_NODE_SHORT_AXIS_MM = Fraction(15)
MRECIST_NEW_LESION_MM = Fraction(10)
MAX_TARGETS = 5
MAX_TARGETS_PER_ORGAN = 2


class ResponseInputError(ValueError):
    """The measurements break a rule of the criteria (e.g. 6 target lesions)."""


def exact(value: Decimal | str | int | Fraction | None) -> Fraction | None:
    """An exact Fraction from a decimal string / Decimal / int; floats are refused."""
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError("give measurements as decimal strings or Decimal, not float")
    if isinstance(value, Fraction):
        return value
    return Fraction(Decimal(str(value)))


@dataclass(frozen=True)
class Lesion:
    """One lesion measured at one time point (sizes in mm, as decimal strings or Decimal)."""

    lesion_id: str
    role: Role
    organ: str = "liver"
    is_lymph_node: bool = False
    longest_diameter_mm: Decimal | str | None = None
    short_axis_mm: Decimal | str | None = None
    viable_longest_diameter_mm: Decimal | str | None = None
    non_target_status: NonTargetStatus | None = None
    non_target_kind: NonTargetKind = "lesion"
    cytology_malignant: bool | None = None
    typical_hcc_pattern: bool | None = None
    confirmed_hcc: bool | None = None


@dataclass(frozen=True)
class Assessment:
    """All lesions at one imaging time point; `label` is a date or visit name."""

    label: str
    lesions: tuple[Lesion, ...]


@dataclass(frozen=True)
class TimepointResponse:
    label: str
    criteria: Criteria
    target_sum_mm: Fraction | None
    nadir_mm: Fraction | None
    change_from_baseline: Fraction | None
    change_from_nadir: Fraction | None
    target: Response | None
    non_target: Response | None
    new_lesions: bool
    overall: Response
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        def f(x: Fraction | None) -> str | None:
            return None if x is None else str(Decimal(x.numerator) / Decimal(x.denominator))

        return {
            "label": self.label,
            "criteria": self.criteria,
            "target_sum_mm": f(self.target_sum_mm),
            "nadir_mm": f(self.nadir_mm),
            "change_from_baseline": f(self.change_from_baseline),
            "change_from_nadir": f(self.change_from_nadir),
            "target": self.target,
            "non_target": self.non_target,
            "new_lesions": self.new_lesions,
            "overall": self.overall,
            "reasons": self.reasons,
        }


def validate_baseline(baseline: Assessment, criteria: Criteria = "recist1.1") -> None:
    """Check the target selection rules: <= 5 targets, <= 2 per organ, all measurable."""
    targets = [ls for ls in baseline.lesions if ls.role == "target"]
    if len(targets) > MAX_TARGETS:
        raise ResponseInputError(f"{len(targets)} target lesions; at most {MAX_TARGETS} allowed")
    per_organ = Counter(ls.organ for ls in targets)
    for organ, count in per_organ.items():
        if count > MAX_TARGETS_PER_ORGAN:
            raise ResponseInputError(
                f"{count} target lesions in organ '{organ}'; at most {MAX_TARGETS_PER_ORGAN}"
            )
    if any(ls.role == "new" for ls in baseline.lesions):
        raise ResponseInputError("a baseline assessment cannot hold new lesions")
    ids = Counter(ls.lesion_id for ls in baseline.lesions)
    dup = [k for k, v in ids.items() if v > 1]
    if dup:
        raise ResponseInputError(f"lesion ids repeated at baseline: {dup}")
    for ls in targets:
        if ls.is_lymph_node:
            sa = exact(ls.short_axis_mm)
            if sa is None or sa < MEASURABLE_NODE_SHORT_AXIS_MM:
                raise ResponseInputError(
                    f"target node {ls.lesion_id}: short axis must be >= 15 mm at baseline"
                )
        elif criteria == "mrecist":
            v = exact(ls.viable_longest_diameter_mm)
            if v is None or v < MEASURABLE_LESION_MM:
                raise ResponseInputError(
                    f"mRECIST target {ls.lesion_id}: viable diameter must be >= 10 mm at baseline"
                )
        else:
            d = exact(ls.longest_diameter_mm)
            if d is None or d < MEASURABLE_LESION_MM:
                raise ResponseInputError(
                    f"target {ls.lesion_id}: longest diameter must be >= 10 mm at baseline"
                )


def _size(ls: Lesion, criteria: Criteria) -> Fraction | None:
    if ls.is_lymph_node:
        return exact(ls.short_axis_mm)
    if criteria == "mrecist":
        return exact(ls.viable_longest_diameter_mm)
    return exact(ls.longest_diameter_mm)


def _target_sum(a: Assessment, ids: Sequence[str], criteria: Criteria) -> tuple[Fraction, int]:
    """Sum over measured targets and the number of targets without a measurement."""
    by_id = {ls.lesion_id: ls for ls in a.lesions if ls.role == "target"}
    total = Fraction(0)
    missing = 0
    for i in ids:
        ls = by_id.get(i)
        s = None if ls is None else _size(ls, criteria)
        if s is None:
            missing += 1
        else:
            total += s
    return total, missing


def _target_cr(a: Assessment, ids: Sequence[str], criteria: Criteria) -> bool:
    by_id = {ls.lesion_id: ls for ls in a.lesions if ls.role == "target"}
    for i in ids:
        ls = by_id[i]
        s = _size(ls, criteria)
        if ls.is_lymph_node:
            if s is None or s >= NODE_NORMAL_SHORT_AXIS_MM:
                return False
        elif s is None or s != 0:
            return False
    return True


def _non_target_response(a: Assessment, criteria: Criteria) -> Response | None:
    nts = [ls for ls in a.lesions if ls.role == "non_target"]
    if not nts:
        return None
    statuses: list[str] = []
    for ls in nts:
        st = ls.non_target_status
        if (
            st == "unequivocal_progression"
            and criteria == "mrecist"
            and ls.non_target_kind == "effusion"
            and ls.cytology_malignant is not True
        ):
            # mRECIST: an effusion/ascites is progression only when cytology proves it.
            st = "present"
        if (
            ls.is_lymph_node
            and st == "present"
            and (sa := exact(ls.short_axis_mm)) is not None
            and sa < NODE_NORMAL_SHORT_AXIS_MM
        ):
            st = "absent"  # a node < 10 mm short axis is normal
        statuses.append(st or "ne")
    if "unequivocal_progression" in statuses:
        return "pd"
    if "ne" in statuses:
        return "ne"
    if all(s == "absent" for s in statuses):
        return "cr"
    return "non_cr_non_pd"


def _new_lesion_counts(ls: Lesion, criteria: Criteria) -> bool:
    if criteria == "recist1.1":
        return True
    if ls.confirmed_hcc:
        return True
    if ls.non_target_kind == "effusion":
        return bool(ls.cytology_malignant)
    d = exact(ls.longest_diameter_mm)
    return bool(ls.typical_hcc_pattern) and d is not None and d >= MRECIST_NEW_LESION_MM


def overall_response(
    target: Response | None, non_target: Response | None, new_lesions: bool
) -> Response:
    """Eisenhauer 2009 Table 1 (targets present) or Table 2 (non-target lesions only)."""
    if new_lesions or target == "pd" or non_target == "pd":
        return "pd"
    if target is None:  # Table 2
        if non_target is None:
            return "ne"
        return non_target
    if target == "cr":
        if non_target in (None, "cr"):
            return "cr"
        return "pr"  # non-CR/non-PD or NE non-targets
    if target == "pr":
        return "pr"
    if target == "sd":
        return "sd"
    return "ne"


def evaluate_response(
    baseline: Assessment,
    followups: Sequence[Assessment],
    criteria: Criteria = "recist1.1",
) -> list[TimepointResponse]:
    """Response at each follow-up (in the order given) against the baseline and running nadir."""
    validate_baseline(baseline, criteria)
    ids = [ls.lesion_id for ls in baseline.lesions if ls.role == "target"]
    base_sum, base_missing = _target_sum(baseline, ids, criteria)
    if base_missing:
        raise ResponseInputError("every baseline target needs a measurement")
    nadir = base_sum
    out: list[TimepointResponse] = []
    for a in followups:
        reasons: list[str] = []
        new = any(ls.role == "new" and _new_lesion_counts(ls, criteria) for ls in a.lesions)
        if new:
            reasons.append("new lesion")
        nt = _non_target_response(a, criteria)
        target: Response | None = None
        total: Fraction | None = None
        d_base = d_nadir = None
        if ids:
            total, missing = _target_sum(a, ids, criteria)
            d_base = (total - base_sum) / base_sum if base_sum else None
            d_nadir = (total - nadir) / nadir if nadir else None
            increase = total - nadir
            # increase > 0 keeps an unchanged zero sum (nadir 0 after CR) from reading as PD
            meets_pd = (
                increase > 0
                and increase >= PD_INCREASE * nadir
                and (criteria == "mrecist" or increase >= PD_ABSOLUTE_MM)
            )
            if meets_pd:
                target = "pd"  # even with missing targets, the measured sum already progresses
                reasons.append(
                    "target sum >= +20 % from nadir"
                    + ("" if criteria == "mrecist" else " and >= +5 mm")
                )
            elif missing:
                target = "ne"
                reasons.append(f"{missing} target(s) not measured")
                total = None
            elif _target_cr(a, ids, criteria):
                target = "cr"
            elif total - base_sum <= PR_DECREASE * base_sum:
                target = "pr"
            else:
                target = "sd"
        overall = overall_response(target, nt, new)
        out.append(
            TimepointResponse(
                label=a.label,
                criteria=criteria,
                target_sum_mm=total,
                nadir_mm=nadir if ids else None,
                change_from_baseline=d_base if total is not None else None,
                change_from_nadir=d_nadir if total is not None else None,
                target=target,
                non_target=nt,
                new_lesions=new,
                overall=overall,
                reasons=reasons,
            )
        )
        if total is not None and total < nadir:
            nadir = total
    return out


def best_overall_response(responses: Sequence[TimepointResponse]) -> Response:
    """Best response recorded (no confirmation requirement), PD if only PD, NE if none."""
    order = ["cr", "pr", "sd", "non_cr_non_pd", "pd", "ne"]
    seen = {r.overall for r in responses}
    for r in order:
        if r in seen:
            return r
    return "ne"
