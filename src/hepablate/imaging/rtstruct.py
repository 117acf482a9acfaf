"""DICOM RT Structure Sets (RTSTRUCT): planar contours per ROI (PS3.3 A.19, C.8.8.5-6).

Writing traces each slice of a mask with `skimage.measure.find_contours` at level 0.5 (the
contour runs midway between inside and outside voxel centres) and stores CLOSED_PLANAR
contours in LPS mm. Reading rasterises every contour of an ROI on its slice of a reference grid
(voxel centres inside the polygon, decided as `skimage.draw.polygon` does but by a vectorised
scan-line fill) and combines the contours of a slice by XOR (even-odd rule), so holes and
islands come out right. Contours must lie in the slice planes of the reference grid.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pydicom
from pydicom.charset import convert_encodings
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from skimage.measure import find_contours

from hepablate import __version__
from hepablate.anatomy.vocabulary import NO_GO, base_name
from hepablate.core.volume import Volume
from hepablate.errors import InputError
from hepablate.imaging.dicom_ct import quiet_pydicom, read_ct_headers
from hepablate.imaging.dicom_seg import property_codes
from hepablate.imaging.images import read_image
from hepablate.imaging.segments import Segment
from hepablate.imaging.slicer_seg import DISPLAY_COLOURS

RTSTRUCT_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.481.3"
_STUDY_COMPONENT_SOP_CLASS_UID = "1.2.840.10008.3.1.2.3.1"
#: Largest distance (in voxels) of a contour point from its slice plane.
PLANE_TOLERANCE_VOXELS = 1e-2
_CONTOUR_DATA = Tag(0x3006, 0x0050)
_CHARSET = "ISO_IR 192"  # UTF-8: ROI names may hold any character
_ENCODING = convert_encodings(_CHARSET)


def _fail(path: Path, message: str) -> InputError:
    return InputError(message, source=str(path))


def _interpreted_type(name: str) -> str:
    base = base_name(name)
    if base == "body":
        return "EXTERNAL"
    if base == "tumour":
        return "GTV"
    if base in NO_GO:
        return "AVOIDANCE"
    if base in ("liver", "diaphragm"):
        return "ORGAN"
    return ""


# ---- reading ------------------------------------------------------------------------------


def _points(item: Dataset, roi: str, path: Path) -> np.ndarray:
    """ContourData as (n, 3) LPS mm. The raw bytes are parsed with numpy: pydicom's per-value
    DS objects take seconds for a body outline on every slice."""
    try:
        raw = item.get_item(_CONTOUR_DATA)
        if raw is not None and isinstance(raw.value, bytes):
            text = raw.value.decode("ascii").replace("\\", " ")
            data = np.array(text.split(), dtype=float)
        else:
            data = np.asarray([float(v) for v in item.ContourData], dtype=float)
    except (AttributeError, ValueError, TypeError, UnicodeDecodeError):
        raise _fail(path, f"ROI '{roi}': a contour has no valid ContourData") from None
    if data.size == 0 or data.size % 3 or not np.all(np.isfinite(data)):
        raise _fail(path, f"ROI '{roi}': ContourData must be finite (x, y, z) triplets")
    return data.reshape(-1, 3)


def fill_polygon(x: np.ndarray, y: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (ny, nx) image of the pixels whose centres (integer x, y) lie inside the closed
    polygon with vertices (x, y) in continuous pixel indices.

    A vectorised scan-line fill: each edge is intersected with the rows it spans (half-open in
    y so a vertex is counted once), crossings are paired left to right in each row (even-odd
    rule) and the spans between pairs filled. Same rule as `skimage.draw.polygon`, without its
    cost of testing every pixel of the bounding box against every edge.
    """
    ny, nx = shape
    x0, y0 = np.asarray(x, float), np.asarray(y, float)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    first = np.clip(np.ceil(lo), 0, ny).astype(np.int64)
    stop = np.clip(np.ceil(hi), 0, ny).astype(np.int64)
    counts = np.maximum(stop - first, 0)
    out = np.zeros(shape, dtype=bool)
    total = int(counts.sum())
    if total == 0:
        return out
    edge = np.repeat(np.arange(len(x0)), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = first[edge] + offset
    t = (rows - y0[edge]) / (y1[edge] - y0[edge])
    xs = x0[edge] + t * (x1[edge] - x0[edge])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # Every row a closed polygon crosses is crossed an even number of times.
    r = rows[0::2]
    start = np.clip(np.ceil(xs[0::2]), 0, nx).astype(np.int64)
    end = np.clip(np.ceil(xs[1::2]), 0, nx).astype(np.int64)
    acc = np.zeros((ny, nx + 1), dtype=np.int32)
    np.add.at(acc, (r, start), 1)
    np.add.at(acc, (r, end), -1)
    return np.cumsum(acc[:, :nx], axis=1) > 0


def read_rtstruct(path: Path, reference: Volume) -> list[Segment]:
    """Rasterise each ROI of an RTSTRUCT onto `reference` (the CT it was drawn on).

    `Segment.number` is the ROINumber, `name` the ROIName. POINT contours (markers) are
    ignored; open contours cannot be filled and are an error.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found")
    with quiet_pydicom():
        return _read_rtstruct(path, reference)


def _read_rtstruct(path: Path, reference: Volume) -> list[Segment]:
    try:
        ds = pydicom.dcmread(path)
    except Exception:
        raise _fail(path, "cannot read as DICOM (corrupt or not a DICOM file)") from None
    sop = str(ds.get("SOPClassUID", ""))
    if str(ds.get("Modality", "")) != "RTSTRUCT" or sop != RTSTRUCT_SOP_CLASS_UID:
        raise _fail(
            path,
            f"not an RT Structure Set (Modality '{ds.get('Modality', '')}', "
            f"SOP class {sop or 'none'})",
        )
    try:
        names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    except (AttributeError, ValueError, TypeError):
        raise _fail(path, "StructureSetROISequence missing or malformed") from None
    nk, nj, ni = reference.array.shape
    masks = {n: np.zeros((nk, nj, ni), dtype=bool) for n in names}
    for roi_item in ds.get("ROIContourSequence", []):
        try:
            number = int(roi_item.ReferencedROINumber)
        except (AttributeError, ValueError, TypeError):
            raise _fail(path, "an ROIContourSequence item has no ReferencedROINumber") from None
        if number not in names:
            raise _fail(path, f"contours refer to ROI number {number}, which is not defined")
        roi = names[number]
        for c, item in enumerate(roi_item.get("ContourSequence", []), start=1):
            kind = str(item.get("ContourGeometricType", ""))
            if kind == "POINT":
                continue
            if kind != "CLOSED_PLANAR":
                raise _fail(
                    path,
                    f"ROI '{roi}' contour {c} is {kind or 'untyped'}; only CLOSED_PLANAR "
                    "contours can be filled",
                )
            ijk = reference.lps_to_index(_points(item, roi, path))
            k = float(np.round(np.median(ijk[:, 2])))
            off = float(np.abs(ijk[:, 2] - k).max())
            if off > PLANE_TOLERANCE_VOXELS:
                raise _fail(
                    path,
                    f"ROI '{roi}' contour {c} does not lie in a slice plane of the reference "
                    f"grid (off by {off:.3f} slices); contours must be drawn on the CT's slices",
                )
            if not 0 <= k < nk:
                raise _fail(
                    path,
                    f"ROI '{roi}' contour {c} lies on slice {k:.0f}, outside the reference grid "
                    f"(0..{nk - 1})",
                )
            masks[number][int(k)] ^= fill_polygon(ijk[:, 0], ijk[:, 1], (nj, ni))
    return [Segment(n, names[n], reference.with_array(masks[n])) for n in names]


# ---- writing ------------------------------------------------------------------------------


def _contours(mask_slice: np.ndarray) -> list[np.ndarray]:
    """Closed contours (row, col) at level 0.5; padding closes those touching the border."""
    padded = np.pad(mask_slice.astype(np.float32), 1)
    out = []
    for c in find_contours(padded, 0.5):
        c = c - 1.0
        if len(c) > 1 and np.allclose(c[0], c[-1]):
            c = c[:-1]  # CLOSED_PLANAR implies the closing segment
        if len(c) >= 3:
            out.append(c)
    return out


def _contour_data(points: np.ndarray) -> RawDataElement:
    """ContourData as a raw DS element: pydicom would build and validate one object per value,
    which takes seconds for a body outline on every slice. Fixed point to 0.1 um keeps every
    value within DS's 16 characters."""
    if not np.all(np.abs(points) < 1e10):
        raise ValueError("contour coordinates out of range for DICOM DS")
    value = "\\".join(f"{v:.4f}" for v in points.ravel()).encode("ascii")
    if len(value) % 2:
        value += b" "
    return RawDataElement(_CONTOUR_DATA, "DS", len(value), value, 0, False, True)


def write_rtstruct(masks: dict[str, np.ndarray], ct_folder: Path, path: Path) -> Path:
    """Write boolean masks ([k, j, i] on the CT grid of `ct_folder`) as an RT Structure Set
    referencing that CT series; ROIName is the dict key, ROINumber follows dict order. Empty
    masks are written as ROIs without contours."""
    if not masks:
        raise ValueError("no masks to write")
    path = Path(path)
    ct_folder = Path(ct_folder)
    headers = read_ct_headers(ct_folder)
    grid = read_image(ct_folder)
    if len(headers) != grid.array.shape[0]:
        raise InputError("CT slice headers and series disagree", source=str(ct_folder))
    first = headers[0]
    now = _dt.datetime.now(_dt.UTC)
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(RTSTRUCT_SOP_CLASS_UID)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = _CHARSET
    ds.SOPClassUID = RTSTRUCT_SOP_CLASS_UID
    ds.SOPInstanceUID = sop_uid
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
    ):
        setattr(ds, kw, first.get(kw, ""))
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 101
    ds.SeriesDescription = "hepablate structures"
    ds.OperatorsName = ""  # Type 2 (RT Series): no operator for a computed structure set
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")  # Type 2
    ds.InstanceNumber = 1
    ds.Manufacturer = "hepablate"
    ds.ManufacturerModelName = "hepablate"
    ds.SoftwareVersions = __version__
    ds.FrameOfReferenceUID = first.FrameOfReferenceUID
    ds.StructureSetLabel = "hepablate"
    ds.StructureSetDate = now.strftime("%Y%m%d")
    ds.StructureSetTime = now.strftime("%H%M%S")

    def image_ref(h: Dataset) -> Dataset:
        r = Dataset()
        r.ReferencedSOPClassUID = h.SOPClassUID
        r.ReferencedSOPInstanceUID = h.SOPInstanceUID
        return r

    series_ref = Dataset()
    series_ref.SeriesInstanceUID = first.SeriesInstanceUID
    series_ref.ContourImageSequence = Sequence([image_ref(h) for h in headers])
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = _STUDY_COMPONENT_SOP_CLASS_UID
    study_ref.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study_ref.RTReferencedSeriesSequence = Sequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame_ref.RTReferencedStudySequence = Sequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame_ref])

    rois, contours, observations = [], [], []
    for number, (name, m) in enumerate(masks.items(), start=1):
        m = np.asarray(m, dtype=bool)
        if m.shape != grid.array.shape:
            raise ValueError(f"mask '{name}' has shape {m.shape}; CT series is {grid.array.shape}")
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = first.FrameOfReferenceUID
        roi.ROIName = name.replace("\\", "/")[:64]
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        rois.append(roi)
        items = []
        for k in np.flatnonzero(m.any(axis=(1, 2))):
            for rc in _contours(m[k]):
                ijk = np.column_stack([rc[:, 1], rc[:, 0], np.full(len(rc), float(k))])
                c = Dataset(parent_encoding=_ENCODING)
                # Declared already in the output encoding so pydicom writes the raw
                # ContourData as it is instead of decoding and re-encoding every value.
                c.set_original_encoding(False, True, _ENCODING)
                c.ContourImageSequence = Sequence([image_ref(headers[k])])
                c.ContourGeometricType = "CLOSED_PLANAR"
                c.NumberOfContourPoints = len(rc)
                c[_CONTOUR_DATA] = _contour_data(grid.index_to_lps(ijk))
                items.append(c)
        roi_contour = Dataset()
        rgb = DISPLAY_COLOURS.get(base_name(name), (0.5, 0.5, 0.5))
        roi_contour.ROIDisplayColor = [int(round(255 * v)) for v in rgb]
        roi_contour.ReferencedROINumber = number
        if items:
            roi_contour.ContourSequence = Sequence(items)
        contours.append(roi_contour)
        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = _interpreted_type(name)
        obs.ROIInterpreter = ""
        # What the ROI is, as a code (SNOMED CT, the SEG writer's segmented property type).
        _category, kind = property_codes(name)
        code = Dataset()
        code.CodeValue = kind.value
        code.CodingSchemeDesignator = kind.scheme_designator
        code.CodeMeaning = kind.meaning
        obs.RTROIIdentificationCodeSequence = Sequence([code])
        observations.append(obs)
    ds.StructureSetROISequence = Sequence(rois)
    ds.ROIContourSequence = Sequence(contours)
    ds.RTROIObservationsSequence = Sequence(observations)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
