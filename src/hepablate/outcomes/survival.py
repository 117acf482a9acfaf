"""Time-to-event end points, Kaplan-Meier estimates, log-rank tests and Cox models.

End point definitions follow Puijk RS et al. Consensus guidelines for the definition of
time-to-event end points in image-guided tumor ablation. Radiology 2021;301:533-540:
time zero is the date of the first ablation; local end points are per tumour, OS / DFS /
time to progression per patient.

- OS: death from any cause; alive patients censored at the last contact.
- DFS: any recurrence (local, intrahepatic distant, extrahepatic) or death; censored at the
  last imaging follow-up (or last contact when never imaged).
- TTP (time to progression): any recurrence; death and loss censored.
- LTPFS (per tumour): local tumour progression or death; TTLTP: LTP only.
Liver transplantation censors every end point except OS at the transplant date (as in
Sutter 2017, the NICE overview's study 3).

Kaplan-Meier with Greenwood's variance (Greenwood 1926); confidence intervals on the log
scale (S exp(+/- z sigma), R's survfit default `conf.type="log"`) or on the log(-log) scale
(Kalbfleisch & Prentice 2002, section 1.3), where sigma^2 = sum d / (n (n - d)). The median
and its CI follow R's survfit: the first time the curve (or its band) reaches <= 0.5, the
midpoint of a flat step exactly at 0.5. Log-rank tests and Cox models come from lifelines and
are checked against published results for the Freireich (Gehan 1965) 6-MP data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
from scipy import stats

from hepablate.outcomes.endpoints import PatientRecurrence

KmCiMethod = Literal["log", "log-log"]


@dataclass(frozen=True)
class KaplanMeier:
    """Step function at the distinct event times (days); the curve is 1 before `times[0]`."""

    times: np.ndarray
    n_at_risk: np.ndarray
    n_events: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    ci_method: KmCiMethod
    level: float
    n: int
    n_events_total: int
    max_time: float

    def survival_at(self, t: float) -> tuple[float, float, float] | None:
        """(S, lower, upper) at time t; None beyond the last observed time."""
        if t > self.max_time:
            return None
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        if i < 0:
            return (1.0, 1.0, 1.0)
        return (float(self.survival[i]), float(self.lower[i]), float(self.upper[i]))

    def _quantile_time(self, curve: np.ndarray, p: float = 0.5) -> float | None:
        below = np.nonzero(curve <= p + 1e-12)[0]
        if below.size == 0:
            return None
        i = int(below[0])
        if abs(curve[i] - p) < 1e-12 and i + 1 < self.times.size:
            return float((self.times[i] + self.times[i + 1]) / 2.0)
        return float(self.times[i])

    def median(self) -> tuple[float | None, float | None, float | None]:
        """(median, lower, upper); None where not reached."""
        return (
            self._quantile_time(self.survival),
            self._quantile_time(self.lower),
            self._quantile_time(self.upper),
        )

    def to_dict(self, at_days: Sequence[int] = (365, 730, 1095)) -> dict[str, object]:
        med, lo, hi = self.median()
        pts = {}
        for d in at_days:
            v = self.survival_at(d)
            pts[str(d)] = (
                None
                if v is None
                else {"survival": _nn(v[0]), "ci_lower": _nn(v[1]), "ci_upper": _nn(v[2])}
            )
        return {
            "n": self.n,
            "events": self.n_events_total,
            "time_unit": "days",
            "ci_method": self.ci_method,
            "ci_level": self.level,
            "median_days": med,
            "median_ci_lower_days": lo,
            "median_ci_upper_days": hi,
            "survival_at_days": pts,
        }


def _nn(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def kaplan_meier(
    durations: Sequence[float] | np.ndarray,
    events: Sequence[bool] | np.ndarray,
    ci_method: KmCiMethod = "log-log",
    level: float = 0.95,
) -> KaplanMeier:
    """Product-limit estimate with Greenwood variance and a pointwise CI."""
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=bool)
    if t.shape != e.shape or t.ndim != 1:
        raise ValueError("durations and events must be 1-D and of equal length")
    if t.size and (np.any(~np.isfinite(t)) or np.any(t < 0)):
        raise ValueError("durations must be finite and >= 0")
    if ci_method not in ("log", "log-log"):
        raise ValueError(f"ci_method must be 'log' or 'log-log', got {ci_method!r}")
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    et = np.unique(t[e])
    order = np.sort(t)
    n_risk = (t.size - np.searchsorted(order, et, side="left")).astype(float)
    ev_sorted = np.sort(t[e])
    d = (
        np.searchsorted(ev_sorted, et, side="right") - np.searchsorted(ev_sorted, et, side="left")
    ).astype(float)
    s = np.cumprod(1.0 - d / n_risk) if et.size else np.array([])
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.cumsum(np.where(n_risk > d, d / (n_risk * (n_risk - d)), np.inf))
        sigma = np.sqrt(g)  # standard error of log S
        se = s * sigma
        if ci_method == "log":
            lo = s * np.exp(-z * sigma)
            hi = np.minimum(1.0, s * np.exp(z * sigma))
        else:
            ll = sigma / np.abs(np.log(s))
            lo = s ** np.exp(z * ll)
            hi = s ** np.exp(-z * ll)
        lo = np.where(s > 0, lo, np.nan)
        hi = np.where(s > 0, hi, np.nan)
        se = np.where(np.isfinite(se), se, np.nan)
    return KaplanMeier(
        times=et,
        n_at_risk=n_risk,
        n_events=d,
        survival=s,
        std_err=se,
        lower=lo,
        upper=hi,
        ci_method=ci_method,
        level=level,
        n=int(t.size),
        n_events_total=int(e.sum()),
        max_time=float(t.max()) if t.size else 0.0,
    )


@dataclass(frozen=True)
class LogRank:
    chi2: float
    df: int
    p_value: float

    def to_dict(self) -> dict[str, object]:
        return {"test": "log-rank", "chi2": self.chi2, "df": self.df, "p_value": self.p_value}


def logrank(durations: Sequence[float], events: Sequence[bool], groups: Sequence[str]) -> LogRank:
    """Log-rank test across two or more groups (lifelines' multivariate log-rank)."""
    from lifelines.statistics import multivariate_logrank_test

    g = np.asarray(groups)
    k = len(set(g.tolist()))
    if k < 2:
        raise ValueError("the log-rank test needs at least two groups")
    r = multivariate_logrank_test(np.asarray(durations, float), g, np.asarray(events, bool))
    return LogRank(float(r.test_statistic), k - 1, float(r.p_value))


@dataclass(frozen=True)
class CoxTerm:
    covariate: str
    coef: float
    hazard_ratio: float
    hr_lower: float
    hr_upper: float
    se: float
    p_value: float


def cox_model(
    durations: Sequence[float],
    events: Sequence[bool],
    covariates: dict[str, Sequence[float]],
    level: float = 0.95,
) -> list[CoxTerm]:
    """Cox proportional hazards (Efron ties, lifelines' CoxPHFitter)."""
    import pandas as pd
    from lifelines import CoxPHFitter

    df = pd.DataFrame({k: np.asarray(v, float) for k, v in covariates.items()})
    df["_t"] = np.asarray(durations, float)
    df["_e"] = np.asarray(events, bool).astype(int)
    cph = CoxPHFitter(alpha=1.0 - level)
    cph.fit(df, duration_col="_t", event_col="_e")
    s = cph.summary
    lo_col = [c for c in s.columns if c.startswith("exp(coef) lower")][0]
    hi_col = [c for c in s.columns if c.startswith("exp(coef) upper")][0]
    return [
        CoxTerm(
            str(name),
            float(r["coef"]),
            float(r["exp(coef)"]),
            float(r[lo_col]),
            float(r[hi_col]),
            float(r["se(coef)"]),
            float(r["p"]),
        )
        for name, r in s.iterrows()
    ]


# --- end point construction ---------------------------------------------------------------


@dataclass(frozen=True)
class TimeToEvent:
    key: str
    time_days: int
    event: bool


@dataclass(frozen=True)
class PatientCourse:
    """What the end points need about one patient (dates)."""

    key: str
    first_ablation: date
    last_contact: date | None
    last_followup: date | None
    death_date: date | None
    transplant_date: date | None
    recurrence: PatientRecurrence


def _days(a: date, b: date) -> int:
    return max(0, (b - a).days)


def _last_seen(c: PatientCourse) -> date:
    ds = [d for d in (c.last_contact, c.last_followup, c.death_date) if d is not None]
    return max(ds) if ds else c.first_ablation


def _censor_transplant(
    c: PatientCourse, event_date: date | None, censor: date
) -> tuple[date, bool]:
    if c.transplant_date is not None and (event_date is None or c.transplant_date < event_date):
        return min(c.transplant_date, censor) if event_date is None else c.transplant_date, False
    if event_date is not None:
        return event_date, True
    return censor, False


def overall_survival(c: PatientCourse) -> TimeToEvent:
    if c.death_date is not None:
        return TimeToEvent(c.key, _days(c.first_ablation, c.death_date), True)
    return TimeToEvent(c.key, _days(c.first_ablation, _last_seen(c)), False)


def disease_free_survival(c: PatientCourse) -> TimeToEvent:
    cands = [d for d in (c.recurrence.any, c.death_date) if d is not None]
    ev = min(cands) if cands else None
    censor = c.last_followup or c.last_contact or c.first_ablation
    when, is_event = _censor_transplant(c, ev, censor)
    return TimeToEvent(c.key, _days(c.first_ablation, when), is_event)


def time_to_progression(c: PatientCourse) -> TimeToEvent:
    ev = c.recurrence.any
    censor = c.last_followup or c.last_contact or c.first_ablation
    when, is_event = _censor_transplant(c, ev, censor)
    return TimeToEvent(c.key, _days(c.first_ablation, when), is_event)


def ltp_free_survival(
    key: str,
    first_ablation: date,
    ltp_date: date | None,
    last_assessment: date | None,
    death_date: date | None,
    transplant_date: date | None = None,
    include_death: bool = True,
) -> TimeToEvent:
    """Per-tumour LTPFS (LTP or death); with include_death=False, time to LTP."""
    cands = [ltp_date] + ([death_date] if include_death else [])
    evs = [d for d in cands if d is not None]
    ev = min(evs) if evs else None
    censor = last_assessment or first_ablation
    if transplant_date is not None and (ev is None or transplant_date < ev):
        return TimeToEvent(key, _days(first_ablation, min(transplant_date, censor)), False)
    if ev is not None:
        return TimeToEvent(key, _days(first_ablation, ev), True)
    return TimeToEvent(key, _days(first_ablation, censor), False)
