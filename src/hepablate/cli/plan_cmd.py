"""`hepablate plan CASE --modality ire|laser --out DIR`: make a treatment plan."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hepablate.cli._common import RichProgress, print_json


def _parse_entry(text: str | None, radius_mm: float) -> dict | None:
    from hepablate.errors import InputError

    if text is None:
        return None
    try:
        xyz = [float(v) for v in text.split(",")]
    except ValueError:
        xyz = []
    if len(xyz) != 3:
        raise InputError(f"expected X,Y,Z in LPS mm, got '{text}'", field="--entry")
    return {"centre_lps_mm": tuple(xyz), "radius_mm": radius_mm}


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan(
        case_dir: Path = typer.Argument(..., help="Case directory (holding case.yaml)."),
        modality: str = typer.Option("ire", "--modality", help="ire or laser."),
        out: Path = typer.Option(..., "--out", help="Output directory."),
        min_probes: int | None = typer.Option(
            None, "--min-probes", "--min-fibres", help="At least N probes (IRE) or fibres (laser)."
        ),
        max_probes: int | None = typer.Option(
            None, "--max-probes", "--max-fibres", help="At most N probes (IRE) or fibres (laser)."
        ),
        min_spacing_mm: float | None = typer.Option(
            None, "--min-spacing", help="IRE: minimum probe spacing (mm; default 10)."
        ),
        max_spacing_mm: float | None = typer.Option(
            None, "--max-spacing", help="IRE: maximum probe spacing (mm; default 25)."
        ),
        entry: str | None = typer.Option(
            None, "--entry", help="Skin entry region centre X,Y,Z (LPS mm)."
        ),
        entry_radius_mm: float = typer.Option(
            20.0, "--entry-radius", help="Radius of the entry region (mm)."
        ),
        safety_mm: float | None = typer.Option(
            None,
            "--safety-distance",
            help="Needle path clearance from no-go structures (mm; default 3).",
        ),
        placement_error_mm: float | None = typer.Option(
            None,
            "--placement-error",
            help="RMS placement error for the robustness estimate (mm; default 2).",
        ),
        samples: int | None = typer.Option(
            None, "--mc-samples", help="Monte Carlo samples for coverage_probability."
        ),
        robust: bool = typer.Option(
            False,
            "--robust",
            help="Optimise for robustness: cover the target grown by the placement error.",
        ),
        allow_angled: bool = typer.Option(
            False,
            "--allow-angled",
            help="IRE: where a parallel needle path is blocked (no-go structure or outside the "
            "--entry window), let that probe deviate up to 15 deg from the common direction "
            "(converging/diverging), paths still clear and spacing along the exposure within "
            "the limits. Parallel stays the default.",
        ),
        grid_mm: float = typer.Option(1.0, "--grid", help="Planning grid spacing (mm)."),
        tissues_file: Path | None = typer.Option(None, "--tissues", help="Tissue table override."),
        devices_file: Path | None = typer.Option(None, "--devices", help="Device table override."),
        no_report: bool = typer.Option(False, "--no-report", help="Skip report.html/pdf."),
        json_out: bool = typer.Option(False, "--json", help="Print a plan summary as JSON."),
    ) -> None:
        """Plan probe/fibre placement and protocol for the case's target; write plan.json,
        zone.nii.gz, field_max_v_per_cm.nii.gz (IRE), zone_seg.dcm (DICOM cases), report.html
        and report.pdf into OUT."""
        from hepablate.anatomy.tissues import load_tissue_table
        from hepablate.case import load_case
        from hepablate.devices.catalog import load_device_table
        from hepablate.errors import InputError, input_error_from_validation

        command = "hepablate " + " ".join(sys.argv[1:]) if sys.argv else "hepablate plan"
        if modality not in ("ire", "laser"):
            raise InputError(f"expected 'ire' or 'laser', got '{modality}'", field="--modality")
        case = load_case(case_dir)
        tissues = load_tissue_table(tissues_file)
        devices = load_device_table(devices_file)
        if modality == "laser":
            try:
                from hepablate.optimize.laser import plan_laser_cli
            except ImportError:
                raise InputError(
                    "laser planning is not available in this installation", field="--modality"
                ) from None
            from pydantic import ValidationError

            from hepablate.optimize.laser import LaserPlanOptions

            try:
                laser_opts = LaserPlanOptions(
                    min_fibres=min_probes,
                    max_fibres=max_probes,
                    min_spacing_mm=min_spacing_mm,
                    max_spacing_mm=max_spacing_mm,
                    safety_distance_mm=safety_mm,
                    placement_error_mm=placement_error_mm,
                    monte_carlo_samples=samples,
                    grid_spacing_mm=grid_mm,
                )
            except ValidationError as exc:
                raise input_error_from_validation(exc, default_field="options") from None
            p = plan_laser_cli(
                case,
                out=out,
                options=laser_opts,
                progress=RichProgress(),
                tissues=tissues,
                devices=devices,
                command=command,
                report=not no_report,
            )
            _echo(p, out, json_out)
            return
        from pydantic import ValidationError

        from hepablate.core.output import atomic_output_dir
        from hepablate.optimize.ire import IrePlanOptions, plan_ire, search_threshold_v_per_cm
        from hepablate.plan.model import IreSimulationSettings
        from hepablate.report.ire import write_ire_outputs

        try:
            opts = IrePlanOptions(
                min_probes=min_probes,
                max_probes=max_probes,
                min_spacing_mm=min_spacing_mm,
                max_spacing_mm=max_spacing_mm,
                allow_angled=allow_angled,
                entry=_parse_entry(entry, entry_radius_mm),
                safety_distance_mm=safety_mm,
                placement_error_mm=placement_error_mm,
                monte_carlo_samples=samples,
                robust=robust,
                grid_spacing_mm=grid_mm,
            )
        except ValidationError as exc:
            raise input_error_from_validation(exc, default_field="options") from None
        res = plan_ire(
            case, opts, tissues=tissues, devices=devices, progress=RichProgress(), command=command
        )
        thr = search_threshold_v_per_cm(tissues, IreSimulationSettings())
        o = res.outcome
        with atomic_output_dir(out) as tmp:
            write_ire_outputs(
                tmp,
                case,
                res.plan,
                o.grid,
                o.structures,
                o.region,
                None if o.confirmed is None else o.confirmed.zone,
                None if o.confirmed is None else o.confirmed.field_max_v_per_cm,
                thr,
                int(devices.ire.pulses_per_group.value),
                report=not no_report,
            )
        _echo(res.plan, out, json_out)


def _echo(p, out: Path, json_out: bool) -> None:
    m = p.metrics
    if json_out:
        print_json(
            {
                "status": p.status,
                "status_reason": p.status_reason,
                "out": str(out),
                "metrics": m.model_dump(),
                "runtime_s": p.runtime_s,
                "warnings": [w.model_dump() for w in p.warnings],
            }
        )
        return
    cov = "-" if m.target_coverage is None else f"{100 * m.target_coverage:.1f} %"
    typer.echo(
        f"{p.status}: target coverage {cov}, min margin {m.min_margin_mm} mm, "
        + (
            f"{len(p.probes)} probe positions, {len(p.pairs)} steps"
            if p.modality == "ire"
            else f"{len(p.fibres)} fibres, {len({i.step for i in p.illuminations})} steps, "
            f"{len(p.illuminations)} illuminations"
        )
        + f"; wrote {out}/plan.json"
        + (f" ({p.status_reason})" if p.status_reason else "")
    )
