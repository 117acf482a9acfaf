"""A laser plan evaluated end to end: forward model, zone metrics, safety warnings, optical
sensitivity, placement robustness, and the output files (`hepablate simulate` and the planner).

Definitions:
- zone metrics: `hepablate.evaluate.evaluate_zone` (shared with IRE) on the planning grid;
- tip charring: the trilinear temperature at a tip position above the device table's
  `tip_charring_c` (100 degC) at any time of its illumination;
- critical thermal dose: Omega >= threshold (or CEM43 >= threshold, by the plan's criterion)
  in a vessel, bile duct, gallbladder, bowel or stomach voxel or in the one-voxel wall layer
  around it (vessels are held at blood temperature by the heat-sink model, so their wall is
  what can be damaged);
- optical sensitivity: the zone recomputed with the low and the high end of the tissue table's
  range of mu_a and of mu_s' (one at a time, all tissues together), on a grid of at least
  2.5 mm (`SENSITIVITY_SPACING_MM`, the search grid) next to a nominal run on that same grid;
- coverage probability: P(target coverage >= required) when the whole zone is displaced by an
  isotropic Gaussian error of RMS `placement_error_mm` (planning.yaml). A rigid displacement of
  the zone is an approximation: fibres displaced independently would deform it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from hepablate.anatomy.tissues import TissueTable
from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name
from hepablate.case.model import Case
from hepablate.core.progress import Progress
from hepablate.devices.catalog import DeviceTable
from hepablate.evaluate import check_criteria, evaluate_zone, load_planning_defaults
from hepablate.evaluate.metrics import ZoneMetrics, target_region
from hepablate.physics.laser.simulate import LaserResult, simulate_laser
from hepablate.plan.model import LaserSimulationSettings, Metrics, Plan, PlanWarning

#: Organs whose thermal damage is a complication (besides vessels and bile ducts).
CRITICAL_ORGANS = frozenset({"gallbladder", "bowel", "stomach"})
#: Coarsest grid on which the optical sensitivity runs (mm); see the module docstring.
SENSITIVITY_SPACING_MM = 2.5


@dataclass
class LaserEvaluation:
    plan: Plan
    result: LaserResult
    metrics: ZoneMetrics
    region: np.ndarray
    sensitivity: dict[str, dict[str, float]] = field(default_factory=dict)


def _critical_keys(structures: dict[str, np.ndarray]) -> list[str]:
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
    char_c = float(devices.laser.tip_charring_c.value)
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
                f"step {s.step}): vaporisation and charring at the tip are likely (model value at "
                "the grid scale around the tip; consider lower power)",
            )
        )
    dose = result.omega if result.criterion == "arrhenius" else result.cem43_min
    thr = (
        float(tissues.damage.arrhenius_omega_threshold.value)
        if result.criterion == "arrhenius"
        else float(tissues.damage.cem43_threshold_min.value)
    )
    vox_ml = result.grid.voxel_volume_ml
    for key in _critical_keys(result.structures):
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
) -> dict[str, dict[str, float]]:
    """Zone volume and target coverage for the nominal optics and each range end."""
    s = settings.model_copy(
        update={
            "grid_spacing_mm": max(settings.grid_spacing_mm, SENSITIVITY_SPACING_MM),
            "optical_updates_per_step": min(settings.optical_updates_per_step, 1),
        }
    )
    out: dict[str, dict[str, float]] = {}
    variants: list[tuple[str, dict]] = [("nominal", {})]
    for prop in ("mu_a", "mu_s"):
        for end in ("low", "high"):
            variants.append((f"{prop}_{end}", {prop: end}))
    domain = None
    for name, var in variants:
        r = simulate_laser(
            case,
            plan.fibres,
            plan.illuminations,
            settings=s,
            tissues=tissues,
            devices=devices,
            source=source,
            optical_variant=var,
            domain=domain,
        )
        domain = domain or r.domain
        m = evaluate_zone(r.zone, r.structures, case.target_key, case.margin_mm, r.grid.spacing_mm)
        out[name] = {
            "ablation_volume_ml": round(m.ablation_volume_ml, 3),
            "target_coverage": round(m.target_coverage, 4),
        }
    return out


def evaluate_laser_plan(
    case: Case,
    plan: Plan,
    *,
    tissues: TissueTable,
    devices: DeviceTable,
    progress: Progress | None = None,
    source: str | None = None,
    sensitivity: bool = True,
    placement_error_mm: float | None = None,
    monte_carlo_samples: int | None = None,
    seed: int = 0,
    result: LaserResult | None = None,
) -> LaserEvaluation:
    """Run the forward model for `plan` and return the plan with metrics and warnings filled.

    `result` reuses a forward run of exactly this plan and settings. Raises InputError for a
    bad protocol (nothing is written by the caller then)."""
    settings = plan.laser_simulation or LaserSimulationSettings()
    res = result or simulate_laser(
        case,
        plan.fibres,
        plan.illuminations,
        settings=settings,
        tissues=tissues,
        devices=devices,
        progress=progress,
        source=source,
    )
    defaults = load_planning_defaults()
    sp = res.grid.spacing_mm
    region = target_region(res.structures, case.target_key, case.margin_mm, sp)
    zm = evaluate_zone(res.zone, res.structures, case.target_key, case.margin_mm, sp, region=region)
    warnings = check_criteria(zm)
    w2, extra = safety_warnings(res, tissues, devices)
    warnings += w2
    err = (
        placement_error_mm
        if placement_error_mm is not None
        else float(defaults.placement_error_mm.value)
    )
    n_mc = (
        monte_carlo_samples
        if monte_carlo_samples is not None
        else int(defaults.monte_carlo_samples.value)
    )
    required = float(defaults.coverage_required.value)
    p_cov = coverage_probability(res.zone, region, float(sp[0]), err, n_mc, required, seed)
    sens: dict[str, dict[str, float]] = {}
    if sensitivity:
        sens = optical_sensitivity(case, plan, settings, tissues, devices, source)
        for name, vals in sens.items():
            for k, v in vals.items():
                extra[f"sensitivity.{name}.{k}"] = v
        vols = [v["ablation_volume_ml"] for v in sens.values()]
        nom = sens["nominal"]["ablation_volume_ml"]
        if nom > 0:
            extra["sensitivity.volume_range_pct"] = round(100 * (max(vols) - min(vols)) / nom, 1)
    extra.update(
        {
            "target_volume_ml": round(zm.target_volume_ml, 3),
            "uncovered_target_ml": round(zm.uncovered_target_ml, 3),
            "vessel_in_zone_ml": round(zm.vessel_in_zone_ml, 3),
            "duct_in_zone_ml": round(zm.duct_in_zone_ml, 3),
            "temperature_max_c": round(float(res.tmax_c.max()), 2),
            "total_energy_j": round(sum(s.power_w * s.duration_s for s in res.shots), 1),
            "simulation_runtime_s": round(res.runtime_s, 2),
            "placement_error_mm": err,
        }
    )
    metrics = Metrics(
        target_coverage=round(zm.target_coverage, 4),
        tumour_coverage=round(zm.tumour_coverage, 4),
        min_margin_mm=round(zm.min_margin_mm, 2),
        ablation_volume_ml=round(zm.ablation_volume_ml, 3),
        non_target_liver_ml=round(zm.non_target_liver_ml, 3),
        coverage_probability=None if math.isnan(p_cov) else round(p_cov, 4),
        extra=extra,
    )
    ills = [
        il.model_copy(update={"energy_j": round(il.power_w * il.duration_s, 3)})
        for il in plan.illuminations
    ]
    errors = [w for w in warnings if w.level == "error"]
    status = "infeasible" if errors else "feasible"
    reason = "; ".join(w.message for w in errors)
    new = plan.model_copy(
        update={
            "illuminations": ills,
            "laser_simulation": settings,
            "metrics": metrics,
            "warnings": warnings,
            "status": status,
            "status_reason": reason,
        }
    )
    return LaserEvaluation(new, res, zm, region, sens)


def write_laser_volumes(out_dir: Path, case: Case, ev: LaserEvaluation) -> list[Path]:
    """zone.nii.gz (uint8) and temperature_max_c.nii.gz (float32, degC) on the planning grid
    (an axis-aligned box of the case in its patient frame, like the IRE outputs)."""
    from hepablate.imaging.images import write_image

    r = ev.result
    zone = r.grid.with_array(r.zone.astype(np.uint8))
    tmax = r.grid.with_array(r.tmax_c.astype(np.float32))
    written = [
        write_image(zone, Path(out_dir) / "zone.nii.gz"),
        write_image(tmax, Path(out_dir) / "temperature_max_c.nii.gz"),
    ]
    if case.source_format == "dicom" and case.dicom_reference is not None:
        # The zone as DICOM SEG on the case's CT, so it opens in PACS viewers and 3D Slicer.
        from hepablate.imaging.dicom_seg import write_zone_seg

        written.append(
            write_zone_seg(
                zone,
                case.dicom_reference,
                Path(out_dir) / "zone_seg.dcm",
                label="laser ablation zone",
            )
        )
    return written


def laser_provenance(
    case: Case,
    plan: Plan,
    tissues: TissueTable,
    devices: DeviceTable,
    command: str = "",
    extra_files: dict[str, Path] | None = None,
):
    """Provenance record: versions, input hashes and every physical parameter used."""
    from datetime import UTC, datetime

    from hepablate import __version__
    from hepablate.core.provenance import file_sha256
    from hepablate.plan.model import Parameter, Provenance

    params = [
        Parameter(name=f"device.laser.{k}", value=q.value, source=q.source)
        for k, q in devices.laser
    ]
    for tname in tissues.tissue_names:
        t = tissues.tissues[tname]
        for group in ("optical_1064nm", "thermal"):
            for k, q in getattr(t, group):
                params.append(
                    Parameter(name=f"tissue.{tname}.{group}.{k}", value=q.value, source=q.source)
                )
    for k, q in tissues.blood:
        params.append(Parameter(name=f"blood.{k}", value=q.value, source=q.source))
    for k in (
        "arrhenius_a_per_s",
        "arrhenius_ea_j_per_mol",
        "arrhenius_omega_threshold",
        "cem43_threshold_min",
    ):
        q = getattr(tissues.damage, k)
        params.append(Parameter(name=f"damage.{k}", value=q.value, source=q.source))
    params += load_planning_defaults().parameters()
    hashes: dict[str, str] = {}
    files = dict(case.source_files or {})
    if case.root is not None and (case.root / "case.yaml").exists():
        files["case.yaml"] = case.root / "case.yaml"
    files.update(extra_files or {})
    for name, path in files.items():
        try:
            hashes[str(name)] = file_sha256(path)
        except OSError:
            pass
    return Provenance(
        hepablate_version=__version__,
        created_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command=command,
        input_hashes=hashes,
        parameters=params,
    )


def simulate_laser_cli(
    case: Case,
    plan: Plan,
    *,
    out: str | Path,
    progress: Progress | None = None,
    plan_source: str | None = None,
    tissues: TissueTable | None = None,
    devices: DeviceTable | None = None,
    command: str = "",
    sensitivity: bool = True,
) -> Plan:
    """`hepablate simulate` for a laser plan: writes plan.json (metrics, warnings,
    provenance), zone.nii.gz and temperature_max_c.nii.gz into `out` atomically."""
    import time

    from hepablate.anatomy.tissues import load_tissue_table
    from hepablate.core.output import atomic_output_dir
    from hepablate.devices.catalog import load_device_table
    from hepablate.plan.model import CaseRef, write_plan

    t0 = time.perf_counter()
    tissues = tissues or load_tissue_table()
    devices = devices or load_device_table()
    ev = evaluate_laser_plan(
        case,
        plan,
        tissues=tissues,
        devices=devices,
        progress=progress,
        source=plan_source,
        sensitivity=sensitivity,
    )
    extra = {"plan": Path(plan_source)} if plan_source else None
    new = ev.plan.model_copy(
        update={
            "case": plan.case
            or CaseRef(
                case_id=case.case_id,
                path=None if case.root is None else str(case.root),
                target=case.target_id,
                margin_mm=case.margin_mm,
            ),
            "provenance": laser_provenance(case, plan, tissues, devices, command, extra),
            "runtime_s": round(time.perf_counter() - t0, 2),
        }
    )
    with atomic_output_dir(out) as tmp:
        write_plan(new, tmp / "plan.json")
        write_laser_volumes(tmp, case, LaserEvaluation(new, ev.result, ev.metrics, ev.region))
    return new


def run_laser_simulation(
    case_dir: str | Path,
    plan_path: str | Path,
    out: str | Path,
    tissues_file: str | Path | None = None,
    devices_file: str | Path | None = None,
    progress: Progress | None = None,
    command: str = "hepablate simulate",
) -> dict:
    """CLI helper of `hepablate simulate` for laser plans; returns a JSON-able summary."""
    from hepablate.anatomy.tissues import load_tissue_table
    from hepablate.case import load_case
    from hepablate.devices.catalog import load_device_table
    from hepablate.plan.model import read_plan

    plan = read_plan(plan_path)
    tissues = load_tissue_table(tissues_file)
    devices = load_device_table(devices_file)
    case = load_case(case_dir)
    new = simulate_laser_cli(
        case,
        plan,
        out=out,
        progress=progress,
        plan_source=str(plan_path),
        tissues=tissues,
        devices=devices,
        command=command,
    )
    m = new.metrics
    return {
        "out": str(out),
        "modality": "laser",
        "status": new.status,
        "zone_volume_ml": m.ablation_volume_ml,
        "target_coverage": m.target_coverage,
        "min_margin_mm": m.min_margin_mm,
        "tip_max_c": max(
            (v for k, v in m.extra.items() if k.startswith("tip_max_c.")), default=None
        ),
        "warnings": [w.model_dump() for w in new.warnings],
    }
