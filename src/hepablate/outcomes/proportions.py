"""Binomial proportions with confidence intervals.

Wilson score interval (Wilson 1927; method 3 of Newcombe 1998, Stat Med 17:857-872) and the
Clopper-Pearson exact interval (Clopper & Pearson 1934; Newcombe's method 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats

CiMethod = Literal["wilson", "clopper-pearson"]


@dataclass(frozen=True)
class Proportion:
    """`events` of `n`, with its point estimate and a two-sided interval (fractions, 0..1)."""

    events: int
    n: int
    estimate: float | None
    lower: float | None
    upper: float | None
    method: str
    level: float

    def to_dict(self) -> dict[str, object]:
        return {
            "events": self.events,
            "n": self.n,
            "estimate": self.estimate,
            "ci_lower": self.lower,
            "ci_upper": self.upper,
            "ci_method": self.method,
            "ci_level": self.level,
        }


def _check(events: int, n: int, level: float) -> None:
    if n < 0 or events < 0 or events > n:
        raise ValueError(f"need 0 <= events <= n, got {events}/{n}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")


def wilson_interval(events: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval without continuity correction."""
    _check(events, n, level)
    if n == 0:
        return (math.nan, math.nan)
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    p = events / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if events == 0 else max(0.0, centre - half)
    hi = 1.0 if events == n else min(1.0, centre + half)
    return (lo, hi)


def clopper_pearson_interval(events: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact interval from the beta quantiles (equal tails)."""
    _check(events, n, level)
    if n == 0:
        return (math.nan, math.nan)
    alpha = 1.0 - level
    lo = 0.0 if events == 0 else float(stats.beta.ppf(alpha / 2, events, n - events + 1))
    hi = 1.0 if events == n else float(stats.beta.ppf(1 - alpha / 2, events + 1, n - events))
    return (lo, hi)


def proportion(events: int, n: int, method: CiMethod = "wilson", level: float = 0.95) -> Proportion:
    """A proportion with its interval; an empty denominator gives None for every number."""
    _check(events, n, level)
    if n == 0:
        return Proportion(events, n, None, None, None, method, level)
    fn = wilson_interval if method == "wilson" else clopper_pearson_interval
    lo, hi = fn(events, n, level)
    return Proportion(events, n, events / n, lo, hi, method, level)
