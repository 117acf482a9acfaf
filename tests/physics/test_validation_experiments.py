"""The cheap experiments of the literature validation suite (data/validation_experiments.yaml)
on 2 mm grids: a model or default change that breaks agreement with the measurements fails here.
Known disagreements of the laser model (outside the same tolerance; no charring or
vaporisation: issue 13 item 3) are strict xfails, so they fail once the model is fixed and the
expectation must be moved. The full suite
at 1 mm is benchmarks/validation/run_validation.py (docs/validation.md)."""

from __future__ import annotations

import pytest

from hepablate.anatomy.tissues import load_tissue_table
from hepablate.phantoms import BlockSpec, build_block
from hepablate.physics.laser.simulate import simulate_laser
from hepablate.plans.model import Fibre, Illumination, LaserSimulationSettings
from hepablate.validation import load_validation_suite
from hepablate.validation.calibrate import fit_threshold, sigma_variant_table
from hepablate.validation.reproduce import (
    experiment_devices,
    reproduce_ire,
    reproduce_laser,
)

SUITE = load_validation_suite()
#: IRE: every measured dimension within 20 % of its mean at the default threshold (the
#: uncalibrated 600 V/cm default was 12 to 26 % short in width; docs/validation.md).
IRE_TOLERANCE = 0.20
#: Laser lengths that the present model reproduces: within 25 % of the measurement.
LASER_TOLERANCE = 0.25


def _liver_threshold() -> float:
    return float(load_tissue_table().tissues["liver"].electrical.ire_threshold_v_per_cm.value)


@pytest.fixture(scope="module")
def ire_fields():
    return {e.id: [reproduce_ire(e, v, spacing_mm=2.0) for v in e.voltages_v()] for e in SUITE.ire}


def test_suite_entries_are_complete():
    assert len(SUITE.ire) >= 3 and len(SUITE.laser) >= 8
    assert {e.role for e in SUITE.ire} == {"calibration", "validation"}
    for e in [*SUITE.ire, *SUITE.laser]:
        assert e.found_at.startswith("http") and e.excerpt
        dims = [
            getattr(e.measured, n)
            for n in ("width_mm", "depth_mm", "height_mm", "length_mm", "diameter_mm")
            if hasattr(e.measured, n) and getattr(e.measured, n) is not None
        ]
        assert dims or getattr(e.measured, "fused", None) is not None, e.id
        for d in dims:
            assert d.value_mm > 0


@pytest.mark.parametrize("exp_id", [e.id for e in SUITE.ire])
def test_ire_zone_matches_measurement(ire_fields, exp_id):
    exp = SUITE.get(exp_id)
    thr = _liver_threshold()
    dims = [f.dimensions_mm(thr) for f in ire_fields[exp_id]]
    for name in ("width_mm", "depth_mm", "height_mm"):
        meas = getattr(exp.measured, name)
        if meas is None:
            continue
        lo = min(d[name] for d in dims)
        hi = max(d[name] for d in dims)
        m = meas.value_mm
        err = 0.0 if lo <= m <= hi else min(abs(lo - m), abs(hi - m))
        assert err <= IRE_TOLERANCE * m, (exp_id, name, lo, hi, m)


#: Arms whose measured zone the threshold band alone does not reach: the 20 mm arm's width
#: (39 +- 5 mm) lies above the possible zone (33 mm at 2 mm grid); the band leaves the
#: conductivity model's range out (issue 13 item 4, not sampled yet).
BAND_MISSES = {"bendavid2012_20mm": "threshold band only; sigma(E) range not sampled"}


@pytest.mark.parametrize(
    "exp_id",
    [
        pytest.param(e.id, marks=pytest.mark.xfail(strict=True, reason=BAND_MISSES[e.id]))
        if e.id in BAND_MISSES
        else e.id
        for e in SUITE.ire
    ],
)
def test_ire_measured_zone_lies_in_the_stated_band(ire_fields, exp_id):
    """Issue 13 item 4: the plan's uncertainty band (confident zone: the liver threshold's
    90th percentile; possible zone: its 10th; modalities/ire/uncertainty.py) contains the
    measured zone of each experiment, within the measured spread."""
    from hepablate.evaluation.defaults import load_planning_defaults
    from hepablate.modalities.ire.uncertainty import threshold_quantiles

    tissues = load_tissue_table()
    i = tissues.tissue_names.index("liver")
    p = load_planning_defaults().confident_zone_fraction.value
    t_conf, t_poss = threshold_quantiles(tissues, p)[i], threshold_quantiles(tissues, 1 - p)[i]
    assert t_poss < t_conf
    exp = SUITE.get(exp_id)
    for name in ("width_mm", "depth_mm", "height_mm"):
        meas = getattr(exp.measured, name)
        if meas is None:
            continue
        small = min(f.dimensions_mm(t_conf)[name] for f in ire_fields[exp_id])
        large = max(f.dimensions_mm(t_poss)[name] for f in ire_fields[exp_id])
        spread = meas.sd or 0.0
        assert small - spread <= meas.value_mm <= large + spread, (exp_id, name, small, large)


