"""What the laser evaluation adds to the shared one (`hepablate.evaluate`): safety warnings,
optical sensitivity and placement robustness of a laser forward run.

Definitions:
- tip charring: the tip temperature (mean temperature `tip_temperature_radius_mm` from the
  emitter, physics.laser.emission) above the device table's `tip_charring_c` (100 degC) at
  any time of its illumination;
- critical thermal dose: Omega >= threshold (or CEM43 >= threshold, by the plan's criterion)
  in a vessel, bile duct, gallbladder, bowel or stomach voxel or in the one-voxel wall layer
  around it (vessels are held at blood temperature by the heat-sink model, so their wall is
  what can be damaged);
- parameter sensitivity: the zone recomputed with the low and the high end of the tissue
  table's range of mu_a, of mu_s' and (in vivo) of perfusion (one at a time, all tissues
  together), on a grid of at least 2.5 mm (`SENSITIVITY_SPACING_MM`, the search grid) next to
  a nominal run on that same grid; the *confident zone* is ablated in at least
  `confident_zone_fraction` (planning.yaml, 0.9) of these runs, the *possible zone* in at least
  1 - that fraction (with the 5 or 7 runs: in all of them / in any). Range ends one at a time
  are not samples of a distribution: the confident zone is the zone that survives each
  property at either end of its published range;
- coverage probability: P(target coverage >= required) when the whole zone is displaced by an
  isotropic Gaussian error of RMS `placement_error_mm` (planning.yaml). A rigid displacement of
  the zone is an approximation: fibres displaced independently would deform it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from hepablate.anatomy.tissues import TissueTable
from hepablate.anatomy.vocabulary import BILE_DUCTS, BOWEL, VESSELS, base_name
from hepablate.case.model import Case
from hepablate.devices.catalog import DeviceTable
from hepablate.evaluation.metrics import evaluate_zone
from hepablate.physics.laser.simulate import LaserResult, simulate_laser
from hepablate.plans.model import (
    Fibre,
    Illumination,
    LaserSimulationSettings,
    Plan,
    PlanWarning,
)

#: Organs whose thermal damage is a complication (besides vessels and bile ducts): the
#: gallbladder and every part of the bowel (stomach, duodenum, colon; perforation is a listed
#: complication of thermal ablation, criteria.yaml).
CRITICAL_ORGANS = frozenset({"gallbladder"}) | BOWEL
#: Coarsest grid on which the optical sensitivity runs (mm); see the module docstring.
SENSITIVITY_SPACING_MM = 2.5


def critical_keys(structures: dict[str, np.ndarray]) -> list[str]:
    out = []
    for key, m in structures.items():
        b = base_name(key)
        if (b in VESSELS or b in BILE_DUCTS or b in CRITICAL_ORGANS) and m.any():
            out.append(key)
    return out


def safety_warnings(
    result: LaserResult, tissues: TissueTable, devices: DeviceTable
) -> tuple[list[PlanWarning], dict[str, float]]:
    warnings: list[PlanWarning] = []
    extra: dict[str, float] = {}
    char_c = devices.laser.tip_charring_c.value
    radius = devices.laser.tip_temperature_radius_mm.value
    hot = []
    for s in result.shots:
        tmax = result.tip_max_c[s.index]
        extra[f"tip_max_c.{s.fibre_id}.step{s.step}"] = round(tmax, 1)
        if tmax > char_c:
            hot.append((tmax, s))
    if hot:
        tmax, s = max(hot, key=lambda x: x[0])
        warnings.append(
            PlanWarning(
                level="warning",
                code="tip_charring",
                message=f"tip temperature above {char_c:g} degC in {len(hot)} of "
                f"{len(result.shots)} illuminations (highest {tmax:.0f} degC, fibre {s.fibre_id} "
                f"step {s.step}; mean temperature {radius:g} mm from the emitter): the tissue at "
                "the tip boils and a bare tip chars, which the model does not include; consider "
                "lower power or a diffuser",
            )
        )
    dose = result.omega if result.criterion == "arrhenius" else result.cem43_min
    thr = (
        tissues.damage.arrhenius_omega_threshold.value
        if result.criterion == "arrhenius"
        else tissues.damage.cem43_threshold_min.value
    )
    vox_ml = result.grid.voxel_volume_ml
    for key in critical_keys(result.structures):
        m = result.structures[key]
        wall = ndimage.binary_dilation(m)
        damaged = wall & (dose >= thr)
        ml = float(damaged.sum()) * vox_ml
        extra[f"critical_damage_ml.{key}"] = round(ml, 3)
        if ml > 0:
            warnings.append(
                PlanWarning(
                    level="warning",
                    code="critical_thermal_damage",
                    message=f"{key} (or its wall) reaches a damaging thermal dose "
                    f"({result.criterion}) in {ml:.2f} ml",
                )
            )
    return warnings, extra


def coverage_probability(
    zone: np.ndarray,
    region: np.ndarray,
    spacing_mm: float,
    placement_error_mm: float,
    samples: int,
    required: float,
    seed: int = 0,
) -> float:
    """P(coverage >= required) under a rigid Gaussian displacement of the zone (see above)."""
    if samples <= 0 or not region.any():
        return float("nan")
    pad = int(math.ceil(4 * placement_error_mm / spacing_mm)) + 2
    idx = np.argwhere(region | zone)
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + pad + 1, np.array(zone.shape))
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    z = zone[sl].astype(np.float32)
    r = region[sl]
    n = int(r.sum())
    rng = np.random.default_rng(seed)
    sigma_vox = placement_error_mm / math.sqrt(3.0) / spacing_mm
    hits = 0
    for _ in range(samples):
        moved = ndimage.shift(z, rng.normal(0.0, sigma_vox, 3), order=1, mode="constant") >= 0.5
        hits += float((moved & r).sum()) / n >= required
    return hits / samples


def optical_sensitivity(
    case: Case,
    plan: Plan,
    settings: LaserSimulationSettings,
    tissues: TissueTable,
    devices: DeviceTable,
    source: str | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """`parameter_band` of a plan's fibres and illuminations."""
    return parameter_band(case, plan.fibres, plan.illuminations, settings, tissues, devices, source)


