"""Write a `Case` as a case directory (`case.yaml` + imaging) in any supported format."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from hepablate.anatomy.vocabulary import DEFAULT_LABELS, TUMOUR_LABEL_BASE, base_name
from hepablate.case.model import Case
from hepablate.case.spec import CASE_FORMAT_VERSION
from hepablate.errors import InputError
from hepablate.imaging.images import write_image

CaseFileFormat = Literal["nifti", "nrrd", "mha", "masks", "slicer_seg", "dicom", "rtstruct"]
CASE_FILE_FORMATS: tuple[str, ...] = CaseFileFormat.__args__  # type: ignore[attr-defined]


def label_values(case: Case) -> dict[str, int]:
    """Label value of each structure in label maps hepablate writes."""
    out: dict[str, int] = {}
    n_tumour = 0
    for key in case.structures:
        if base_name(key) == "tumour":
            out[key] = TUMOUR_LABEL_BASE + n_tumour
            n_tumour += 1
        else:
            out[key] = DEFAULT_LABELS[key]
    return out


def labelmap_array(case: Case) -> np.ndarray:
    """One label map; later structures in painting order win: body, liver, others, tumours,
    then vessels and ducts (they are thin and must not be swallowed)."""
    labels = label_values(case)

    def order(key: str) -> int:
        name = base_name(key)
        if name == "body":
            return 0
        if name == "liver":
            return 1
        if name == "tumour":
            return 3
        if name in ("portal_vein", "hepatic_vein", "hepatic_artery", "ivc", "aorta", "bile_duct"):
            return 4
        return 2

    arr = np.zeros(case.grid.array.shape, dtype=np.uint16)
    for key in sorted(case.structures, key=order):
        arr[case.structures[key]] = labels[key]
    return arr


def _structure_entry(key: str, **where: object) -> dict:
    name = base_name(key)
    entry: dict[str, object] = {"name": name}
    if name == "tumour":
        entry["id"] = key.split(":", 1)[1]
    entry.update(where)
    return entry


def write_case(
    case: Case,
    out_dir: str | Path,
    fmt: CaseFileFormat = "nifti",
    *,
    description: str = "",
) -> Path:
    """Write `case` to `out_dir` (created) and return the path of its `case.yaml`.

    Label maps cannot hold overlapping structures; the body and liver overlap with the
    structures inside them, so label-map formats paint in a fixed order and the masks of
    `body` and `liver` are exported as the union of what lies inside them (see
    docs/case-format.md). Per-structure formats (masks, slicer_seg, dicom, rtstruct) keep every
    mask as it is.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, object] = {
        "format_version": CASE_FORMAT_VERSION,
        "case_id": case.case_id,
        "description": description,
    }
    structures: list[dict] = []
    masks = {k: v for k, v in case.structures.items()}
    if fmt in ("nifti", "nrrd", "mha"):
        suffix = {"nifti": ".nii.gz", "nrrd": ".nrrd", "mha": ".mha"}[fmt]
        if case.ct is not None:
            write_image(case.ct, out / f"ct{suffix}")
            doc["ct"] = f"ct{suffix}"
        write_image(case.grid.with_array(labelmap_array(case)), out / f"labels{suffix}")
        doc["segmentation"] = {"file": f"labels{suffix}"}
        labels = label_values(case)
        structures = [_structure_entry(k, label=labels[k]) for k in case.structures]
        # Liver voxels covered by tumours and vessels inside it are still liver tissue for
        # planning; the label map keeps them under the more specific label.
    elif fmt == "masks":
        if case.ct is not None:
            write_image(case.ct, out / "ct.nii.gz")
            doc["ct"] = "ct.nii.gz"
        for k, m in masks.items():
            rel = f"masks/{k.replace(':', '_')}.nii.gz"
            write_image(case.grid.with_array(m.astype(np.uint8)), out / rel)
            structures.append(_structure_entry(k, file=rel))
    elif fmt == "slicer_seg":
        from hepablate.imaging.slicer_seg import write_slicer_seg

        if case.ct is not None:
            write_image(case.ct, out / "ct.nrrd")
            doc["ct"] = "ct.nrrd"
        write_slicer_seg(masks, case.grid, out / "segmentation.seg.nrrd")
        doc["segmentation"] = {"file": "segmentation.seg.nrrd"}
        structures = [_structure_entry(k, segment=k) for k in masks]
    elif fmt in ("dicom", "rtstruct"):
        from hepablate.imaging.dicom_ct import write_dicom_ct_series

        if case.ct is None:
            raise InputError(
                f"'{fmt}' output needs a CT volume and this case has none (the block preset "
                "writes no CT); use nifti, nrrd, mha, masks or slicer_seg",
                field="--format",
            )
        write_dicom_ct_series(case.ct, out / "ct", patient_id=case.case_id)
        doc["ct"] = "ct"
        if fmt == "dicom":
            from hepablate.imaging.dicom_seg import write_dicom_seg

            write_dicom_seg(masks, out / "ct", out / "seg.dcm")
            doc["segmentation"] = {"file": "seg.dcm"}
        else:
            from hepablate.imaging.rtstruct import write_rtstruct

            write_rtstruct(masks, out / "ct", out / "rtstruct.dcm")
            doc["segmentation"] = {"file": "rtstruct.dcm"}
        structures = [_structure_entry(k, segment=k) for k in masks]
    else:
        raise ValueError(f"unknown case format '{fmt}'")
    doc["structures"] = structures
    doc["target"] = case.target_id
    doc["margin_mm"] = float(case.margin_mm)
    path = out / "case.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