def test_ire_threshold_fit_reproduces_the_default(ire_fields):
    """The calibration arm refitted on the 2 mm grid lands within 10 V/cm of the tissue-table
    default (fitted at 1 mm): the default is what the data say, not a hand-set number."""
    cal = [(e, f) for e in SUITE.ire if e.role == "calibration" for f in ire_fields[e.id]]
    fit = fit_threshold("table", cal)
    assert abs(fit.threshold_v_per_cm - _liver_threshold()) <= 10.0
    assert fit.rms_relative_error < 0.12


def test_ire_zone_grows_with_voltage_and_spacing(ire_fields):
    thr = _liver_threshold()
    a = ire_fields["bendavid2012_2250v_15mm"][0].dimensions_mm(thr)
    b = ire_fields["bendavid2012_3000v_15mm"][0].dimensions_mm(thr)
    c = ire_fields["bendavid2012_20mm"][0].dimensions_mm(thr)  # 2250 V
    assert b["width_mm"] > a["width_mm"] and b["depth_mm"] > a["depth_mm"]
    assert c["width_mm"] > a["width_mm"]


def test_sel2005_variant_uses_table_range_ends():
    t, model = sigma_variant_table("sel2005")
    el = t.tissues["liver"].electrical
    assert model == "nonlinear"
    assert el.sigma_baseline_s_per_m.value == el.sigma_baseline_s_per_m.range[0]
    assert el.e_irreversible_v_per_cm.value == el.e_irreversible_v_per_cm.range[0]
    assert sigma_variant_table("constant")[1] == "constant"


@pytest.fixture(scope="module")
def laser_preds():
    return {e.id: reproduce_laser(e, spacing_mm=2.0, time_step_s=2.0) for e in SUITE.laser}


AGREE = [
    ("sheep_invitro_2w", "diameter_mm"),
    ("sheep_invitro_4w", "diameter_mm"),
    ("slabs_diffuser_7w", "length_mm"),
    ("slabs_bare_6w", "length_mm"),
]
#: Off by more than the tolerance without charring or vaporisation (docs/validation.md):
#: high-power lesions too wide, and the four-diffuser array (line sources since the emission
#: model) narrower than the "up to 5 cm" measured.
DISAGREE = [
    ("slabs_diffuser_7w", "diameter_mm"),
    ("slabs_bare_6w", "diameter_mm"),
    ("park_bovine_single_5w", "diameter_mm"),
    ("heisterkamp1997_4diff_20mm", "diameter_mm"),
]


@pytest.mark.parametrize(("exp_id", "dim"), AGREE)
def test_laser_zone_matches_measurement(laser_preds, exp_id, dim):
    meas = getattr(SUITE.get(exp_id).measured, dim).value_mm
    pred = getattr(laser_preds[exp_id], dim)
    assert abs(pred - meas) <= LASER_TOLERANCE * meas, (exp_id, dim, pred, meas)


@pytest.mark.parametrize(("exp_id", "dim"), DISAGREE)
@pytest.mark.xfail(strict=True, reason="no charring or vaporisation (issue 13 item 3)")
def test_laser_known_disagreement(laser_preds, exp_id, dim):
    meas = getattr(SUITE.get(exp_id).measured, dim).value_mm
    assert abs(getattr(laser_preds[exp_id], dim) - meas) <= LASER_TOLERANCE * meas


@pytest.mark.parametrize("exp_id", ["heisterkamp1997_4diff_20mm", "heisterkamp1997_4diff_30mm"])
def test_laser_fusion_matches(laser_preds, exp_id):
    assert laser_preds[exp_id].fused is SUITE.get(exp_id).measured.fused


