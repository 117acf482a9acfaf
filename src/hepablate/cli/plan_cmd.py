"""`hepablate plan CASE --modality ire|laser --out DIR`: make a treatment plan."""

from __future__ import annotations

from pathlib import Path

import typer

from hepablate.cli._common import RichProgress, command_line, echo_result


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
            help="IRE: from the start, where a parallel needle path is blocked (no-go structure "
            "or outside the --entry window), let that probe deviate up to 15 deg from the "
            "common direction (converging/diverging), paths still clear and spacing along the "
            "exposure within the limits. Without it, angled probes are tried once parallel "
            "paths are found blocked; parallel layouts come first.",
        ),
        patient_position: str | None = typer.Option(
            None,
            "--patient-position",
            help="supine (default: anterior and lateral entries), prone (posterior and "
            "lateral) or left_lateral_decubitus (right lateral and posterolateral).",
        ),
        confident_zone: bool = typer.Option(
            False,
            "--confident-zone",
            help="Plan so that the confident zone covers the target: laser, the energy raised "
            "until the zone ablated at every end of the mu_a, mu_s' and perfusion ranges covers "
            "it; IRE, planned again at the 90th-percentile lethal thresholds if the nominal "
            "plan's confident zone falls short. The plan states what it costs.",
        ),
        grid_mm: float = typer.Option(1.0, "--grid", help="Planning grid spacing (mm)."),
        tissues_file: Path | None = typer.Option(None, "--tissues", help="Tissue table override."),
        devices_file: Path | None = typer.Option(None, "--devices", help="Device table override."),
        no_report: bool = typer.Option(False, "--no-report", help="Skip report.html/pdf."),
        json_out: bool = typer.Option(False, "--json", help="Print a plan summary as JSON."),
    ) -> None:
        """Plan probe/fibre placement and protocol for the case's target; write plan.json,
        zone.nii.gz, field_max_v_per_cm.nii.gz (IRE) or temperature_max_c.nii.gz, zone_seg.dcm
        (DICOM cases), report.html and report.pdf into OUT."""
        from hepablate import load_case, write_outputs
        from hepablate import plan as make_plan
        from hepablate.anatomy.tissues import load_tissue_table
        from hepablate.devices.catalog import load_device_table
        from hepablate.modalities import get_modality
        from hepablate.placement.approach import POSITIONS

        if patient_position is not None and patient_position not in POSITIONS:
            from hepablate.errors import InputError

            raise InputError(
                f"unknown patient position '{patient_position}' (one of {', '.join(POSITIONS)})",
                field="--patient-position",
            )
        options = get_modality(modality).options_model.model_fields
        given = {
            "min_probes": min_probes,
            "max_probes": max_probes,
            "min_fibres": min_probes,
            "max_fibres": max_probes,
            "min_spacing_mm": min_spacing_mm,
            "max_spacing_mm": max_spacing_mm,
            "allow_angled": allow_angled or None,
            "entry": _parse_entry(entry, entry_radius_mm),
            "safety_distance_mm": safety_mm,
            "placement_error_mm": placement_error_mm,
            "monte_carlo_samples": samples,
            "robust": robust or None,
            "grid_spacing_mm": grid_mm,
            "patient_position": patient_position,
            "plan_to_confident_zone": confident_zone or None,
        }
        unsupported = [k for k, v in given.items() if v is not None and k not in options]
        flags = {
            "allow_angled": "--allow-angled",
            "entry": "--entry",
            "robust": "--robust",
            "patient_position": "--patient-position",
            "plan_to_confident_zone": "--confident-zone",
        }
        bad = [flags[k] for k in unsupported if k in flags]
        if bad:
            from hepablate.errors import InputError

            raise InputError(f"not an option of {modality} planning", field=bad[0])
        ev = make_plan(
            load_case(case_dir),
            modality,
            tissues=load_tissue_table(tissues_file),
            devices=load_device_table(devices_file),
            progress=RichProgress(),
            command=command_line("plan"),
            **{k: v for k, v in given.items() if v is not None and k in options},
        )
        write_outputs(ev, out, report=not no_report)
        echo_result(ev, out, json_out)
