"""Wilson and Clopper-Pearson intervals against Newcombe RG. Two-sided confidence intervals
for the single proportion: comparison of seven methods. Stat Med 1998;17:857-872, Table II
(method 3: score without continuity correction; method 5: exact Clopper-Pearson)."""

import pytest

from hepablate.outcomes.proportions import (
    clopper_pearson_interval,
    proportion,
    wilson_interval,
)

# (events, n, Wilson lower, upper, Clopper-Pearson lower, upper) from Newcombe 1998 Table II
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662, 0.2527, 0.3676),
    (15, 148, 0.0624, 0.1605, 0.0578, 0.1617),
    (0, 20, 0.0, 0.1611, 0.0, 0.1684),
    (1, 29, 0.0061, 0.1718, 0.0009, 0.1776),
    (29, 29, 0.8830, 1.0, 0.8806, 1.0),
    (0, 10, 0.0, 0.2775, 0.0, 0.3085),
]


@pytest.mark.parametrize("e,n,wl,wu,cl,cu", NEWCOMBE)
def test_newcombe_table(e, n, wl, wu, cl, cu):
    lo, hi = wilson_interval(e, n)
    assert (round(lo, 4), round(hi, 4)) == (wl, wu)
    lo, hi = clopper_pearson_interval(e, n)
    assert (round(lo, 4), round(hi, 4)) == (cl, cu)


def test_proportion_object_and_empty_denominator():
    p = proportion(44, 59)
    assert p.estimate == pytest.approx(44 / 59) and p.lower < p.estimate < p.upper
    assert p.to_dict()["ci_method"] == "wilson"
    empty = proportion(0, 0)
    assert empty.estimate is None and empty.lower is None


def test_bad_counts_rejected():
    with pytest.raises(ValueError):
        proportion(5, 3)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, level=1.5)