@pytest.mark.xfail(strict=True, reason="arrays fuse where lesions stay separate (issue 13 item 3)")
def test_laser_fusion_bare_array_15mm(laser_preds):
    assert laser_preds["park_bovine_4fibre_15mm"].fused is False


def test_single_bare_fibre_lesion_is_not_elongated_without_charring(laser_preds):
    """The forward-peaked bare-fibre source lies about one transport mean free path (1 mm)
    ahead of the tip, too little to shape a lesion of centimetres: length = diameter within
    2 mm, while the measured bare-fibre lesion is longer than wide with massive charring
    (slabs_bare_6w: 32 x 20 mm). Fails once charring (item 3) elongates it."""
    p = laser_preds["slabs_bare_6w"]
    assert abs(p.length_mm - p.diameter_mm) < 2.0


def test_diffuser_lesion_is_longer_than_wide_as_measured(laser_preds):
    """A 2 cm cylindrical diffuser (line source) gives a lesion elongated along the fibre, as
    measured (slabs_diffuser_7w: up to 36 x 23 mm)."""
    p = laser_preds["slabs_diffuser_7w"]
    m = SUITE.get("slabs_diffuser_7w").measured
    assert m.length_mm is not None and m.diameter_mm is not None
    assert m.length_mm.value_mm > m.diameter_mm.value_mm
    assert p.length_mm > 1.15 * p.diameter_mm


def test_charring_warning_separates_low_from_high_power_protocols(laser_preds):
    """The tip temperature (2 mm from the emitter) stays below the charring level for the
    1.5 to 2 W bare-fibre protocols and passes it from 4 W; slabs_bare_6w was measured with
    massive charring."""
    from hepablate.devices.catalog import load_device_table

    char_c = load_device_table().laser.tip_charring_c.value
    assert SUITE.get("slabs_bare_6w").measured.charring is True
    for low in ("bosman1991_invivo_1p5w", "sheep_invitro_2w"):
        assert laser_preds[low].tip_max_c < char_c, low
    for high in ("sheep_invitro_4w", "park_bovine_single_5w", "slabs_bare_6w"):
        assert laser_preds[high].tip_max_c > char_c, high


# ---- ex-vivo mode -----------------------------------------------------------------------------
def _one_fibre(settings: LaserSimulationSettings, power_w: float, duration_s: float = 120.0):
    case = build_block(BlockSpec(size_mm=(60.0, 60.0, 60.0), spacing_mm=(2.0, 2.0, 2.0)))
    exp = SUITE.get("sheep_invitro_2w")
    fib = [Fibre(id="F1", tip_lps_mm=(0.0, 0.0, 0.0), direction_lps=(0.0, 0.0, 1.0))]
    ill = [Illumination(step=1, fibre="F1", power_w=power_w, duration_s=duration_s)]
    return simulate_laser(
        case,
        fib,
        ill,
        settings=settings,
        tissues=load_tissue_table(),
        devices=experiment_devices(exp),
    )


def test_ex_vivo_mode_holds_start_temperature_and_shrinks_the_lesion():
    base = dict(grid_spacing_mm=2.0, roi_padding_mm=20.0, time_step_s=2.0, cooldown_s=0.0)
    ex = LaserSimulationSettings(**base, initial_temperature_c=20.0, perfusion=False)
    r = _one_fibre(ex, 1.0, 120.0)
    # Far from the fibre the tissue stays at ambient (no drift towards 37 degC).
    assert r.tmax_c[0, 0, 0] == pytest.approx(20.0, abs=0.01)
    vivo = _one_fibre(LaserSimulationSettings(**base), 3.0)
    cold = _one_fibre(ex, 3.0)
    warm = _one_fibre(
        LaserSimulationSettings(**base, initial_temperature_c=37.0, perfusion=False), 3.0
    )
    # From room temperature the same energy coagulates less; without perfusion more.
    assert cold.zone.sum() < warm.zone.sum()
    assert vivo.zone.sum() < warm.zone.sum()
    assert vivo.tmax_c.min() == pytest.approx(37.0, abs=0.05)  # in vivo still starts at blood


def test_ex_vivo_start_temperature_is_range_checked():
    with pytest.raises(Exception, match="initial_temperature_c"):
        LaserSimulationSettings(initial_temperature_c=95.0)
