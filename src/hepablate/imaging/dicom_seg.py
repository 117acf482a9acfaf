"""DICOM Segmentation (SEG) objects, read and written with highdicom.

Reading builds each segment as a boolean `Volume` on the SEG's own frame geometry (plane
positions, orientation and pixel spacing of its frames), so a SEG that covers fewer slices than
its CT comes back on that smaller grid; the case loader checks or resamples it against the CT.
BINARY, FRACTIONAL (thresholded at half the maximum fractional value) and LABELMAP SEGs are
read. Written SEGs are BINARY, reference the CT series they were drawn on, and keep every frame
(``omit_empty_frames=False``) so that every segment, even an empty one, spans the whole CT and
reads back onto the CT grid.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from hepablate import __version__
from hepablate.anatomy.vocabulary import base_name
from hepablate.core.volume import Volume, resample_to
from hepablate.errors import InputError
from hepablate.imaging.dicom_ct import quiet_pydicom, read_ct_headers
from hepablate.imaging.images import read_image
from hepablate.imaging.segments import Segment

SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"
LABEL_SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.7"

# Segmented property category and type codes (DICOM PS3.16 CID 7150/7151, SNOMED CT).
_ANATOMY = Code("91723000", "SCT", "Anatomical Structure")
_ALTERED = Code("49755003", "SCT", "Morphologically Abnormal Structure")
#: structure name -> (category, type).
PROPERTY_CODES: dict[str, tuple[Code, Code]] = {
    "liver": (_ANATOMY, Code("10200004", "SCT", "Liver")),
    "tumour": (_ALTERED, Code("108369006", "SCT", "Neoplasm")),
    "portal_vein": (_ANATOMY, Code("32764006", "SCT", "Portal vein")),
    "hepatic_vein": (_ANATOMY, Code("8993003", "SCT", "Hepatic vein")),
    "hepatic_artery": (_ANATOMY, Code("76015000", "SCT", "Hepatic artery")),
    "ivc": (_ANATOMY, Code("64131007", "SCT", "Inferior vena cava")),
    "aorta": (_ANATOMY, Code("15825003", "SCT", "Aorta")),
    "bile_duct": (_ANATOMY, Code("28273000", "SCT", "Bile duct")),
    "gallbladder": (_ANATOMY, Code("28231008", "SCT", "Gallbladder")),
    "stomach": (_ANATOMY, Code("69695003", "SCT", "Stomach")),
    "bowel": (_ANATOMY, Code("113276009", "SCT", "Intestine")),
    "kidney": (_ANATOMY, Code("64033007", "SCT", "Kidney")),
    "diaphragm": (_ANATOMY, Code("5798000", "SCT", "Diaphragm")),
    "bone": (_ANATOMY, Code("272673000", "SCT", "Bone")),
    "spleen": (_ANATOMY, Code("78961009", "SCT", "Spleen")),
    "lung": (_ANATOMY, Code("39607008", "SCT", "Lung")),
    "body": (_ANATOMY, Code("38266002", "SCT", "Entire body")),
}
#: Anything else (ablation zones, margins) is coded as predicted coagulation necrosis.
ABLATION_ZONE_CODES: tuple[Code, Code] = (_ALTERED, Code("6574001", "SCT", "Necrosis"))


#: Algorithm family of hepablate's computed segments. CID 7162 (an extensible context group)
#: has no biophysical-model family, so a local code (scheme designator "99" + name, as PS3.16
#: allows for private schemes) says what computed them.
ALGORITHM_FAMILY = Code("PHYSMODEL", "99HEPABLATE", "Biophysical ablation model")


def coding_scheme_identification() -> pydicom.Sequence:
    """Coding Scheme Identification Sequence (0008,0110) declaring the private scheme
    99HEPABLATE used by `ALGORITHM_FAMILY` (PS3.3 C.12.1.1.5: a private scheme shall be
    identified)."""
    item = pydicom.Dataset()
    item.CodingSchemeDesignator = ALGORITHM_FAMILY.scheme_designator
    item.CodingSchemeName = "hepablate local codes"
    item.CodingSchemeResponsibleOrganization = "hepablate project"
    item.CodingSchemeVersion = "1"
    return pydicom.Sequence([item])


def property_codes(name: str) -> tuple[Code, Code]:
    """(SegmentedPropertyCategory, SegmentedPropertyType) for a structure key or label."""
    return PROPERTY_CODES.get(base_name(name), ABLATION_ZONE_CODES)


def _fail(path: Path, message: str) -> InputError:
    return InputError(message, source=str(path))


# ---- reading ------------------------------------------------------------------------------


def _frame_geometry(
    ds: pydicom.Dataset, path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray, object, float]:
    """Per-frame plane positions (n, 3) (LPS mm), the common ImageOrientationPatient (6,) and
    PixelSpacing (row, column) (mm), SpacingBetweenSlices as stored (or None) and SliceThickness
    (mm, 0 when absent)."""
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    n = int(ds.get("NumberOfFrames", 1))
    if per_frame is None or len(per_frame) != n:
        raise _fail(path, "SEG lacks a per-frame functional group for every frame")

    def item(group_name: str, frame: pydicom.Dataset | None):
        for fg in (frame, shared):
            if fg is not None and group_name in fg:
                return fg[group_name].value[0]
        raise _fail(path, f"SEG frames lack {group_name}")

    positions = np.zeros((n, 3))
    orientations = np.zeros((n, 6))
    spacings = np.zeros((n, 2))
    for f, fg in enumerate(per_frame):
        try:
            positions[f] = [
                float(v) for v in item("PlanePositionSequence", fg).ImagePositionPatient
            ]
            orientations[f] = [
                float(v) for v in item("PlaneOrientationSequence", fg).ImageOrientationPatient
            ]
            spacings[f] = [float(v) for v in item("PixelMeasuresSequence", fg).PixelSpacing]
        except (AttributeError, ValueError, TypeError):
            raise _fail(
                path, f"SEG frame {f + 1} has no valid plane position/orientation/spacing"
            ) from None
    measures = item("PixelMeasuresSequence", per_frame[0])
    between = measures.get("SpacingBetweenSlices")
    try:
        thickness = float(measures.get("SliceThickness", 0) or 0)
    except (TypeError, ValueError):
        thickness = 0.0
    if not (np.isfinite(thickness) and thickness > 0):
        thickness = 0.0
    if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(orientations))):
        raise _fail(path, "SEG plane positions/orientations must be finite")
    if not np.all(np.isfinite(spacings)) or np.any(spacings <= 0):
        raise _fail(
            path, f"SEG pixel spacing must be finite and positive, got {spacings[0].tolist()}"
        )
    if np.ptp(orientations, axis=0).max() > 1e-4 or np.ptp(spacings, axis=0).max() > 1e-4:
        raise _fail(
            path, "SEG frames do not lie on one regular grid (orientation or spacing varies)"
        )
    return positions, orientations[0], spacings[0], between, thickness


def _grid_from_frames(
    positions: np.ndarray,
    orientation: np.ndarray,
    pixel_spacing: np.ndarray,
    between: object,
    thickness: float,
    shape_rc: tuple[int, int],
    path: Path,
) -> tuple[Volume, np.ndarray]:
    """The regular grid holding every frame, and each frame's slice index on it."""
    row, col = orientation[:3], orientation[3:]
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(col) - 1) > 1e-3
        or abs(row @ col) > 1e-3
    ):
        raise _fail(path, "SEG ImageOrientationPatient is not two orthonormal vectors")
    normal = np.cross(row, col)
    along = positions @ normal
    in_plane = positions - along[:, None] * normal[None, :]
    if np.ptp(in_plane, axis=0).max() > 1e-3 * max(1.0, float(pixel_spacing.min())):
        raise _fail(path, "SEG frames do not lie on one regular grid (in-plane origins differ)")
    levels = np.unique(np.round(along, 4))
    stated = None
    if between is not None and str(between).strip() != "":
        stated = float(str(between))
        if not np.isfinite(stated) or stated <= 0:
            raise _fail(
                path, f"SEG SpacingBetweenSlices must be finite and positive, got {between}"
            )
    # Frames may skip empty slices, so the stated spacing comes first; a file whose stated
    # spacing contradicts its positions falls back to the smallest gap between positions.
    candidates = [c for c in (stated, *([np.diff(levels).min()] if levels.size > 1 else [])) if c]
    if not candidates:
        candidates = [thickness if thickness else float(pixel_spacing.min())]  # one slice
    for step in candidates:
        rel = (along - levels[0]) / float(step)
        k = np.round(rel).astype(int)
        if np.abs(rel - k).max() <= 1e-3:
            break
    else:
        raise _fail(
            path,
            "SEG frames do not lie on one regular grid (slice positions are not evenly spaced)",
        )
    step = float(step)
    origin = positions[int(np.argmin(along))]
    direction = np.column_stack([row, col, normal])
    spacing = (float(pixel_spacing[1]), float(pixel_spacing[0]), step)
    nk = int(k.max()) + 1
    grid = Volume(np.zeros((nk, *shape_rc), dtype=bool), spacing, tuple(origin), direction)
    return grid, k


