"""Complication grades derived from the stored facts of an adverse event.

Each grade is a pure function of `AdverseEventFacts` (the registry's `adverse_events` columns),
so a stored grade can never disagree with what happened. Sources and the rule used:

- Clavien-Dindo: Dindo D, Demartines N, Clavien PA. Ann Surg 2004;240:205-213; Clavien PA et
  al. Ann Surg 2009;250:187-196. I any deviation not needing more than grade-I drugs
  (antiemetics, antipyretics, analgesics, diuretics, electrolytes) or physiotherapy (the
  therapies `GRADE_I_THERAPIES`: `analgesic`, `antiemetic`, `antipyretic`, `diuretic`,
  `electrolyte`, `physiotherapy`); II other drugs (`pharmacological`, e.g. antibiotics,
  anticoagulants, beta blockers), blood transfusion, total parenteral nutrition; IIIa intervention not under general
  anaesthesia; IIIb intervention under general anaesthesia; IVa life-threatening single organ
  dysfunction (IC/ICU management); IVb multi-organ dysfunction; V death. Suffix "d" when the
  patient still suffers from the complication at discharge.
- Comprehensive Complication Index: Slankamenac K et al. Ann Surg 2013;258:1-7. Weights
  I 300, II 1750, IIIa 2750, IIIb 4550, IVa 7200, IVb 8550, V 10000 (www.assessurgery.com);
  CCI = sqrt(sum of weights) / 2, capped at 100; any grade V gives 100.
- SIR 2003: Sacks D et al. J Vasc Interv Radiol 2003;14:S199-S202. Minor A no therapy, no
  consequence; B nominal therapy, no consequence, includes overnight admission for observation
  only. Major C therapy, minor hospitalisation (< 48 h); D major therapy, unplanned increase
  in level of care, prolonged hospitalisation (> 48 h); E permanent adverse sequelae; F death.
- SIR 2017: Khalilzadeh O et al. J Vasc Interv Radiol 2017;28:1432-1437. mild (no or nominal
  therapy, incl. overnight observation); moderate (moderate escalation of care: intervention
  under sedation, blood products, admission); severe (marked escalation: admission or
  prolongation > 24 h, transfer to a higher level of care, intervention under general
  anaesthesia); life-threatening or disabling (organ failure, shock, ICU admission,
  permanent disability); death.
- CIRSE: Filippiadis DK et al. Cardiovasc Intervent Radiol 2017;40:1141-1146. 1 solved in the
  same session, no additional therapy or sequelae; 2 prolonged observation incl. overnight
  stay (< 48 h), no additional therapy; 3 additional post-procedure therapy or stay > 48 h,
  no sequelae; 4 permanent mild sequelae (resuming work and independent living); 5 permanent
  severe sequelae (ongoing assistance in daily life); 6 death.
- CTCAE v5.0 generic grade (NCI 2017): 1 mild, intervention not indicated; 2 moderate,
  minimal, local or non-invasive intervention; 3 severe or medically significant,
  hospitalisation or its prolongation, disabling; 4 life-threatening, urgent intervention;
  5 death.
- Timing (Ahmed M et al. Radiology 2014;273:241-260): immediate (<= 24 h), periprocedural
  (<= 30 days), delayed (> 30 days). With dates only (day resolution) the day of the
  procedure counts as immediate and days 1-30 as periprocedural.

Where the stored facts do not distinguish two grades the rule takes the lower one and says
so in the grade's `note` (e.g. CIRSE 4 vs 5 needs `sequelae_need_daily_assistance`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

Therapy = Literal[
    "none",
    "analgesic",
    "antiemetic",
    "antipyretic",
    "diuretic",
    "electrolyte",
    "physiotherapy",
    "pharmacological",
    "transfusion",
    "parenteral_nutrition",
    "other",
]
#: Therapies that keep a complication in Clavien-Dindo grade I (Dindo 2004, Table 1: "allowed
#: therapeutic regimens are: drugs as antiemetics, antipyretics, analgesics, diuretics and
#: electrolytes and physiotherapy"). `pharmacological` means any other drug (grade II).
GRADE_I_THERAPIES: tuple[Therapy, ...] = (
    "analgesic",
    "antiemetic",
    "antipyretic",
    "diuretic",
    "electrolyte",
    "physiotherapy",
)
#: Therapies that make a complication Clavien-Dindo grade II.
GRADE_II_THERAPIES: tuple[Therapy, ...] = ("pharmacological", "transfusion", "parenteral_nutrition")
THERAPIES: tuple[str, ...] = Therapy.__args__  # type: ignore[attr-defined]
Intervention = Literal["none", "radiological", "endoscopic", "surgical"]
Anaesthesia = Literal["none", "local", "general"]
OrganFailure = Literal["none", "single", "multi"]

CLAVIEN_DINDO_GRADES = ("I", "II", "IIIa", "IIIb", "IVa", "IVb", "V")
CCI_WEIGHTS = {
    "I": 300,
    "II": 1750,
    "IIIa": 2750,
    "IIIb": 4550,
    "IVa": 7200,
    "IVb": 8550,
    "V": 10000,
}
SIR_2003_GRADES = ("A", "B", "C", "D", "E", "F")
SIR_2017_GRADES = ("mild", "moderate", "severe", "life_threatening", "death")
CIRSE_GRADES = (1, 2, 3, 4, 5, 6)
CTCAE_GRADES = (1, 2, 3, 4, 5)
Timing = Literal["immediate", "periprocedural", "delayed"]


@dataclass(frozen=True)
class AdverseEventFacts:
    """The facts of one adverse event, as stored in `adverse_events` (see the data contract)."""

    therapy: Therapy = "none"
    intervention: Intervention = "none"
    intervention_anaesthesia: Anaesthesia = "none"
    transfusion_units: int = 0
    icu_admission: bool = False
    organ_failure: OrganFailure = "none"
    extra_stay_days: int = 0
    prolonged_hospitalisation: bool = False
    permanent_sequelae: bool = False
    ongoing_at_discharge: bool = False
    death: bool = False
    life_threatening: bool = False
    sequelae_need_daily_assistance: bool | None = None  # CIRSE 5 vs 4; not in the registry

    def __post_init__(self) -> None:
        if self.transfusion_units < 0 or self.extra_stay_days < 0:
            raise ValueError("transfusion_units and extra_stay_days must be >= 0")


@dataclass(frozen=True)
class ClavienDindo:
    grade: str
    suffix_d: bool

    @property
    def label(self) -> str:
        return self.grade + ("-d" if self.suffix_d else "")

    @property
    def major(self) -> bool:
        """Grade III or higher (the usual 'major complication' cut)."""
        return CLAVIEN_DINDO_GRADES.index(self.grade) >= 2


def _needs_major_care(f: AdverseEventFacts) -> bool:
    return f.icu_admission or f.organ_failure != "none" or f.life_threatening


def clavien_dindo(f: AdverseEventFacts) -> ClavienDindo:
    if f.death:
        return ClavienDindo("V", False)  # suffix d does not apply to death
    if f.organ_failure == "multi":
        g = "IVb"
    elif _needs_major_care(f):
        g = "IVa"
    elif f.intervention != "none":
        g = "IIIb" if f.intervention_anaesthesia == "general" else "IIIa"
    elif f.therapy in GRADE_II_THERAPIES or f.transfusion_units > 0:
        g = "II"
    else:
        g = "I"
    return ClavienDindo(g, f.ongoing_at_discharge)


def comprehensive_complication_index(grades: Iterable[str]) -> float:
    """CCI of all complications of one patient (Clavien-Dindo grades, suffix ignored); 0 if none."""
    total = 0
    for g in grades:
        g = g.removesuffix("-d")
        if g not in CCI_WEIGHTS:
            raise ValueError(f"unknown Clavien-Dindo grade {g!r}")
        if g == "V":
            return 100.0
        total += CCI_WEIGHTS[g]
    return min(100.0, math.sqrt(total) / 2.0)


def sir_2003(f: AdverseEventFacts) -> str:
    if f.death:
        return "F"
    if f.permanent_sequelae:
        return "E"
    if (
        _needs_major_care(f)
        or f.intervention != "none"
        or f.transfusion_units > 0
        or f.therapy in ("transfusion", "parenteral_nutrition")
        or f.prolonged_hospitalisation
        or f.extra_stay_days > 2
    ):
        return "D"
    if f.therapy != "none" and f.extra_stay_days >= 1:
        return "C"
    if f.therapy != "none" or f.extra_stay_days == 1:
        return "B"  # nominal therapy, or overnight admission for observation only
    return "A"


def sir_2017(f: AdverseEventFacts) -> str:
    if f.death:
        return "death"
    if _needs_major_care(f) or f.permanent_sequelae:
        return "life_threatening"
    if (
        (f.intervention != "none" and f.intervention_anaesthesia == "general")
        or f.extra_stay_days > 1
        or f.prolonged_hospitalisation
    ):
        return "severe"
    if (
        f.intervention != "none"
        or f.transfusion_units > 0
        or f.therapy in ("transfusion", "parenteral_nutrition")
        # an overnight admission with therapy is not "for observation" only
        or (f.therapy != "none" and f.extra_stay_days >= 1)
    ):
        return "moderate"
    return "mild"


@dataclass(frozen=True)
class CirseGrade:
    grade: int
    note: str | None = None


def cirse(f: AdverseEventFacts) -> CirseGrade:
    if f.death:
        return CirseGrade(6)
    if f.permanent_sequelae:
        if f.sequelae_need_daily_assistance is None:
            return CirseGrade(4, "severity of sequelae not recorded: 4 (mild) assumed")
        return CirseGrade(5 if f.sequelae_need_daily_assistance else 4)
    if (
        f.therapy != "none"
        or f.intervention != "none"
        or f.transfusion_units > 0
        or _needs_major_care(f)
        or f.prolonged_hospitalisation
        or f.extra_stay_days > 2
    ):
        return CirseGrade(3)
    if f.extra_stay_days >= 1:
        return CirseGrade(2)
    return CirseGrade(1)


def ctcae(f: AdverseEventFacts) -> int:
    if f.death:
        return 5
    if _needs_major_care(f):
        return 4
    if (
        f.intervention != "none"
        or f.transfusion_units > 0
        or f.prolonged_hospitalisation
        or f.extra_stay_days > 0
        or f.permanent_sequelae
    ):
        return 3
    if f.therapy != "none":
        return 2
    return 1


def timing(procedure_date: date, onset_date: date) -> Timing:
    """Immediate (same day), periprocedural (<= 30 days) or delayed (> 30 days)."""
    days = (onset_date - procedure_date).days
    if days < 0:
        raise ValueError(f"onset {onset_date} is before the procedure {procedure_date}")
    if days == 0:
        return "immediate"
    if days <= 30:
        return "periprocedural"
    return "delayed"


@dataclass(frozen=True)
class Grades:
    clavien_dindo: str
    clavien_dindo_major: bool
    sir_2003: str
    sir_2017: str
    cirse: int
    ctcae: int
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def grade_all(f: AdverseEventFacts) -> Grades:
    cd = clavien_dindo(f)
    c = cirse(f)
    return Grades(cd.label, cd.major, sir_2003(f), sir_2017(f), c.grade, ctcae(f), c.note)
