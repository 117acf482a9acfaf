"""Issue 14, item 4: grade-I therapies, and every example of Dindo 2004 (Table 2, by organ
system) and of the CIRSE (Filippiadis 2017) and SIR (Sacks 2003, Khalilzadeh 2017)
definitions, expressed as registry facts."""

from __future__ import annotations

import pytest

from hepablate.outcomes.grading import (
    GRADE_I_THERAPIES,
    THERAPIES,
    cirse,
    clavien_dindo,
    ctcae,
    sir_2003,
    sir_2017,
)
from hepablate.outcomes.grading import AdverseEventFacts as F

LOCAL = {"intervention_anaesthesia": "local"}
GENERAL = {"intervention_anaesthesia": "general"}

# Dindo D et al., Ann Surg 2004;240:205-213, Table 2: (example, facts, grade).
DINDO_2004 = [
    ("I cardiac: atrial fibrillation converting after correction of K+",
     F(therapy="electrolyte"), "I"),
    ("I respiratory: atelectasis requiring physiotherapy", F(therapy="physiotherapy"), "I"),
    ("I neurological: transient confusion not requiring therapy", F(), "I"),
    ("I gastrointestinal: noninfectious diarrhoea", F(therapy="electrolyte"), "I"),
    ("I renal: transient elevation of serum creatinine", F(therapy="diuretic"), "I"),
    ("I other: wound infection treated by opening the wound at the bedside", F(therapy="other"),
     "I"),
    ("I: pain treated with analgesics", F(therapy="analgesic"), "I"),
    ("I: nausea treated with antiemetics", F(therapy="antiemetic"), "I"),
    ("I: fever treated with antipyretics", F(therapy="antipyretic"), "I"),
    ("II cardiac: tachyarrhythmia requiring beta-receptor antagonists",
     F(therapy="pharmacological"), "II"),
    ("II respiratory: pneumonia treated with antibiotics on the ward",
     F(therapy="pharmacological"), "II"),
    ("II neurological: TIA requiring anticoagulants", F(therapy="pharmacological"), "II"),
    ("II gastrointestinal: infectious diarrhoea requiring antibiotics",
     F(therapy="pharmacological"), "II"),
    ("II renal: urinary tract infection requiring antibiotics", F(therapy="pharmacological"),
     "II"),
    ("II: blood transfusion", F(therapy="transfusion", transfusion_units=2), "II"),
    ("II: total parenteral nutrition", F(therapy="parenteral_nutrition"), "II"),
    ("IIIa cardiac: bradyarrhythmia requiring a pacemaker under local anaesthesia",
     F(intervention="surgical", **LOCAL), "IIIa"),
    ("IIIa gastrointestinal: biloma after liver resection, percutaneous drainage",
     F(intervention="radiological", **LOCAL), "IIIa"),
    ("IIIa renal: ureter stenosis after kidney transplantation, stenting",
     F(intervention="endoscopic", **LOCAL), "IIIa"),
    ("IIIa other: closure of a dehiscent noninfected wound under local anaesthesia",
     F(intervention="surgical", **LOCAL), "IIIa"),
    ("IIIb cardiac: cardiac tamponade requiring fenestration",
     F(intervention="surgical", **GENERAL), "IIIb"),
    ("IIIb respiratory: bronchopleural fistula requiring surgical closure",
     F(intervention="surgical", **GENERAL), "IIIb"),
    ("IIIb gastrointestinal: anastomotic leak requiring relaparotomy",
     F(intervention="surgical", **GENERAL), "IIIb"),
    ("IIIb renal: ureter stenosis treated by surgery", F(intervention="surgical", **GENERAL),
     "IIIb"),
    ("IIIb other: wound infection leading to eventration of small bowel",
     F(intervention="surgical", **GENERAL), "IIIb"),
    ("IVa cardiac: heart failure leading to low-output syndrome",
     F(icu_admission=True, organ_failure="single", therapy="pharmacological"), "IVa"),
    ("IVa respiratory: lung failure requiring intubation",
     F(icu_admission=True, organ_failure="single", therapy="other"), "IVa"),
    ("IVa neurological: ischaemic stroke or brain haemorrhage",
     F(icu_admission=True, organ_failure="single"), "IVa"),
    ("IVa gastrointestinal: necrotising pancreatitis",
     F(icu_admission=True, organ_failure="single", therapy="parenteral_nutrition"), "IVa"),
    ("IVa renal: renal insufficiency requiring dialysis",
     F(icu_admission=True, organ_failure="single", therapy="other"), "IVa"),
    ("IVb cardiac: as IVa with renal failure", F(icu_admission=True, organ_failure="multi"),
     "IVb"),
    ("IVb gastrointestinal: as IVa with haemodynamic instability",
     F(icu_admission=True, organ_failure="multi"), "IVb"),
    ("V: death of the patient", F(death=True, icu_admission=True, organ_failure="multi"), "V"),
    ("suffix d, other: hoarseness after thyroid surgery", F(ongoing_at_discharge=True), "I-d"),
    ("suffix d, cardiac: cardiac insufficiency after myocardial infarction",
     F(icu_admission=True, organ_failure="single", ongoing_at_discharge=True), "IVa-d"),
    ("suffix d, gastrointestinal: residual stenosis after anastomotic leakage",
     F(intervention="surgical", ongoing_at_discharge=True, **GENERAL), "IIIb-d"),
    ("suffix d, renal: residual renal insufficiency after sepsis with multi-organ failure",
     F(icu_admission=True, organ_failure="multi", ongoing_at_discharge=True), "IVb-d"),
]  # fmt: skip


