"""One test per grade of each scheme, from the published definitions (see grading.py)."""

from datetime import date

import pytest

from hepablate.outcomes.grading import (
    AdverseEventFacts as F,
)
from hepablate.outcomes.grading import (
    cirse,
    clavien_dindo,
    comprehensive_complication_index,
    ctcae,
    grade_all,
    sir_2003,
    sir_2017,
    timing,
)


# --- Clavien-Dindo (Dindo 2004 Table 1) ---
def test_cd_i_no_treatment_beyond_grade_i_drugs():
    assert clavien_dindo(F()).label == "I"
    assert clavien_dindo(F(therapy="physiotherapy")).label == "I"


def test_cd_ii_drugs_transfusion_tpn():
    assert clavien_dindo(F(therapy="pharmacological")).label == "II"
    assert clavien_dindo(F(therapy="transfusion", transfusion_units=2)).label == "II"
    assert clavien_dindo(F(therapy="parenteral_nutrition")).label == "II"


def test_cd_iiia_intervention_without_general_anaesthesia():
    f = F(intervention="radiological", intervention_anaesthesia="local")
    assert clavien_dindo(f).label == "IIIa"


def test_cd_iiib_intervention_under_general_anaesthesia():
    f = F(intervention="surgical", intervention_anaesthesia="general")
    assert clavien_dindo(f).label == "IIIb"


def test_cd_iva_single_organ_dysfunction_icu():
    assert clavien_dindo(F(icu_admission=True, organ_failure="single")).label == "IVa"


def test_cd_ivb_multi_organ_dysfunction():
    assert clavien_dindo(F(icu_admission=True, organ_failure="multi")).label == "IVb"


def test_cd_v_death_and_suffix_d():
    assert clavien_dindo(F(death=True, ongoing_at_discharge=True)).label == "V"
    cd = clavien_dindo(F(therapy="pharmacological", ongoing_at_discharge=True))
    assert cd.label == "II-d" and not cd.major
    assert clavien_dindo(F(intervention="endoscopic")).major


# --- CCI (Slankamenac 2013; single-complication values published with the index) ---
@pytest.mark.parametrize(
    "grades,cci",
    [
        (["I"], 8.7),
        (["II"], 20.9),
        (["IIIa"], 26.2),
        (["IIIb"], 33.7),
        (["IVa"], 42.4),
        (["IVb"], 46.2),
        (["V"], 100.0),
        ([], 0.0),
        (["I", "II", "IIIa"], 34.6),
    ],
)
def test_cci_values(grades, cci):
    assert round(comprehensive_complication_index(grades), 1) == cci


def test_cci_capped_and_suffix_ignored():
    assert comprehensive_complication_index(["IVb"] * 5) == 100.0
    assert round(comprehensive_complication_index(["II-d"]), 1) == 20.9
    with pytest.raises(ValueError):
        comprehensive_complication_index(["VI"])


# --- SIR 2003 (Sacks) ---
def test_sir_a_no_therapy_no_consequence():
    assert sir_2003(F()) == "A"


def test_sir_b_nominal_therapy_or_overnight_observation():
    assert sir_2003(F(therapy="pharmacological")) == "B"
    assert sir_2003(F(extra_stay_days=1)) == "B"


def test_sir_c_therapy_with_minor_hospitalisation():
    assert sir_2003(F(therapy="pharmacological", extra_stay_days=2)) == "C"


def test_sir_d_major_therapy_or_more_than_48_h():
    assert sir_2003(F(therapy="pharmacological", extra_stay_days=3)) == "D"
    assert sir_2003(F(intervention="radiological", intervention_anaesthesia="local")) == "D"
    assert sir_2003(F(icu_admission=True)) == "D"


def test_sir_e_permanent_sequelae():
    assert sir_2003(F(permanent_sequelae=True, icu_admission=True)) == "E"


def test_sir_f_death():
    assert sir_2003(F(death=True)) == "F"


# --- SIR 2017 (Khalilzadeh) ---
def test_sir2017_mild():
    assert sir_2017(F(therapy="pharmacological")) == "mild"


def test_sir2017_moderate():
    assert sir_2017(F(intervention="radiological", intervention_anaesthesia="local")) == "moderate"
    assert sir_2017(F(therapy="transfusion", transfusion_units=1)) == "moderate"


def test_sir2017_severe():
    assert sir_2017(F(intervention="surgical", intervention_anaesthesia="general")) == "severe"
    assert sir_2017(F(extra_stay_days=2)) == "severe"


def test_sir2017_life_threatening():
    assert sir_2017(F(icu_admission=True)) == "life_threatening"
    assert sir_2017(F(permanent_sequelae=True)) == "life_threatening"


def test_sir2017_death():
    assert sir_2017(F(death=True)) == "death"


# --- CIRSE (Filippiadis 2017) ---
def test_cirse_1_to_6():
    assert cirse(F()).grade == 1
    assert cirse(F(extra_stay_days=1)).grade == 2
    assert cirse(F(therapy="pharmacological")).grade == 3
    assert cirse(F(extra_stay_days=3)).grade == 3
    g4 = cirse(F(permanent_sequelae=True))
    assert g4.grade == 4 and "not recorded" in g4.note
    assert cirse(F(permanent_sequelae=True, sequelae_need_daily_assistance=False)).grade == 4
    assert cirse(F(permanent_sequelae=True, sequelae_need_daily_assistance=True)).grade == 5
    assert cirse(F(death=True)).grade == 6


# --- CTCAE v5 generic ---
def test_ctcae_1_to_5():
    assert ctcae(F()) == 1
    assert ctcae(F(therapy="pharmacological")) == 2
    assert ctcae(F(prolonged_hospitalisation=True)) == 3
    assert ctcae(F(intervention="radiological")) == 3
    assert ctcae(F(life_threatening=True)) == 4
    assert ctcae(F(death=True)) == 5


def test_timing_windows():
    p = date(2024, 1, 10)
    assert timing(p, date(2024, 1, 10)) == "immediate"
    assert timing(p, date(2024, 1, 11)) == "periprocedural"
    assert timing(p, date(2024, 2, 9)) == "periprocedural"  # day 30
    assert timing(p, date(2024, 2, 10)) == "delayed"  # day 31
    with pytest.raises(ValueError):
        timing(p, date(2024, 1, 9))


def test_grade_all_and_bad_facts():
    g = grade_all(F(intervention="radiological", intervention_anaesthesia="local"))
    assert (g.clavien_dindo, g.sir_2003, g.sir_2017, g.cirse, g.ctcae) == (
        "IIIa",
        "D",
        "moderate",
        3,
        3,
    )
    with pytest.raises(ValueError):
        F(extra_stay_days=-1)
