"""Write a `Volume` as a DICOM CT Image Storage series (one file per slice) and read a series'
headers back in slice order.

The series carries the Volume's true geometry: ImageOrientationPatient is the first two
columns of `direction` (row = i, column = j), ImagePositionPatient of slice k is
``origin + k * spacing_k * direction[:, 2]``, PixelSpacing is (j spacing, i spacing) as DICOM
PS3.3 C.7.6.2.1.1 orders it. Pixel values are int16 with RescaleSlope/RescaleIntercept chosen
so integer HU round-trip exactly. A left-handed direction (third column = -row x column) cannot
be written as such: DICOM readers sort slices along row x column, so it comes back as the
equivalent right-handed grid with k reversed.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from hepablate import __version__
from hepablate.core.volume import Volume
from hepablate.errors import InputError

_INT16 = np.iinfo(np.int16)


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Read without pydicom's per-value validation warnings: readers report what they cannot
    use as one `InputError`, and stray warnings would break the CLI's one-line errors."""
    settings = pydicom.config.settings
    old = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        settings.reading_validation_mode = old


def ds_str(value: float) -> str:
    """A float as a DICOM DS string (at most 16 characters, full available precision)."""
    v = float(value)
    if v == 0.0:
        return "0"
    return format_number_as_ds(v)


def _rescale(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Stored int16 values, slope and intercept such that ``stored * slope + intercept`` gives
    `values` exactly when they are integers spanning at most 65535, else to 1/65535 of the
    range."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size != values.size:
        raise ValueError("CT values must be finite to write DICOM")
    lo = float(values.min()) if values.size else 0.0
    hi = float(values.max()) if values.size else 0.0
    integral = values.dtype.kind in "iub" or bool(np.all(values == np.round(values)))
    if integral and hi - lo <= _INT16.max - _INT16.min:
        intercept = 0.0
        if lo < _INT16.min or hi > _INT16.max:
            intercept = float(np.floor((lo + hi) / 2.0))
        stored = (values.astype(np.float64) - intercept).astype(np.int16)
        return stored, 1.0, intercept
    slope = (hi - lo) / float(_INT16.max - _INT16.min) if hi > lo else 1.0
    intercept = lo - _INT16.min * slope
    stored = np.round((values.astype(np.float64) - intercept) / slope)
    return np.clip(stored, _INT16.min, _INT16.max).astype(np.int16), slope, intercept


def write_dicom_ct_series(
    ct: Volume, folder: Path, *, patient_id: str, study_uid: str | None = None
) -> list[Path]:
    """Write `ct` (HU) as a CT Image Storage series into `folder` (created), one file per slice
    named ``CT{k:04d}.dcm``; returns the paths in slice order (k ascending)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(ct.array)
    if arr.dtype == bool:
        arr = arr.astype(np.int16)
    stored, slope, intercept = _rescale(arr)
    nk, nj, ni = arr.shape
    si, sj, sk = ct.spacing_mm
    d = ct.direction
    row_dir, col_dir, slice_dir = d[:, 0], d[:, 1], d[:, 2]
    # LO and PN values hold at most 64 characters and no backslash (PS3.5 6.2).
    patient_id = patient_id.replace("\\", "/")[:63]
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_uid = generate_uid()
    now = _dt.datetime.now(_dt.UTC)
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    paths: list[Path] = []
    for k in range(nk):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "hepablate"
        ds.ManufacturerModelName = "hepablate"
        ds.SoftwareVersions = __version__
        ds.ReferringPhysicianName = ""
        # A trailing caret marks a one-component person name (PS3.5 6.2.1.2).
        ds.PatientName = f"{patient_id}^"
        ds.PatientID = patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        ds.SeriesDescription = "hepablate CT"
        # General Series, Type 2C: the patient position is not known from a volume file
        # (present and empty); Laterality is required only for a paired body part, and the
        # liver's is the unpaired abdomen.
        ds.PatientPosition = ""
        ds.BodyPartExamined = "ABDOMEN"
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.KVP = ""
        ds.SliceThickness = ds_str(sk)
        ds.SpacingBetweenSlices = ds_str(sk)
        position = np.asarray(ct.origin_lps_mm) + k * sk * slice_dir
        ds.ImagePositionPatient = [ds_str(v) for v in position]
        ds.ImageOrientationPatient = [ds_str(v) for v in (*row_dir, *col_dir)]
        ds.SliceLocation = ds_str(float(position @ np.cross(row_dir, col_dir)))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = nj
        ds.Columns = ni
        ds.PixelSpacing = [ds_str(sj), ds_str(si)]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = ds_str(intercept)
        ds.RescaleSlope = ds_str(slope)
        ds.RescaleType = "HU"
        ds.PixelData = np.ascontiguousarray(stored[k]).astype("<i2").tobytes()
        path = folder / f"CT{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def read_ct_headers(folder: Path) -> list[Dataset]:
    """The headers (no pixels) of the one CT/MR image series in `folder`, sorted by position
    along the slice normal: the slice order SimpleITK/GDCM (`read_image`) uses."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("DICOM series folder not found", source=str(folder))
    with quiet_pydicom():
        return _read_ct_headers(folder)


def _read_ct_headers(folder: Path) -> list[Dataset]:
    datasets: list[Dataset] = []
    for p in sorted(folder.iterdir()):
        if not p.is_file():
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:
            continue  # not DICOM (e.g. a README); GDCM skips these too
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            datasets.append(ds)
    if not datasets:
        raise InputError("folder holds no DICOM image slices", source=str(folder))
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series) > 1:
        raise InputError(
            f"folder holds {len(series)} DICOM series; expected one", source=str(folder)
        )
    try:
        iop = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        along = [float(np.asarray(ds.ImagePositionPatient, float) @ normal) for ds in datasets]
    except (ValueError, TypeError, IndexError):
        raise InputError(
            "ImagePositionPatient/ImageOrientationPatient malformed", source=str(folder)
        ) from None
    return [datasets[i] for i in np.argsort(along, kind="stable")]
