"""Kaplan-Meier, log-rank and Cox against the Freireich 6-MP remission data.

Data: Freireich EJ et al. Blood 1963;21:699-716, as tabulated by Gehan EA. A generalized
Wilcoxon test for comparing arbitrarily singly-censored samples. Biometrika 1965;52:203-223.
Published results used here:
- 6-MP product-limit estimates and Greenwood standard errors: Klein JP, Moeschberger ML.
  Survival Analysis, 2nd ed., Springer 2003, section 4.2, 6-MP group: S(6)=0.857 (0.076),
  S(7)=0.807 (0.087), S(10)=0.753 (0.096), S(13)=0.690 (0.107), S(16)=0.627 (0.114),
  S(22)=0.538 (0.128), S(23)=0.448 (0.135).
- Log-rank chi-square 16.79 (1 df): Kleinbaum DG, Klein M. Survival Analysis: A Self-Learning
  Text, 3rd ed., Springer 2012, chapter 2 (remission data, log-rank statistic 16.793).
- Cox model, Efron ties, placebo vs 6-MP: coef 1.572, HR 4.817, SE 0.412: the output of R
  survival's `coxph(Surv(time, cens) ~ treat, data = MASS::gehan)` (the Gehan data as shipped
  with Venables & Ripley, Modern Applied Statistics with S, 4th ed., chapter 13).
- Medians (R survfit, default log CI): placebo 8 (95 % CI 4 to 12), 6-MP 23 (16 to NA).
"""

import math

import numpy as np
import pytest
from lifelines import KaplanMeierFitter

from hepablate.outcomes.survival import cox_model, kaplan_meier, logrank

MP_T = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
MP_E = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PL_T = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
PL_E = [1] * 21


def test_km_matches_klein_moeschberger_6mp_estimates():
    km = kaplan_meier(MP_T, MP_E)
    assert km.times.tolist() == [6, 7, 10, 13, 16, 22, 23]
    assert np.round(km.survival, 3).tolist() == [0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448]
    assert np.round(km.std_err, 3).tolist() == [0.076, 0.087, 0.096, 0.107, 0.114, 0.128, 0.135]
    assert km.n_at_risk.tolist() == [21, 17, 15, 12, 11, 7, 6]


def test_log_log_ci_formula_and_lifelines_agree():
    km = kaplan_meier(MP_T, MP_E, ci_method="log-log")
    # hand check at t=23 from the published S and Greenwood sum (Kalbfleisch-Prentice form)
    s, se = km.survival[-1], km.std_err[-1]
    sigma = se / s
    lo = s ** math.exp(1.959964 * sigma / abs(math.log(s)))
    assert km.lower[-1] == pytest.approx(lo, rel=1e-6)
    kmf = KaplanMeierFitter().fit(MP_T, MP_E)
    ci = kmf.confidence_interval_.loc[km.times]
    assert np.allclose(ci.iloc[:, 0].to_numpy(), km.lower, atol=1e-9)
    assert np.allclose(ci.iloc[:, 1].to_numpy(), km.upper, atol=1e-9)


def test_log_ci_differs_and_is_capped():
    km = kaplan_meier(MP_T, MP_E, ci_method="log")
    assert km.upper[0] == 1.0  # 0.857 exp(1.96 * 0.089) > 1 is capped
    assert km.lower[-1] == pytest.approx(0.448 * math.exp(-1.96 * 0.135 / 0.448), abs=2e-3)


def test_medians_with_ci_like_r_survfit():
    assert kaplan_meier(PL_T, PL_E, ci_method="log").median() == (8.0, 4.0, 12.0)
    assert kaplan_meier(MP_T, MP_E, ci_method="log").median() == (23.0, 16.0, None)


def test_median_on_a_flat_half_step_is_the_midpoint():
    km = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    assert km.median()[0] == 2.5  # S = 0.5 exactly on [2, 3)


def test_logrank_published_chi_square():
    r = logrank(MP_T + PL_T, MP_E + PL_E, ["6mp"] * 21 + ["placebo"] * 21)
    assert r.chi2 == pytest.approx(16.79, abs=0.01)
    assert r.df == 1 and r.p_value < 1e-4


def test_cox_published_hazard_ratio():
    (term,) = cox_model(MP_T + PL_T, MP_E + PL_E, {"placebo": [0] * 21 + [1] * 21})
    assert term.coef == pytest.approx(1.572, abs=1e-3)
    assert term.hazard_ratio == pytest.approx(4.817, abs=1e-3)
    assert term.se == pytest.approx(0.412, abs=1e-3)


def test_survival_at_and_bad_input():
    km = kaplan_meier(MP_T, MP_E)
    assert km.survival_at(5) == (1.0, 1.0, 1.0)
    assert km.survival_at(12)[0] == pytest.approx(0.753, abs=1e-3)
    assert km.survival_at(36) is None
    with pytest.raises(ValueError):
        kaplan_meier([1, -2], [1, 1])
    with pytest.raises(ValueError):
        kaplan_meier([1, 2], [1, 1], ci_method="plain")
