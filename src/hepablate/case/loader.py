"""Load a case directory (`case.yaml` + imaging) into a validated `Case`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hepablate.anatomy.containment import (
    MIN_TUMOUR_FRACTION_IN_LIVER,
    MIN_TUMOUR_SURFACE_ON_LIVER,
    normalise_containment,
    tumour_liver_relation,
)
from hepablate.case.model import Case
from hepablate.case.spec import CaseSpec, StructureSpec, read_case_spec
from hepablate.core.volume import Volume, resample_to
from hepablate.errors import InputError
from hepablate.imaging.images import read_image
from hepablate.imaging.segments import Segment


def _detect_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    name = path.name.lower()
    if name.endswith(".seg.nrrd"):
        return "slicer_seg"
    if name.endswith(".dcm") or path.is_dir():
        try:
            import pydicom

            ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        except Exception:
            raise InputError("cannot read as DICOM", source=str(path)) from None
        modality = str(getattr(ds, "Modality", ""))
        if modality == "SEG":
            return "dicom_seg"
        if modality == "RTSTRUCT":
            return "rtstruct"
        raise InputError(
            f"DICOM modality '{modality}' is not a segmentation (expected SEG or RTSTRUCT)",
            source=str(path),
        )
    return "labelmap"


def _resolve(root: Path, rel: str, what: str) -> Path:
    p = (root / rel).resolve()
    if not p.exists():
        raise InputError(f"{what} file not found", source=str(p))
    return p


def _embed_on_lattice(mask: Volume, grid: Volume) -> np.ndarray | None:
    """Place `mask` on `grid` without interpolation when its voxels are a subset of the grid's
    voxels (same spacing and direction, origin offset by whole voxels), as in a DICOM SEG that
    leaves out empty slices. Returns None when the grids do not share a lattice."""
    if not (
        np.allclose(mask.spacing_mm, grid.spacing_mm, atol=1e-3)
        and np.allclose(mask.direction, grid.direction, atol=1e-4)
    ):
        return None
    offset = grid.lps_to_index(np.asarray(mask.origin_lps_mm))
    start = np.round(offset).astype(int)
    if not np.allclose(offset, start, atol=1e-3):
        return None
    out = np.zeros(grid.array.shape, dtype=bool)
    src = mask.array != 0
    lo = np.maximum(start[::-1], 0)
    hi = np.minimum(start[::-1] + np.array(src.shape), np.array(out.shape))
    if np.any(hi <= lo):
        return out if not src.any() else None
    src_lo = lo - start[::-1]
    src_hi = src_lo + (hi - lo)
    inner = src[tuple(slice(a, b) for a, b in zip(src_lo, src_hi, strict=True))]
    if inner.sum() != src.sum():
        return None  # part of the mask would fall outside the grid: not a pure embedding
    out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = inner
    return out


def _fit_to_grid(mask: Volume, grid: Volume, source: Path, resample: bool) -> np.ndarray:
    if mask.same_geometry(grid):
        return mask.array != 0
    embedded = _embed_on_lattice(mask, grid)
    if embedded is not None:
        return embedded
    if not resample:
        raise InputError(
            "geometry (size, spacing, origin or direction) differs from the reference grid "
            f"({mask.shape_ijk} @ {mask.spacing_mm} mm vs {grid.shape_ijk} @ {grid.spacing_mm} mm);"
            " set 'resample_masks: true' in case.yaml to resample explicitly",
            source=str(source),
        )
    return resample_to(mask.with_array(mask.array != 0), grid, interpolation="nearest").array


def _segments_from_file(fmt: str, path: Path, reference: Volume | None) -> list[Segment]:
    if fmt == "slicer_seg":
        from hepablate.imaging.slicer_seg import read_slicer_seg

        return read_slicer_seg(path)
    if fmt == "dicom_seg":
        from hepablate.imaging.dicom_seg import read_dicom_seg

        return read_dicom_seg(path)
    if fmt == "rtstruct":
        if reference is None:
            raise InputError(
                "an RTSTRUCT needs the CT it was drawn on; give 'ct' in case.yaml", source=str(path)
            )
        from hepablate.imaging.rtstruct import read_rtstruct

        return read_rtstruct(path, reference)
    raise AssertionError(fmt)


def _find_segment(segments: list[Segment], s: StructureSpec, source: Path) -> Segment:
    for seg in segments:
        if (s.segment is not None and seg.name == s.segment) or (
            s.label is not None and seg.number == s.label
        ):
            return seg
    want = f"segment '{s.segment}'" if s.segment is not None else f"segment number {s.label}"
    have = ", ".join(f"{g.number}:{g.name}" for g in segments) or "none"
    raise InputError(f"{want} for '{s.key}' not found (file has {have})", source=str(source))


def load_case(case_dir: str | Path) -> Case:
    """Read and validate a case directory; raise `InputError` naming the file on any problem."""
    root = Path(case_dir)
    if root.is_file() and root.name.endswith((".yaml", ".yml")):
        spec_path, root = root, root.parent
    else:
        if not root.exists():
            raise InputError("case directory not found", source=str(root))
        spec_path = root / "case.yaml"
    spec: CaseSpec = read_case_spec(spec_path)
    root = root.resolve()
    sources: dict[str, Path] = {"case.yaml": spec_path.resolve()}

    ct: Volume | None = None
    source_format = "image"
    if spec.ct:
        ct_path = _resolve(root, spec.ct, "CT")
        ct = read_image(ct_path)
        sources["ct"] = ct_path
        if ct_path.is_dir():
            source_format = "dicom"
    grid: Volume | None = ct

    structures: dict[str, np.ndarray] = {}
    if spec.segmentation is not None:
        seg_path = _resolve(root, spec.segmentation.file, "segmentation")
        sources["segmentation"] = seg_path
        fmt = _detect_format(seg_path, spec.segmentation.format)
        from_seg = [s for s in spec.structures if s.file is None]
        if fmt == "labelmap":
            lm = read_image(seg_path)
            if not np.issubdtype(lm.array.dtype, np.integer):
                if not np.all(np.isfinite(lm.array)) or np.any(lm.array != np.round(lm.array)):
                    raise InputError("label map must hold integer labels", source=str(seg_path))
                lm = lm.with_array(lm.array.astype(np.int32))
            declared = {s.label for s in from_seg}
            if any(s.label is None for s in from_seg):
                bad = next(s.key for s in from_seg if s.label is None)
                raise InputError(
                    f"structure '{bad}' must give a 'label' value for a label map",
                    source=str(spec_path),
                )
            present = {int(v) for v in np.unique(lm.array)} - {0}
            undeclared = sorted(present - declared)
            if undeclared:
                raise InputError(
                    f"label values {undeclared} are not declared in case.yaml 'structures'",
                    source=str(seg_path),
                )
            if grid is None:
                grid = lm.with_array(np.zeros(lm.array.shape, dtype=np.int16))
            for s in from_seg:
                structures[s.key] = _fit_to_grid(
                    lm.with_array(lm.array == s.label), grid, seg_path, spec.resample_masks
                )
        else:
            segments = _segments_from_file(fmt, seg_path, grid)
            for s in from_seg:
                seg = _find_segment(segments, s, seg_path)
                if grid is None:
                    grid = seg.mask.with_array(np.zeros(seg.mask.array.shape, dtype=np.int16))
                structures[s.key] = _fit_to_grid(seg.mask, grid, seg_path, spec.resample_masks)
        if fmt in ("dicom_seg", "rtstruct"):
            source_format = "dicom" if source_format == "dicom" else source_format

    for s in spec.structures:
        if s.file is None:
            continue
        p = _resolve(root, s.file, f"mask of '{s.key}'")
        sources[s.key] = p
        m = read_image(p)
        if grid is None:
            grid = m.with_array(np.zeros(m.array.shape, dtype=np.int16))
        structures[s.key] = _fit_to_grid(m, grid, p, spec.resample_masks)

    assert grid is not None  # the spec requires at least a liver
    normalise_containment(structures)
    case = Case(
        case_id=spec.case_id,
        grid=grid,
        structures={s.key: structures[s.key] for s in spec.structures},
        target_id=spec.target,
        margin_mm=spec.margin_mm,
        ct=ct,
        root=root,
        spec=spec,
        source_files=sources,
        source_format=source_format,
        dicom_reference=sources.get("ct") if source_format == "dicom" else None,
    )
    _validate(case, spec_path)
    return case


def _validate(case: Case, spec_path: Path) -> None:
    target = case.target_mask
    where = str(
        case.source_files.get(case.target_key, case.source_files.get("segmentation", spec_path))
    )
    if not target.any():
        raise InputError(f"target tumour '{case.target_id}' is empty", source=where)
    liver = case.structures["liver"]
    if not liver.any():
        raise InputError("liver mask is empty", source=str(case.source_files.get("liver", where)))
    for key in case.tumour_keys:
        t = case.structures[key]
        if not t.any():
            continue
        inside, contact, verdict = tumour_liver_relation(t, liver, case.grid.spacing_mm)
        tid = key.split(":", 1)[1]
        if verdict == "outside":
            raise InputError(
                f"tumour '{tid}' lies outside the liver "
                f"({100 * inside:.0f} % of its voxels inside and {100 * contact:.0f} % of its "
                f"surface on the liver; at least {100 * MIN_TUMOUR_FRACTION_IN_LIVER:.0f} % "
                f"inside, or {100 * MIN_TUMOUR_SURFACE_ON_LIVER:.0f} % of the surface on the "
                "liver for a subcapsular or exophytic tumour, expected)",
                source=str(case.source_files.get(key, where)),
            )
        if verdict == "subcapsular":
            case.notes.append(
                f"tumour '{tid}' is subcapsular or exophytic: {100 * inside:.0f} % of its voxels "
                f"inside the liver envelope, {100 * contact:.0f} % of its surface on the liver; "
                "accepted as a liver tumour"
            )
