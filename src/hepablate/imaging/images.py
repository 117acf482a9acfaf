"""Read and write scalar volumes: NIfTI, NRRD, MHA/MHD (files) and DICOM series (folders).

SimpleITK converts every format to LPS on read and back on write (NIfTI stores RAS).
"""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from hepablate.core.volume import Volume
from hepablate.errors import InputError
from hepablate.imaging.headers import (
    check_dicom_series,
    check_image_file,
    native_warnings_as_errors,
)

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in (".seg.nrrd", ".nii.gz"):
        if name.endswith(s):
            return s
    return path.suffix.lower()


def read_image(path: str | Path) -> Volume:
    """Read a 3D scalar image file, or a DICOM series from a folder, into a `Volume` (LPS).

    The header is checked first by `hepablate.imaging.headers` (SimpleITK would repair a
    truncated file, a NaN spacing or a corrupt magic number without a word), and anything
    ITK/GDCM print while reading becomes an `InputError`."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", source=str(p))
    if not p.is_dir():
        if not p.is_file():
            raise InputError("not a regular file", source=str(p))
        check_image_file(p)
    try:
        with native_warnings_as_errors(p):
            if p.is_dir():
                reader = sitk.ImageSeriesReader()
                series = reader.GetGDCMSeriesIDs(str(p))
                if not series:
                    raise InputError("folder holds no DICOM series", source=str(p))
                if len(series) > 1:
                    raise InputError(
                        f"folder holds {len(series)} DICOM series; expected one", source=str(p)
                    )
                files = reader.GetGDCMSeriesFileNames(str(p), series[0])
                check_dicom_series(p, files)
                reader.SetFileNames(files)
                img = reader.Execute()
            else:
                img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = next((ln for ln in first if "ERROR" in ln or "Unable" in ln), "")
        raise InputError(
            f"cannot read image ({detail.strip()[:160] or 'unsupported or corrupt file'})",
            source=str(p),
        ) from None
    return Volume.from_sitk(img, source=str(p))


def write_image(volume: Volume, path: str | Path, *, compress: bool = True) -> Path:
    """Write a volume as NIfTI/NRRD/MHA by the file suffix (bool masks as uint8)."""
    p = Path(path)
    if _suffix(p) not in IMAGE_SUFFIXES:
        raise ValueError(f"unsupported image suffix for {p}")
    p.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(volume.to_sitk(), str(p), compress)
    return p