def read_dicom_seg(path: Path) -> list[Segment]:
    """Read a DICOM SEG into one boolean `Segment` per SegmentSequence item (LPS, on the SEG's
    frame grid); `number` is SegmentNumber and `name` SegmentLabel."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found")
    with quiet_pydicom():
        return _read_dicom_seg(path)


def _read_dicom_seg(path: Path) -> list[Segment]:
    try:
        ds = pydicom.dcmread(path)
    except Exception:
        raise _fail(path, "cannot read as DICOM (corrupt or not a DICOM file)") from None
    sop = str(ds.get("SOPClassUID", ""))
    if str(ds.get("Modality", "")) != "SEG" or sop not in (
        SEG_SOP_CLASS_UID,
        LABEL_SEG_SOP_CLASS_UID,
    ):
        raise _fail(
            path,
            f"not a DICOM Segmentation (Modality '{ds.get('Modality', '')}', SOP class {sop or 'none'})",
        )
    positions, orientation, pixel_spacing, between, thickness = _frame_geometry(ds, path)
    try:
        # highdicom checks the SEG's structure (segment descriptions, dimension index) and
        # pydicom decodes BINARY (1 bit), FRACTIONAL and LABELMAP pixel data.
        hd.seg.Segmentation.from_dataset(ds, copy=False)
        frames = np.asarray(ds.pixel_array)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise _fail(path, f"invalid DICOM SEG ({msg})") from None
    n_frames = len(positions)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.shape[0] != n_frames:
        raise _fail(path, f"SEG pixel data holds {frames.shape[0]} frames, header says {n_frames}")
    grid, k_of_frame = _grid_from_frames(
        positions, orientation, pixel_spacing, between, thickness, frames.shape[1:], path
    )
    seg_type = str(ds.get("SegmentationType", "BINARY"))
    descriptions = {
        int(d.SegmentNumber): str(d.get("SegmentLabel", "")) for d in ds.SegmentSequence
    }
    masks = {n: np.zeros(grid.array.shape, dtype=bool) for n in descriptions}
    if seg_type == "LABELMAP":
        for f in range(n_frames):
            for n in masks:
                masks[n][k_of_frame[f]] |= frames[f] == n
    else:
        if seg_type == "FRACTIONAL":
            threshold = 0.5 * float(ds.get("MaximumFractionalValue", 255))
            on = frames >= threshold
        elif seg_type == "BINARY":
            on = frames != 0
        else:
            raise _fail(path, f"SegmentationType '{seg_type}' not supported")
        shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
        for f, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
            # A one-segment SEG may carry the segment identification in the shared group.
            ident = fg if "SegmentIdentificationSequence" in fg else shared
            try:
                n = int(ident.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
            except (AttributeError, IndexError):
                raise _fail(path, f"SEG frame {f + 1} names no segment") from None
            if n not in masks:
                raise _fail(path, f"SEG frame {f + 1} refers to undefined segment {n}")
            masks[n][k_of_frame[f]] |= on[f]
    return [Segment(n, descriptions[n], grid.with_array(m)) for n, m in masks.items()]


# ---- writing ------------------------------------------------------------------------------


def write_dicom_seg(
    masks: dict[str, np.ndarray],
    ct_folder: Path,
    path: Path,
    *,
    description: str = "hepablate segmentation",
    algorithm_name: str | None = None,
) -> Path:
    """Write boolean masks ([k, j, i] on the CT grid of `ct_folder`) as a BINARY DICOM SEG that
    references that CT series. SegmentLabel is the dict key; segment numbers follow dict order.
    Empty masks are written (as all-zero frames), not skipped. With `algorithm_name` the
    segments are marked AUTOMATIC (computed by hepablate), otherwise MANUAL.
    """
    if not masks:
        raise ValueError("no masks to write")
    path = Path(path)
    # highdicom takes patient, study and geometry attributes from the headers (in the slice
    # order read_image uses); it needs no pixels.
    sources = read_ct_headers(Path(ct_folder))
    shape = (len(sources), int(sources[0].Rows), int(sources[0].Columns))
    stack = np.zeros((*shape, len(masks)), dtype=bool)
    descriptions = []
    algorithm = None
    if algorithm_name is not None:
        algorithm = hd.AlgorithmIdentificationSequence(
            name=algorithm_name[:64], family=ALGORITHM_FAMILY, version=__version__
        )
    for n, (name, m) in enumerate(masks.items(), start=1):
        m = np.asarray(m, dtype=bool)
        if m.shape != shape:
            raise ValueError(f"mask '{name}' has shape {m.shape}; CT series is {shape}")
        stack[..., n - 1] = m
        category, kind = property_codes(name)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=n,
                segment_label=name.replace("\\", "/")[:64],
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type="AUTOMATIC" if algorithm_name else "MANUAL",
                algorithm_identification=algorithm,
            )
        )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=stack,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=100,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="hepablate",
        manufacturer_model_name="hepablate",
        software_versions=__version__,
        device_serial_number="0",
        content_description=description[:64],
        content_label="HEPABLATE",
        omit_empty_frames=False,
    )
    if algorithm is not None:
        seg.CodingSchemeIdentificationSequence = coding_scheme_identification()  # type: ignore[assignment]
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


def write_zone_seg(
    zone: Volume, ct_folder: Path, path: Path, *, label: str = "IRE ablation zone"
) -> Path:
    """Resample a predicted ablation zone (boolean, possibly on a planning sub-grid) onto the CT
    grid of `ct_folder` and write it as a one-segment SEG.

    A CT voxel is in the zone when the trilinear interpolation of the zone mask at its centre
    is at least 1/2. Away from ties this is nearest neighbour; a CT voxel centre exactly on a
    zone voxel face (a CT grid finer than the zone's, sharing its lattice) counts as inside on
    every side, where nearest neighbour breaks the tie one way and so shifted the zone by half
    a CT voxel."""
    ct = read_image(ct_folder)
    frac = resample_to(
        zone.with_array((np.asarray(zone.array) != 0).astype(np.float32)),
        ct,
        interpolation="linear",
    )
    on_ct = frac.array >= 0.5 - 1e-4
    return write_dicom_seg(
        {label: on_ct},
        ct_folder,
        path,
        description=label,
        algorithm_name="hepablate",
    )