@pytest.mark.parametrize("example, facts, grade", DINDO_2004, ids=[e[0] for e in DINDO_2004])
def test_dindo_2004_examples(example: str, facts: F, grade: str) -> None:
    assert clavien_dindo(facts).label == grade, example


@pytest.mark.parametrize("therapy", GRADE_I_THERAPIES)
def test_each_grade_i_therapy_is_grade_i_and_nominal_elsewhere(therapy: str) -> None:
    f = F(therapy=therapy)  # type: ignore[arg-type]
    assert clavien_dindo(f).label == "I"
    assert sir_2003(f) == "B"  # nominal therapy, no consequence
    assert sir_2017(f) == "mild"  # no or nominal therapy
    assert cirse(f).grade == 3  # CIRSE: any additional post-procedure therapy
    assert ctcae(f) == 2  # minimal, non-invasive intervention
    stay = F(therapy=therapy, extra_stay_days=1)  # type: ignore[arg-type]
    assert clavien_dindo(stay).label == "I" and sir_2017(stay) == "moderate"


# CIRSE, Filippiadis DK et al., CVIR 2017;40:1141-1146: each grade's definition.
CIRSE_2017 = [
    ("1: solved in the same session, no additional therapy, no sequelae", F(), 1),
    ("2: prolonged observation incl. overnight stay (< 48 h), no additional therapy",
     F(extra_stay_days=1), 2),
    ("3: additional post-procedure therapy (analgesics)", F(therapy="analgesic"), 3),
    ("3: prolonged hospital stay > 48 h", F(extra_stay_days=3), 3),
    ("3: intervention, no sequelae", F(intervention="radiological", **LOCAL), 3),
    ("4: permanent mild sequelae", F(permanent_sequelae=True, sequelae_need_daily_assistance=False),
     4),
    ("5: permanent severe sequelae (assistance in daily life)",
     F(permanent_sequelae=True, sequelae_need_daily_assistance=True), 5),
    ("6: death", F(death=True), 6),
]  # fmt: skip


@pytest.mark.parametrize("example, facts, grade", CIRSE_2017, ids=[e[0] for e in CIRSE_2017])
def test_cirse_definitions(example: str, facts: F, grade: int) -> None:
    assert cirse(facts).grade == grade, example


# SIR: Sacks D et al., JVIR 2003;14:S199-S202 and Khalilzadeh O et al., JVIR 2017;28:1432.
SIR = [
    ("A: no therapy, no consequence", F(), "A", "mild"),
    ("B: nominal therapy (analgesic), no consequence", F(therapy="analgesic"), "B", "mild"),
    ("B: overnight admission for observation only", F(extra_stay_days=1), "B", "mild"),
    ("C: therapy, minor hospitalisation (< 48 h)", F(therapy="antiemetic", extra_stay_days=1),
     "C", "moderate"),
    ("D: major therapy (transfusion)", F(therapy="transfusion", transfusion_units=1), "D",
     "moderate"),
    ("D: prolonged hospitalisation (> 48 h)", F(therapy="analgesic", extra_stay_days=3), "D",
     "severe"),
    ("D: intervention under sedation", F(intervention="radiological", **LOCAL), "D", "moderate"),
    ("D: unplanned increase in level of care (ICU)", F(icu_admission=True, therapy="other"), "D",
     "life_threatening"),
    ("E: permanent adverse sequelae", F(permanent_sequelae=True), "E", "life_threatening"),
    ("F: death", F(death=True), "F", "death"),
]  # fmt: skip


@pytest.mark.parametrize("example, facts, g2003, g2017", SIR, ids=[e[0] for e in SIR])
def test_sir_definitions(example: str, facts: F, g2003: str, g2017: str) -> None:
    assert (sir_2003(facts), sir_2017(facts)) == (g2003, g2017), example


def test_registry_vocabulary_follows_grading() -> None:
    from hepablate.registry.models import THERAPY_CHOICES
    from hepablate.registry.validation import user_columns

    assert THERAPY_CHOICES == THERAPIES
    col = next(c for c in user_columns("adverse_events") if c.name == "therapy")
    assert set(GRADE_I_THERAPIES) <= set(col.info["choices"])
