"""`hepablate simulate CASE --plan PLAN.json --out DIR`: evaluate a plan (IRE or laser)."""

from __future__ import annotations

from pathlib import Path

import typer

from hepablate.cli._common import RichProgress, command_line, echo_result


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        case_dir: Path = typer.Argument(..., help="Case directory (holding case.yaml)."),
        plan_path: Path = typer.Option(..., "--plan", help="Plan JSON (IRE or laser)."),
        out: Path = typer.Option(..., "--out", help="Output directory."),
        tissues_file: Path | None = typer.Option(None, "--tissues", help="Tissue table override."),
        devices_file: Path | None = typer.Option(None, "--devices", help="Device table override."),
        criteria_file: Path | None = typer.Option(
            None, "--criteria", help="Acceptance criteria table override (criteria.yaml shape)."
        ),
        no_report: bool = typer.Option(False, "--no-report", help="Skip report.html/pdf."),
        json_out: bool = typer.Option(False, "--json", help="Print a result summary as JSON."),
    ) -> None:
        """Evaluate a plan exactly as the planner's final confirmation does: the modality's
        engine on the plan's placement and protocol, then every metric, criterion, warning and
        the status recomputed. Writes DIR/plan.json, DIR/zone.nii.gz, the field or temperature
        maps (NIfTI, on the plan's grid in the case's patient frame), DIR/zone_seg.dcm for DICOM
        cases, and DIR/report.html and report.pdf."""
        from hepablate import evaluate, load_case, read_plan, write_outputs
        from hepablate.anatomy.tissues import load_tissue_table
        from hepablate.devices import load_device_table
        from hepablate.evaluation.criteria import load_criteria

        plan = read_plan(plan_path)
        ev = evaluate(
            load_case(case_dir),
            plan,
            tissues=load_tissue_table(tissues_file),
            devices=load_device_table(devices_file),
            criteria=load_criteria(criteria_file),
            progress=RichProgress(),
            command=command_line("simulate"),
            source=plan_path,
        )
        write_outputs(ev, out, report=not no_report)
        echo_result(ev, out, json_out)