def parameter_band(
    case: Case,
    fibres: list[Fibre],
    illuminations: list[Illumination],
    settings: LaserSimulationSettings,
    tissues: TissueTable,
    devices: DeviceTable,
    source: str | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Zone volume and target coverage for the nominal properties and each range end, and
    the confident and possible zones over these runs (coverage of tumour + margin and of the
    tumour, volume; keys `confident_target_coverage`, ...; see the module docstring)."""
    from hepablate.evaluation.defaults import load_planning_defaults

    s = settings.model_copy(
        update={
            "grid_spacing_mm": max(settings.grid_spacing_mm, SENSITIVITY_SPACING_MM),
            "optical_updates_per_step": min(settings.optical_updates_per_step, 1),
        }
    )
    out: dict[str, dict[str, float]] = {}
    variants: list[tuple[str, dict]] = [("nominal", {})]
    props = ("mu_a", "mu_s", "perfusion") if settings.perfusion else ("mu_a", "mu_s")
    for prop in props:
        for end in ("low", "high"):
            variants.append((f"{prop}_{end}", {prop: end}))
    domain = None
    hits: np.ndarray | None = None
    r = None
    for name, var in variants:
        r = simulate_laser(
            case,
            fibres,
            illuminations,
            settings=s,
            tissues=tissues,
            devices=devices,
            source=source,
            optical_variant=var,
            domain=domain,
        )
        domain = domain or r.domain
        hits = r.zone.astype(np.int16) if hits is None else hits + r.zone
        m = evaluate_zone(r.zone, r.structures, case.target_key, case.margin_mm, r.grid.spacing_mm)
        out[name] = {
            "ablation_volume_ml": round(m.ablation_volume_ml, 3),
            "target_coverage": round(m.target_coverage, 4),
        }
    assert hits is not None and r is not None
    p_conf = load_planning_defaults().confident_zone_fraction.value
    n = len(variants)
    band: dict[str, float] = {"parameter_runs": float(n)}
    for label, k in (
        ("confident", math.ceil(p_conf * n - 1e-9)),
        ("possible", max(1, math.ceil((1.0 - p_conf) * n - 1e-9))),
    ):
        zone = hits >= k
        m = evaluate_zone(zone, r.structures, case.target_key, case.margin_mm, r.grid.spacing_mm)
        band[f"{label}_target_coverage"] = round(m.target_coverage, 4)
        band[f"{label}_tumour_coverage"] = round(m.tumour_coverage, 4)
        band[f"{label}_zone_ml"] = round(m.ablation_volume_ml, 3)
    return out, band
