"""`hepablate phantom`: write a deterministic synthetic case."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from hepablate.cli._common import print_json


class Preset(StrEnum):
    default = "default"
    ire = "ire"
    laser = "laser"
    block = "block"
    torso = "torso"
    real_ct = "real-ct"
    suite = "suite"


def register(app: typer.Typer) -> None:
    @app.command("phantom")
    def phantom(
        out: Path = typer.Option(..., "--out", help="Case directory to write."),
        preset: Preset = typer.Option(
            Preset.default,
            help="Starting point: default, ire "
            "(sample a), laser (sample b), block (homogeneous) or torso (anatomical: ribs, "
            "lungs, heart, Couinaud segments, ...) or real-ct (the real CT of examples/real-ct "
            "with a synthetic tumour) or suite (a case of the anatomical planning suite, "
            "--suite-case).",
        ),
        position: str = typer.Option(
            "dome",
            help="Torso preset: tumour position (dome, posterior, caudate, subcapsular, "
            "exophytic, perihilar, gallbladder, heart, ivc) or segment:I..VIII. Real-ct preset: "
            "portal, under_ribs, subcapsular, central, gallbladder or ivc.",
        ),
        suite_case: str | None = typer.Option(
            None,
            help="Suite preset: the case id in src/hepablate/data/anatomy_suite.yaml, e.g. "
            "torso-ire-posterior-25.",
        ),
        kind: str = typer.Option(
            "hcc", help="Torso preset: hcc, metastasis or cholangiocarcinoma."
        ),
        voxel_mm: str | None = typer.Option(
            None, help="Torso preset: anisotropic voxel size 'x,y,z' in mm, e.g. 0.7,0.7,2.5."
        ),
        tumour_diameter_mm: float | None = typer.Option(None, help="Target tumour diameter."),
        tumour_semi_axes_mm: str | None = typer.Option(
            None, help="Ellipsoidal target: semi-axes 'x,y,z' in mm (overrides diameter)."
        ),
        extra_tumour: list[str] = typer.Option(
            [], help="Another tumour 'ID:x,y,z:diameter_mm' (LPS mm); repeatable."
        ),
        vessel_gap_mm: float | None = typer.Option(
            None, help="Gap from the target surface to the portal vein wall (mm)."
        ),
        duct_gap_mm: float | None = typer.Option(
            None, help="Gap from the target surface to the bile duct wall (mm)."
        ),
        no_vessels: bool = typer.Option(False, help="Leave out vessels and ducts."),
        margin_mm: float | None = typer.Option(None, help="Required margin written to case.yaml."),
        spacing_mm: float | None = typer.Option(None, help="Isotropic voxel spacing (mm)."),
        tissue: str = typer.Option("liver", help="Block preset: the single tissue."),
        size_mm: float = typer.Option(80.0, help="Block preset: edge length (mm)."),
        fmt: str = typer.Option(
            "nifti", "--format", help="nifti, nrrd, mha, masks, slicer_seg, dicom or rtstruct."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
    ) -> None:
        """Write a deterministic synthetic case (liver, tumours, vessels, duct, CT)."""
        from hepablate.case.writer import CASE_FILE_FORMATS, write_case
        from hepablate.core.output import atomic_output_dir
        from hepablate.errors import InputError
        from hepablate.phantoms import builder as b

        if fmt not in CASE_FILE_FORMATS:
            raise InputError(
                f"unknown format '{fmt}'; expected one of {', '.join(CASE_FILE_FORMATS)}",
                field="--format",
            )
        if preset is Preset.torso:
            case, description = _torso(
                position, kind, tumour_diameter_mm, spacing_mm, voxel_mm, margin_mm, out, fmt
            )
            if json_out:
                print_json(
                    {
                        "case_dir": str(out),
                        "case_id": case.case_id,
                        "format": fmt,
                        "structures": sorted(case.structures),
                        "segments": "couinaud.nii.gz",
                    }
                )
            else:
                typer.echo(
                    f"wrote {out}/case.yaml ({fmt}, {len(case.structures)} structures) and "
                    f"{out}/couinaud.nii.gz (segments I to VIII as labels 1 to 8)"
                )
            return
        if preset is Preset.real_ct:
            from hepablate.phantoms.real_ct import REAL_CT_POSITIONS, build_real_ct_case

            if position not in REAL_CT_POSITIONS:
                raise InputError(
                    f"unknown real-ct position '{position}'; expected one of "
                    f"{', '.join(REAL_CT_POSITIONS)}",
                    field="--position",
                )
            rc = build_real_ct_case(
                position,
                tumour_diameter_mm or 20.0,
                margin_mm=margin_mm if margin_mm is not None else 5.0,
            )
            with atomic_output_dir(out) as tmp:
                write_case(rc, tmp, fmt, description=rc.notes[0])  # type: ignore[arg-type]
            typer.echo(f"wrote {out}/case.yaml ({fmt}, {len(rc.structures)} structures)")
            return
        if preset is Preset.suite:
            from hepablate.phantoms.suite import build_suite_case, load_suite

            entries = {c.id: c for c in load_suite()}
            if suite_case not in entries:
                raise InputError(
                    f"expected a case id of the anatomical suite, e.g. {next(iter(entries))}",
                    field="--suite-case",
                )
            entry = entries[suite_case]
            sc = build_suite_case(entry)
            desc = (
                f"anatomical suite case {entry.id}: {entry.diameter_mm:g} mm {entry.kind} at "
                f"{entry.position} ({entry.phantom}, voxels "
                f"{' x '.join(f'{v:g}' for v in entry.voxel_mm)} mm), for {entry.modality}"
            )
            with atomic_output_dir(out) as tmp:
                write_case(sc, tmp, fmt, description=desc)  # type: ignore[arg-type]
            typer.echo(f"wrote {out}/case.yaml ({fmt}, {len(sc.structures)} structures)")
            return
        if preset is Preset.block:
            spacing = (spacing_mm,) * 3 if spacing_mm else (1.0, 1.0, 1.0)
            case = b.build_block(
                b.BlockSpec(
                    tissue=tissue,
                    size_mm=(size_mm,) * 3,
                    spacing_mm=spacing,
                    margin_mm=margin_mm if margin_mm is not None else 5.0,
                )
            )
            description = f"homogeneous block of {tissue}"
        else:
            spec = {
                "default": b.PhantomSpec,
                "ire": b.ire_example_spec,
                "laser": b.laser_example_spec,
            }[preset.value]()
            spec = spec.model_copy(deep=True)
            target = next(t for t in spec.tumours if t.id == spec.target)
            if tumour_diameter_mm is not None:
                if tumour_diameter_mm <= 0:
                    raise InputError("must be positive", field="--tumour-diameter-mm")
                target.diameter_mm, target.semi_axes_mm = tumour_diameter_mm, None
            if tumour_semi_axes_mm:
                try:
                    axes = tuple(float(v) for v in tumour_semi_axes_mm.split(","))
                    assert len(axes) == 3 and min(axes) > 0
                except (ValueError, AssertionError):
                    raise InputError(
                        "expected three positive numbers 'x,y,z'", field="--tumour-semi-axes-mm"
                    ) from None
                target.semi_axes_mm = axes
            for item in extra_tumour:
                try:
                    tid, xyz, d = item.split(":")
                    centre = tuple(float(v) for v in xyz.split(","))
                    assert len(centre) == 3
                    spec.tumours.append(
                        b.TumourSpec(id=tid, centre_lps_mm=centre, diameter_mm=float(d))
                    )
                except (ValueError, AssertionError):
                    raise InputError(
                        f"'{item}' is not 'ID:x,y,z:diameter_mm'", field="--extra-tumour"
                    ) from None
            if no_vessels:
                spec.tubes = []
            if vessel_gap_mm is not None or duct_gap_mm is not None:
                if not any(t.name == "portal_vein" for t in spec.tubes):
                    spec.tubes.append(b.TubeSpec(name="portal_vein", radius_mm=5.0))
                if not any(t.name == "bile_duct" for t in spec.tubes):
                    spec.tubes.append(b.TubeSpec(name="bile_duct", radius_mm=2.0, side=(0, 1, 0)))
                for t in spec.tubes:
                    if t.name == "portal_vein" and vessel_gap_mm is not None:
                        t.gap_mm = vessel_gap_mm
                    if t.name == "bile_duct" and duct_gap_mm is not None:
                        t.gap_mm = duct_gap_mm
            if margin_mm is not None:
                spec.margin_mm = margin_mm
            if spacing_mm is not None:
                spec.spacing_mm = (spacing_mm,) * 3
            case = b.build_phantom(spec)
            description = spec.description
        with atomic_output_dir(out) as tmp:
            write_case(case, tmp, fmt, description=description)  # type: ignore[arg-type]
        if json_out:
            print_json(
                {
                    "case_dir": str(out),
                    "case_id": case.case_id,
                    "format": fmt,
                    "structures": sorted(case.structures),
                }
            )
        else:
            typer.echo(f"wrote {out}/case.yaml ({fmt}, {len(case.structures)} structures)")


def _torso(position, kind, diameter, spacing, voxel, margin, out, fmt):
    """Build and write the torso preset with its Couinaud segment map."""
    from pydantic import ValidationError

    from hepablate.case.writer import write_case
    from hepablate.core.output import atomic_output_dir
    from hepablate.errors import InputError
    from hepablate.imaging.images import write_image
    from hepablate.phantoms import build_torso_anatomy, torso_spec

    sp: float | tuple[float, ...] = spacing if spacing else 2.0
    if voxel:
        try:
            sp = tuple(float(v) for v in voxel.split(","))
            assert len(sp) == 3 and min(sp) > 0
        except (ValueError, AssertionError):
            raise InputError(
                "expected three positive numbers 'x,y,z'", field="--voxel-mm"
            ) from None
    try:
        spec = torso_spec(
            position,
            diameter_mm=diameter if diameter is not None else 25.0,
            spacing_mm=sp,  # type: ignore[arg-type]
            kind=kind,
            margin_mm=margin if margin is not None else 5.0,
        )
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InputError(msg, field="--position/--kind") from None
    anat = build_torso_anatomy(spec)
    with atomic_output_dir(out) as tmp:
        write_case(anat.case, tmp, fmt, description=spec.description)
        write_image(anat.segments, Path(tmp) / "couinaud.nii.gz")
    return anat.case, spec.description
