"""`hepablate simulate CASE --plan PLAN.json --out DIR`: forward-evaluate an IRE placement."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import typer

from hepablate.cli._common import RichProgress, print_json


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        case_dir: Path = typer.Argument(..., help="Case directory (holding case.yaml)."),
        plan_path: Path = typer.Option(..., "--plan", help="Plan JSON with probes and pairs."),
        out: Path = typer.Option(..., "--out", help="Output directory."),
        tissues_file: Path | None = typer.Option(None, "--tissues", help="Tissue table override."),
        devices_file: Path | None = typer.Option(None, "--devices", help="Device table override."),
        json_out: bool = typer.Option(False, "--json", help="Print a result summary as JSON."),
    ) -> None:
        """Evaluate a plan's placement and protocol (IRE or laser) as the planner does.

        IRE: DIR/plan.json (predicted pair currents, zone volume, warnings, provenance),
        DIR/field_max_v_per_cm.nii.gz, DIR/zone.nii.gz and, with heating on,
        DIR/temperature_max_c.nii.gz. Laser: DIR/plan.json, DIR/zone.nii.gz and
        DIR/temperature_max_c.nii.gz. Images are on the planning grid in the case's patient
        frame; DICOM cases also get DIR/zone_seg.dcm for laser plans.
        """
        from hepablate.plan.model import read_plan

        laser = read_plan(plan_path).modality == "laser"
        if laser:
            from hepablate.physics.laser.evaluation import run_laser_simulation as run
        else:
            run = run_simulation
        summary = run(
            case_dir,
            plan_path,
            out,
            tissues_file,
            devices_file,
            RichProgress(),
            command="hepablate simulate",
        )
        if json_out:
            print_json(summary)
            return
        detail = (
            f"target coverage {100 * summary['target_coverage']:.1f} %"
            if laser
            else f"max current {summary['max_current_a']:.1f} A"
        )
        typer.echo(
            f"wrote {out}/plan.json: zone {summary['zone_volume_ml']:.2f} ml, {detail}, "
            f"{len(summary['warnings'])} warning(s)"
        )


def run_simulation(
    case_dir: Path,
    plan_path: Path,
    out: Path,
    tissues_file: Path | None,
    devices_file: Path | None,
    progress=None,
    command: str = "",
) -> dict:
    """Load, validate, simulate and write atomically; returns a JSON-able summary."""
    import numpy as np

    from hepablate import __version__
    from hepablate.anatomy.tissues import load_tissue_table
    from hepablate.case import load_case
    from hepablate.core.output import atomic_output_dir
    from hepablate.core.provenance import file_sha256
    from hepablate.devices import load_device_table
    from hepablate.errors import InputError
    from hepablate.imaging.images import write_image
    from hepablate.physics.ire import IreProblem, validate_ire_plan
    from hepablate.plan.model import (
        IreSimulationSettings,
        Parameter,
        Provenance,
        read_plan,
        write_plan,
    )

    t_start = time.perf_counter()
    plan = read_plan(plan_path)
    src = str(plan_path)
    if plan.modality != "ire":
        raise InputError(
            f"modality is '{plan.modality}'; simulate handles 'ire' plans",
            source=src,
            field="modality",
        )
    if not plan.pairs:
        raise InputError("the plan has no pairs to deliver", source=src, field="pairs")
    tissues = load_tissue_table(tissues_file)
    devices = load_device_table(devices_file)
    case = load_case(case_dir)
    settings = plan.ire_simulation or IreSimulationSettings()
    validate_ire_plan(
        plan.probes,
        plan.pairs,
        grid=case.grid,
        body=case.structures.get("body"),
        devices=devices,
        source=src,
    )
    problem = IreProblem.from_case(
        case, settings=settings, tissues=tissues, devices=devices, probes=plan.probes
    )
    result = problem.simulate(plan.probes, plan.pairs, progress=progress)

    # simulate() reports pairs cycle by cycle; map them back to the plan's order.
    order = [
        i
        for c in sorted({p.cycle for p in plan.pairs})
        for i, p in enumerate(plan.pairs)
        if p.cycle == c
    ]
    new = plan.model_copy(deep=True)
    new.ire_simulation = settings
    for i, r in zip(order, result.pair_results, strict=True):
        pr = new.pairs[i]
        pr.predicted_current_a = round(r.current_a, 3)
        a = next(p for p in plan.probes if p.cycle == pr.cycle and p.id == pr.anode)
        c = next(p for p in plan.probes if p.cycle == pr.cycle and p.id == pr.cathode)
        pr.spacing_mm = round(float(np.linalg.norm(_centre(a) - _centre(c))), 2)
    currents = [abs(r.current_end_of_train_a or r.current_a) for r in result.pair_results]
    new.metrics.ablation_volume_ml = round(result.zone_volume_ml, 3)
    extra = dict(new.metrics.extra)
    extra["max_current_a"] = round(max(currents), 3)
    extra["reversible_zone_ml"] = round(
        float(result.reversible_zone.sum()) * result.grid.voxel_volume_ml, 3
    )
    extra["nonlinear_iterations_max"] = float(
        max(r.nonlinear_iterations for r in result.pair_results)
    )
    if result.temperature_max_c is not None and result.thermal_omega is not None:
        extra["max_temperature_c"] = round(float(result.temperature_max_c.max()), 2)
        thr = float(tissues.damage.arrhenius_omega_threshold.value)
        extra["thermal_damage_ml"] = round(
            float((result.thermal_omega >= thr).sum()) * result.grid.voxel_volume_ml, 3
        )
    new.metrics.extra = extra
    new.warnings = [w for w in new.warnings if w.code not in {x.code for x in result.warnings}]
    new.warnings += result.warnings
    new.runtime_s = round(time.perf_counter() - t_start, 3)
    zone_thr = settings.zone_threshold_v_per_cm
    params = [
        Parameter(name="conductivity_model", value=settings.conductivity_model),
        Parameter(name="grid_spacing_mm", value=settings.grid_spacing_mm, unit="mm"),
        Parameter(
            name="zone_threshold_v_per_cm",
            value=zone_thr
            if zone_thr is not None
            else {n: t.electrical.ire_threshold_v_per_cm.value for n, t in tissues.tissues.items()},
            unit="V/cm",
            source="plan" if zone_thr is not None else "tissue table",
        ),
        Parameter(
            name="max_current_a",
            value=devices.ire.max_current_a.value,
            unit="A",
            source=devices.ire.max_current_a.source,
        ),
    ]
    for name, t in tissues.tissues.items():
        e = t.electrical
        params.append(
            Parameter(
                name=f"sigma_s_per_m[{name}]",
                value=[e.sigma_baseline_s_per_m.value, e.sigma_electroporated_s_per_m.value],
                unit="S/m",
                source=e.sigma_baseline_s_per_m.source,
            )
        )
    hashes = {"plan": file_sha256(plan_path), "case": file_sha256(case_dir)}
    new.provenance = Provenance(
        hepablate_version=__version__,
        created_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command=command,
        input_hashes=hashes,
        parameters=params,
    )
    grid = result.grid
    with atomic_output_dir(out) as tmp:
        write_plan(new, tmp / "plan.json")
        write_image(
            grid.with_array(result.field_max_v_per_cm.astype(np.float32)),
            tmp / "field_max_v_per_cm.nii.gz",
        )
        write_image(grid.with_array(result.zone.astype(np.uint8)), tmp / "zone.nii.gz")
        if result.temperature_max_c is not None:
            write_image(
                grid.with_array(result.temperature_max_c.astype(np.float32)),
                tmp / "temperature_max_c.nii.gz",
            )
    return {
        "out": str(out),
        "zone_volume_ml": result.zone_volume_ml,
        "max_current_a": max(currents),
        "pairs": [
            {
                "cycle": r.cycle,
                "anode": r.anode,
                "cathode": r.cathode,
                "voltage_v": r.voltage_v,
                "current_a": r.current_a,
                "nonlinear_iterations": r.nonlinear_iterations,
                "over_limit": r.over_limit,
            }
            for r in result.pair_results
        ],
        "warnings": [w.model_dump() for w in result.warnings],
        "grid_size_ijk": list(grid.shape_ijk),
        "runtime_s": new.runtime_s,
    }


def _centre(probe):
    import numpy as np

    d = np.asarray(probe.direction_lps, float)
    d /= np.linalg.norm(d)
    return np.asarray(probe.tip_lps_mm, float) - 0.5 * probe.exposure_mm * d
