"""The IRE zone under the threshold's uncertainty (issue 13, item 4): the triangular quantiles,
the confident and possible zones against an independent sample of thresholds, and the plan's
metrics and note through `hepablate.evaluate`."""

from __future__ import annotations

import numpy as np
import pytest

import hepablate
from hepablate.anatomy.tissues import load_tissue_table, tissue_map
from hepablate.modalities.ire.uncertainty import (
    band_zones,
    threshold_quantiles,
    triangular_quantile,
)

from .test_evaluate import _hand_plan
from .test_evaluate import case as case  # noqa: F401 (fixture)


def test_triangular_quantile_matches_sampling():
    rng = np.random.default_rng(1)
    x = rng.triangular(465.0, 485.0, 750.0, 400_000)
    for q in (0.1, 0.5, 0.9):
        assert triangular_quantile(465.0, 485.0, 750.0, q) == pytest.approx(
            np.quantile(x, q), abs=1.0
        )
    assert triangular_quantile(465.0, 600.0, 750.0, 0.0) == pytest.approx(465.0)
    assert triangular_quantile(465.0, 600.0, 750.0, 1.0) == pytest.approx(750.0)


def test_confident_zone_is_what_most_threshold_samples_ablate(case):  # noqa: F811
    """Voxel by voxel, the confident zone holds the voxels ablated in >= 90 % of thresholds
    drawn independently (one quantile for all tissues), the possible zone those in >= 10 %."""
    tissues = load_tissue_table()
    tix = tissue_map(case.structures, tissues)
    rng = np.random.default_rng(2)
    field = rng.uniform(300.0, 900.0, tix.shape)
    conf, poss, _ = band_zones(field, tix, tissues, 0.9)
    # Sample: one uniform u per draw, mapped through each tissue's triangular quantile
    # (the same u for every tissue).
    us = rng.uniform(0.0, 1.0, 400)
    hit = np.zeros(tix.shape, np.int32)
    t = np.where(tix >= 0, tix, 0)
    for u in us:
        # (the quantile function itself is checked against numpy's sampler above)
        th = threshold_quantiles(tissues, float(u))
        hit += (tix >= 0) & (field >= th[t])
    frac = hit / len(us)
    inside = tix >= 0
    # Away from the edges of the band (sampling noise), the zones agree with the samples.
    assert np.all(frac[conf & inside] >= 0.85)
    assert np.all(frac[inside & ~poss] <= 0.15)
    assert conf.sum() < poss.sum()
    assert not (conf & ~inside).any()


def test_evaluate_reports_the_band(case):  # noqa: F811
    ev = hepablate.evaluate(case, _hand_plan(case))
    x = ev.plan.metrics.extra
    nominal = ev.plan.metrics.target_coverage
    assert 0.0 < x["confident_target_coverage"] <= nominal <= x["possible_target_coverage"] + 1e-9
    assert (
        x["confident_zone_ml"]
        < ev.plan.metrics.ablation_volume_ml
        <= (x["possible_zone_ml"] + 0.05 * ev.plan.metrics.ablation_volume_ml)
    )
    note = next(w for w in ev.plan.warnings if w.code == "zone_uncertainty")
    assert note.level == "info" and "confident zone" in note.message
    # A plan at a fixed zone threshold has no band.
    fixed = _hand_plan(case)
    fixed = fixed.model_copy(
        update={
            "ire_simulation": fixed.ire_simulation.model_copy(
                update={"zone_threshold_v_per_cm": 600.0}
            )
        }
    )
    ev2 = hepablate.evaluate(case, fixed)
    assert "confident_target_coverage" not in ev2.plan.metrics.extra
