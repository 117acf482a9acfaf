"""Output files every modality writes for an evaluated plan (into an existing directory; the
caller makes the directory atomic: `hepablate.write_outputs`)."""

from __future__ import annotations

from pathlib import Path

from hepablate.case.model import Case
from hepablate.evaluation.evaluation import Evaluation
from hepablate.imaging.images import write_image
from hepablate.plans.model import write_plan

#: Maps written as NIfTI next to the zone (float32, on the evaluation grid), when present.
MAP_FILES = ("field_max_v_per_cm", "temperature_max_c")


def write_plan_and_volumes(out_dir: Path, case: Case, ev: Evaluation, label: str) -> list[Path]:
    """plan.json; zone.nii.gz (uint8) and each map of `MAP_FILES` the evaluation has
    (float32), on the evaluation grid in the case's patient frame; for DICOM cases the zone as
    DICOM SEG on the case's CT (zone_seg.dcm), so it opens in PACS viewers and 3D Slicer."""
    out = Path(out_dir)
    written = [write_plan(ev.plan, out / "plan.json")]
    zone = ev.volume("zone")
    written.append(write_image(zone, out / "zone.nii.gz"))
    for name in MAP_FILES:
        if name in ev.maps:
            written.append(write_image(ev.volume(name), out / f"{name}.nii.gz"))
    if case.source_format == "dicom" and case.dicom_reference is not None and ev.zone.any():
        from hepablate.imaging.dicom_seg import write_zone_seg

        written.append(
            write_zone_seg(zone, case.dicom_reference, out / "zone_seg.dcm", label=label)
        )
    return written
