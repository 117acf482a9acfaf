"""The plan of an IRE planning run (`plan_ire`): options resolved against the device and
planning tables, the search run, its robustness estimated, and the Plan built from the best
confirmed plan (metrics, parameters, provenance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepablate.case.model import Case
from hepablate.core.progress import Progress
from hepablate.core.units import unit_of
from hepablate.core.volume import Volume
from hepablate.devices.catalog import DeviceTable
from hepablate.optimize.ire.model import IreEngine, IrePlanOutcome
from hepablate.optimize.ire.options import IrePlanOptions, limits_from, search_threshold_v_per_cm
from hepablate.optimize.ire.planner import IrePlanner
from hepablate.optimize.ire.robustness import coverage_probability
from hepablate.plans.model import PlanWarning


@dataclass
class IrePlanResult:
    """A plan and the volumes that go with it (planning grid, LPS)."""

    plan: Any
    outcome: IrePlanOutcome
    zone: Volume | None
    field_max_v_per_cm: Volume | None


def default_engine(case: Case, settings: Any, tissues: Any, devices: Any) -> IreEngine:
    from hepablate.physics.ire import IreProblem

    return IreProblem.from_case(case, settings=settings, tissues=tissues, devices=devices)


def plan_ire(
    case: Case,
    options: IrePlanOptions | None = None,
    *,
    tissues: Any = None,
    devices: DeviceTable | None = None,
    engine: IreEngine | None = None,
    progress: Progress | None = None,
    command: str = "",
) -> IrePlanResult:
    """Plan IRE for `case` (see the package docstring); never raises for an infeasible target,
    which comes back as a plan with `status: infeasible` and the reason."""
    import time as _time

    from hepablate import __version__
    from hepablate.anatomy.tissues import load_tissue_table
    from hepablate.core.provenance import file_sha256
    from hepablate.devices.catalog import load_device_table
    from hepablate.evaluation import load_planning_defaults
    from hepablate.plans.model import (
        CaseRef,
        IreSimulationSettings,
        Metrics,
        Parameter,
        Plan,
        Provenance,
    )

    t0 = _time.perf_counter()
    opts = options or IrePlanOptions()
    tissues = tissues or load_tissue_table()
    devices = devices or load_device_table()
    defaults = load_planning_defaults()
    settings = IreSimulationSettings(grid_spacing_mm=opts.grid_spacing_mm)
    thr = search_threshold_v_per_cm(tissues, settings)
    lim = limits_from(devices, thr, opts)
    if not case.target_mask.any():
        from hepablate.errors import InputError

        raise InputError(f"target tumour '{case.target_id}' is empty", field="target")
    engine = engine or default_engine(case, settings, tissues, devices)
    planner = IrePlanner(case, engine, lim, defaults, opts, progress)
    outcome = planner.run()
    required = float(defaults.coverage_required.value)
    err = (
        opts.placement_error_mm
        if opts.placement_error_mm is not None
        else float(defaults.placement_error_mm.value)
    )
    n_mc = (
        opts.monte_carlo_samples
        if opts.monte_carlo_samples is not None
        else int(defaults.monte_carlo_samples.value)
    )
    conf = outcome.confirmed
    extra: dict[str, float] = {}
    if conf is not None and n_mc > 0:
        p, info = coverage_probability(conf, outcome.grid, err, n_mc, required, opts.seed)
        outcome.coverage_probability = p
        extra.update(info)
    extra.update({k: float(v) for k, v in outcome.stats.items()})
    metrics = Metrics()
    if conf is not None:
        m = conf.metrics
        extra.update(
            {
                "target_volume_ml": round(m.target_volume_ml, 3),
                "uncovered_target_ml": round(m.uncovered_target_ml, 3),
                "vessel_in_zone_ml": round(m.vessel_in_zone_ml, 3),
                "duct_in_zone_ml": round(m.duct_in_zone_ml, 3),
            }
        )
        if conf.temperature_max_c is not None:
            extra["temperature_max_c"] = round(float(np.max(conf.temperature_max_c)), 2)
        metrics = Metrics(
            target_coverage=round(m.target_coverage, 4),
            tumour_coverage=round(m.tumour_coverage, 4),
            min_margin_mm=round(m.min_margin_mm, 2),
            ablation_volume_ml=round(m.ablation_volume_ml, 3),
            non_target_liver_ml=round(m.non_target_liver_ml, 3),
            coverage_probability=None
            if outcome.coverage_probability is None
            else round(outcome.coverage_probability, 4),
            extra=extra,
        )
        if outcome.coverage_probability is not None and outcome.coverage_probability < 0.5:
            outcome.warnings.append(
                PlanWarning(
                    level="warning",
                    code="low_robustness",
                    message=f"only {100 * outcome.coverage_probability:.0f} % of simulated "
                    f"placements with {err:g} mm error keep {100 * required:.0f} % coverage; "
                    "consider --robust",
                )
            )
    params = [
        Parameter(name=f"device.ire.{k}", value=q.value, unit=unit_of(k), source=q.source)
        for k, q in devices.ire
    ]
    for tname in ("liver", "tumour", "blood", "bile"):
        if tname in tissues.tissues:
            for k, q in tissues.tissues[tname].electrical:
                params.append(
                    Parameter(
                        name=f"tissue.{tname}.electrical.{k}",
                        value=q.value,
                        unit=unit_of(k),
                        source=q.source,
                    )
                )
    params += defaults.parameters()
    params.append(
        Parameter(
            name="planning.search_threshold_v_per_cm",
            value=thr,
            unit="V/cm",
            source="tissue table IRE threshold (max of liver, tumour)",
        )
    )
    params.append(
        Parameter(
            name="planning.path_safety_distance_mm_used",
            value=planner.safety_mm,
            unit="mm",
            source="option --safety-distance or planning.yaml",
        )
    )
    for k, v in opts.model_dump().items():
        params.append(Parameter(name=f"option.{k}", value=v, source="command line / API"))
    hashes = {}
    for name, path in (case.source_files or {}).items():
        try:
            hashes[name] = file_sha256(path)
        except OSError:
            pass
    if case.root is not None and (case.root / "case.yaml").exists():
        hashes["case.yaml"] = file_sha256(case.root / "case.yaml")
    plan = Plan(
        modality="ire",
        case=CaseRef(
            case_id=case.case_id,
            path=None if case.root is None else str(case.root),
            target=case.target_id,
            margin_mm=case.margin_mm,
        ),
        status=outcome.status,
        status_reason=outcome.status_reason,
        probes=[] if conf is None else conf.probes,
        pairs=[] if conf is None else conf.pairs,
        ire_simulation=settings,
        metrics=metrics,
        warnings=outcome.warnings,
        runtime_s=round(_time.perf_counter() - t0, 2),
        provenance=Provenance(
            hepablate_version=__version__,
            created_utc=_time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime()),
            command=command,
            input_hashes=hashes,
            parameters=params,
        ),
    )
    zone = fmax = None
    if conf is not None:
        zone = outcome.grid.with_array(conf.zone.astype(np.uint8))
        fmax = outcome.grid.with_array(conf.field_max_v_per_cm.astype(np.float32))
    return IrePlanResult(plan, outcome, zone, fmax)
