"""Ahmed et al. 2014 terminology and Puijk et al. 2021 time-to-event definitions."""

from datetime import date

from hepablate.outcomes.endpoints import (
    PatientFollowup,
    TumourImaging,
    TumourSession,
    patient_recurrence,
    technique_efficacy,
    tumour_endpoints,
)
from hepablate.outcomes.survival import (
    PatientCourse,
    disease_free_survival,
    ltp_free_survival,
    overall_survival,
    time_to_progression,
)

D0 = date(2024, 1, 1)


def im(m, d, residual=None, ltp=None):
    return TumourImaging(date(2024, m, d), residual, ltp)


def test_complete_then_progression_is_ltp():
    e = tumour_endpoints([TumourSession(D0, True)], [im(2, 1, False, False), im(7, 1, None, True)])
    assert e.primary_efficacy is True and e.ltp_date == date(2024, 7, 1)
    assert not e.residual_unablated


def test_tumour_without_documented_complete_ablation_is_residual_not_ltp():
    e = tumour_endpoints([TumourSession(D0, True)], [im(2, 1, None, True)])
    assert e.residual_unablated and e.ltp_date is None and e.primary_efficacy is False


def test_secondary_efficacy_after_repeat_ablation():
    ses = [TumourSession(D0, False), TumourSession(date(2024, 3, 1), True)]
    e = tumour_endpoints(ses, [im(2, 1, True, None), im(4, 1, False, False)])
    assert e.primary_efficacy is False and e.secondary_efficacy is True and e.n_sessions == 2
    failed = tumour_endpoints(ses, [im(2, 1, True), im(4, 1, True)])
    assert failed.secondary_efficacy is False
    assert tumour_endpoints([TumourSession(D0, True)], []).primary_efficacy is None


def test_technique_efficacy_at_a_time_point():
    ims = [im(1, 31, False, False), im(4, 1, None, True)]
    assert technique_efficacy(D0, ims, at_days=30, tolerance_days=7) is True
    assert technique_efficacy(D0, ims, at_days=90, tolerance_days=7) is False
    assert technique_efficacy(D0, ims, at_days=180, tolerance_days=7) is None


def test_recurrence_and_time_to_event():
    t = tumour_endpoints([TumourSession(D0, True)], [im(2, 1, False, False), im(7, 1, None, True)])
    fus = [
        PatientFollowup(date(2024, 4, 1), True, False),
        PatientFollowup(date(2024, 10, 1), False, True),
    ]
    r = patient_recurrence([t], fus)
    assert (r.local, r.intrahepatic_distant, r.extrahepatic) == (
        date(2024, 7, 1),
        date(2024, 4, 1),
        date(2024, 10, 1),
    )
    assert r.any == date(2024, 4, 1) and r.distant == date(2024, 4, 1)
    c = PatientCourse("p", D0, date(2025, 1, 1), date(2024, 10, 1), None, None, r)
    assert overall_survival(c).event is False and overall_survival(c).time_days == 366
    dfs = disease_free_survival(c)
    assert dfs.event and dfs.time_days == 91
    assert time_to_progression(c).time_days == 91
    dead = PatientCourse(
        "q", D0, None, date(2024, 3, 1), date(2024, 5, 1), None, patient_recurrence([], [])
    )
    assert overall_survival(dead).event and overall_survival(dead).time_days == 121
    assert disease_free_survival(dead).event and not time_to_progression(dead).event
    tx = PatientCourse(
        "r",
        D0,
        date(2025, 1, 1),
        date(2024, 12, 1),
        None,
        date(2024, 3, 1),
        patient_recurrence([], fus),
    )
    assert disease_free_survival(tx).time_days == 60  # transplant censors before recurrence
    assert not disease_free_survival(tx).event and not overall_survival(tx).event
    tx_late = PatientCourse(
        "s", D0, None, date(2024, 12, 1), None, date(2024, 6, 1), patient_recurrence([], fus)
    )
    assert disease_free_survival(tx_late).event  # recurrence in April came first
    assert ltp_free_survival("t", D0, None, date(2024, 6, 1), date(2024, 8, 1)).event
    assert not ltp_free_survival(
        "t", D0, None, date(2024, 6, 1), date(2024, 8, 1), include_death=False
    ).event
