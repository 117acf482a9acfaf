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


def test_confident_tissues_put_each_threshold_at_its_quantile():
    from hepablate.optimize.ire.confident import confident_tissues

    t = load_tissue_table()
    strict = confident_tissues(t, 0.9)
    q = threshold_quantiles(t, 0.9)
    for i, name in enumerate(t.tissue_names):
        th = strict.tissues[name].electrical.ire_threshold_v_per_cm
        assert th.value == pytest.approx(q[i])
        assert th.range == t.tissues[name].electrical.ire_threshold_v_per_cm.range
    # The table it came from is untouched.
    assert (
        t.tissues["liver"].electrical.ire_threshold_v_per_cm.value
        < q[t.tissue_names.index("liver")]
    )


def _confident_plans(diameter_mm):
    from hepablate.optimize import IrePlanOptions, plan_ire
    from hepablate.phantoms import build_phantom, ire_suite_spec

    case = build_phantom(ire_suite_spec(diameter_mm, 5.0, None, None, 2.0))
    base = dict(grid_spacing_mm=2.0, monte_carlo_samples=4)
    nominal = plan_ire(case, IrePlanOptions(**base)).plan
    conf = plan_ire(case, IrePlanOptions(**base, plan_to_confident_zone=True)).plan
    (note,) = [w for w in conf.planning.notes if w.code == "confident_zone_planning"]
    return nominal, conf, note


def test_plan_to_confident_zone_keeps_a_plan_whose_confident_zone_covers():
    nominal, conf, note = _confident_plans(20.0)
    assert nominal.metrics.extra["confident_target_coverage"] >= 0.99
    assert "no extra cost" in note.message and note.level == "info"
    assert [p.tip_lps_mm for p in conf.probes] == [p.tip_lps_mm for p in nominal.probes]
    assert conf.planning.options["plan_to_confident_zone"] is True


def test_plan_to_confident_zone_replans_at_the_quantile_thresholds_and_states_the_cost():
    # 25 mm: the nominal plan (2 cycles) leaves its confident zone at 96.7 %; planned at the
    # 90th-percentile thresholds it takes 4 cycles and covers (measured 5 s and 29 s, 2 cores).
    nominal, conf, note = _confident_plans(25.0)
    before = nominal.metrics.extra["confident_target_coverage"]
    after = conf.metrics.extra["confident_target_coverage"]
    assert before < 0.99 <= after
    assert conf.status == "feasible" and conf.metrics.target_coverage >= 0.99
    assert note.level == "info" and "planned to the confident zone" in note.message
    assert f"{100 * after:.1f} %" in note.message and f"{100 * before:.1f} %" in note.message
    assert len(conf.pairs) > len(nominal.pairs)  # the cost, in energised pairs
    # The plan is evaluated at the tissue table's own thresholds (not the strict ones).
    assert conf.metrics.extra["confident_zone_ml"] < conf.metrics.ablation_volume_ml


@pytest.mark.slow
def test_plan_to_confident_zone_says_when_no_plan_covers_it():
    # 30 mm: the nominal plan's confident zone covers 96 %, and at the 90th-percentile
    # thresholds no layout within 3000 V covers (measured: 22 s and 78 s on 2 cores).
    nominal, conf, note = _confident_plans(30.0)
    assert nominal.metrics.extra["confident_target_coverage"] < 0.99
    assert note.level == "warning" and "no plan covers the confident zone" in note.message
    assert conf.status == nominal.status == "feasible"
