"""`hepablate case ...`: inspect and validate case directories."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from hepablate.cli._common import out_console, print_json


def register(app: typer.Typer) -> None:
    case_app = typer.Typer(help="Inspect and validate case directories.", no_args_is_help=True)

    @case_app.command("check")
    def check(
        case_dir: Path = typer.Argument(..., help="Case directory (holding case.yaml)."),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Load CASE_DIR, validate it and print a summary of its structures and target."""
        from hepablate.case import load_case, summarise_case

        s = summarise_case(load_case(case_dir))
        if json_out:
            print_json(s.to_dict())
            return
        out_console.print(
            f"[bold]case[/bold] {s.case_id}: grid {s.grid_size_ijk} voxels at "
            f"{s.spacing_mm} mm, CT {'yes' if s.has_ct else 'no'}"
        )
        t = Table("structure", "volume (ml)", "bbox min (LPS mm)", "bbox max (LPS mm)")
        for st in s.structures:
            t.add_row(
                st.key, f"{st.volume_ml:.2f}", str(st.bbox_min_lps_mm), str(st.bbox_max_lps_mm)
            )
        out_console.print(t)
        out_console.print(
            f"target {s.target_id}: centre {s.target_centre_lps_mm} mm, diameter "
            f"{s.target_equivalent_diameter_mm:.1f} mm (equivalent sphere), longest "
            f"{s.target_longest_diameter_mm:.1f} mm; required margin {s.margin_mm:g} mm"
        )
        vessel = (
            f"{s.nearest_vessel_gap_mm:.1f} mm ({s.nearest_vessel})"
            if s.nearest_vessel
            else "no vessel segmented"
        )
        duct = (
            f"{s.nearest_bile_duct_gap_mm:.1f} mm"
            if s.nearest_bile_duct_gap_mm is not None
            else "no bile duct segmented"
        )
        out_console.print(f"nearest vessel: {vessel}; nearest bile duct: {duct}")
        for note in s.notes:
            out_console.print(f"note: {note}")

    app.add_typer(case_app, name="case")
