"""Independent header checks, run before SimpleITK reads an image.

SimpleITK (ITK) repairs what it cannot use: it fills a truncated data section with zeros,
replaces a NaN or zero voxel spacing by 1 mm, reads a NIfTI with a corrupt magic number as
Analyze (dropping its origin and orientation) and prints multi-line warnings on stderr. The
checks here read each header with a library of its own (nibabel for NIfTI, pynrrd for NRRD,
a MetaIO text parser for MHA/MHD, pydicom for DICOM) and raise `InputError` naming the file
for: truncated or oversized data, non-finite or non-positive spacing, singular or non-finite
direction matrices, a missing magic number, unsupported data types (complex, RGB, 128-bit)
and sizes that do not match the header. `native_warnings_as_errors` turns whatever a C++
library still prints on stderr into the same one-line error.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepablate.errors import InputError

_CHUNK = 1 << 22

#: NIfTI datatype codes hepablate reads (scalar integers and floats); name by code otherwise.
NIFTI_SUPPORTED = {2, 4, 8, 16, 64, 256, 512, 768, 1024, 1280}
NIFTI_TYPE_NAMES = {
    0: "unknown",
    1: "binary (1 bit)",
    32: "complex64",
    128: "RGB24",
    1536: "float128",
    1792: "complex128",
    2048: "complex256",
    2304: "RGBA32",
}
META_TYPES = {
    "MET_UCHAR": 1,
    "MET_CHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_LONG": 4,
    "MET_ULONG": 4,
    "MET_LONG_LONG": 8,
    "MET_ULONG_LONG": 8,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}
#: NRRD "type" spellings of scalar integers and floats (NRRD0005 format definition).
NRRD_SCALAR_TYPES = frozenset(
    [
        "signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t",
        "short", "short int", "signed short", "signed short int", "int16", "int16_t",
        "ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t",
        "int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
        "longlong", "long long", "long long int", "signed long long", "signed long long int",
        "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int",
        "uint64", "uint64_t", "float", "double",
    ]
)  # fmt: skip
#: Transfer syntaxes whose PixelData length is rows x columns x bytes x frames.
UNCOMPRESSED_TS = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def _fail(path: Path | str, message: str) -> InputError:
    return InputError(message, source=str(path))


def _check_geometry(
    path: Path | str, spacing: Sequence[float], matrix: np.ndarray | None, what: str
) -> None:
    """Spacing finite and positive; the 3x3 direction (or affine) matrix finite, non-singular."""
    sp = np.asarray(spacing, dtype=float)
    if sp.shape != (3,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise _fail(path, f"voxel spacing must be three finite positive numbers, got {sp.tolist()}")
    if matrix is None:
        return
    m = np.asarray(matrix, dtype=float)
    if not np.all(np.isfinite(m)):
        raise _fail(path, f"{what} holds non-finite values")
    norms = np.linalg.norm(m, axis=0)
    if np.any(norms <= 0) or abs(np.linalg.det(m / norms)) < 1e-3:
        raise _fail(path, f"{what} is singular (its axes are not independent)")


def _count_bytes(fh: Any, limit: int | None = None) -> int:
    n = 0
    while True:
        block = fh.read(_CHUNK)
        if not block:
            return n
        n += len(block)
        if limit is not None and n > limit:
            return n


def _check_size(path: Path | str, available: int, needed: int) -> None:
    if available < needed:
        raise _fail(
            path,
            f"data section holds {available} bytes; the header's size and type need {needed} "
            "(truncated file?)",
        )
    if available > needed:
        raise _fail(
            path,
            f"data section holds {available} bytes; the header's size and type need only {needed}",
        )


# ---- NIfTI ----------------------------------------------------------------------------------
def check_nifti(path: Path) -> None:
    """NIfTI-1/2 header (nibabel) and data length, read without SimpleITK."""
    import nibabel as nib

    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(540)
            if len(head) < 348:
                raise _fail(
                    path,
                    f"cannot read image (file too short for a NIfTI header: {len(head)} bytes)",
                )
            size_le, size_be = struct.unpack("<i", head[:4])[0], struct.unpack(">i", head[:4])[0]
            sizeof = size_le if size_le in (348, 540) else size_be
            if sizeof not in (348, 540):
                raise _fail(
                    path,
                    "cannot read image (not a NIfTI file: header size field is neither 348 nor 540)",
                )
            cls = nib.Nifti1Header if sizeof == 348 else nib.Nifti2Header
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hdr = cls.from_fileobj(io.BytesIO(head[:sizeof]), check=False)
            magic = bytes(hdr["magic"]).rstrip(b"\x00")
            want = b"n+1" if sizeof == 348 else b"n+2"
            if magic != want:
                raise _fail(
                    path,
                    f"NIfTI magic number is {magic!r}, expected {want!r} (a corrupt header would "
                    "be read as Analyze, losing origin and orientation)",
                )
            _check_nifti_fields(path, hdr)
            offset = int(hdr["vox_offset"])
            dims = [int(d) for d in hdr["dim"][1 : int(hdr["dim"][0]) + 1]]
            needed = int(np.prod(dims, dtype=np.int64)) * int(hdr["bitpix"]) // 8
            available = len(head) - offset if len(head) > offset else 0
            if len(head) < offset:
                fh.read(offset - len(head))
            available += _count_bytes(fh, needed)
    except (OSError, EOFError, zlib.error) as exc:
        raise _fail(path, f"cannot read image ({type(exc).__name__}: {str(exc)[:120]})") from None
    if available < needed:
        _check_size(path, available, needed)


def _check_nifti_fields(path: Path, hdr: Any) -> None:
    code = int(hdr["datatype"])
    if code not in NIFTI_SUPPORTED:
        name = NIFTI_TYPE_NAMES.get(code, f"code {code}")
        raise _fail(path, f"NIfTI data type {name} is not supported (expected a scalar type)")
    dim = [int(d) for d in hdr["dim"]]
    if not 3 <= dim[0] <= 7:
        raise _fail(path, f"expected a 3D image, header dim[0] is {dim[0]}")
    if any(d < 1 for d in dim[1 : dim[0] + 1]) or any(d != 1 for d in dim[4 : dim[0] + 1]):
        raise _fail(path, f"expected a 3D image, header sizes are {dim[1 : dim[0] + 1]}")
    pixdim = [float(p) for p in hdr["pixdim"][1:4]]
    qform, sform = int(hdr["qform_code"]), int(hdr["sform_code"])
    _check_geometry(path, pixdim, None, "")
    if sform > 0:
        srow = np.array([hdr["srow_x"][:3], hdr["srow_y"][:3], hdr["srow_z"][:3]], float)
        offs = np.array([hdr["srow_x"][3], hdr["srow_y"][3], hdr["srow_z"][3]], float)
        _check_geometry(path, pixdim, srow, "sform matrix (srow_x/y/z)")
        if not np.all(np.isfinite(offs)):
            raise _fail(path, "sform origin holds non-finite values")
    if qform > 0:
        q = np.array([hdr["quatern_b"], hdr["quatern_c"], hdr["quatern_d"]], float)
        offs = np.array([hdr["qoffset_x"], hdr["qoffset_y"], hdr["qoffset_z"]], float)
        if not np.all(np.isfinite(q)) or not np.all(np.isfinite(offs)):
            raise _fail(path, "qform quaternion or offset holds non-finite values")
        if float(q @ q) > 1.0 + 1e-5:
            raise _fail(path, "qform quaternion (b, c, d) has norm above 1")
    slope, inter = float(hdr["scl_slope"]), float(hdr["scl_inter"])
    if not (np.isfinite(slope) and np.isfinite(inter)):
        raise _fail(path, "scl_slope/scl_inter must be finite")
    if int(hdr["vox_offset"]) < int(hdr["sizeof_hdr"]):
        raise _fail(path, f"vox_offset {int(hdr['vox_offset'])} lies inside the header")


# ---- NRRD -----------------------------------------------------------------------------------
def check_nrrd(path: Path) -> None:
    """NRRD header (pynrrd) and data length; the data are read once by pynrrd to measure."""
    import nrrd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            header = nrrd.read_header(str(path))
    except Exception as exc:  # pynrrd raises several types for corrupt headers
        raise _fail(path, f"cannot read image (NRRD header: {_first_line(exc)})") from None
    dtype = str(header.get("type", "")).strip().lower()
    if dtype not in NRRD_SCALAR_TYPES:
        raise _fail(path, f"NRRD type '{dtype}' is not supported (expected a scalar type)")
    sizes = [int(s) for s in np.atleast_1d(header.get("sizes", []))]
    if len(sizes) not in (3, 4) or any(s < 1 for s in sizes):
        raise _fail(path, f"expected 3 (or 4 with a layer axis) positive sizes, got {sizes}")
    if "space directions" in header:
        dirs = np.asarray(header["space directions"], dtype=float)
        if dirs.ndim != 2 or dirs.shape != (len(sizes), 3):
            raise _fail(path, "field 'space directions' does not match the sizes")
        spatial = dirs[-3:]
        norms = np.linalg.norm(spatial, axis=1).tolist()
        _check_geometry(path, norms, spatial.T, "field 'space directions'")
    elif "spacings" in header:
        sp = np.asarray(header["spacings"], dtype=float)[-3:].tolist()
        _check_geometry(path, sp, None, "")
    if "space origin" in header:
        origin = np.asarray(header["space origin"], dtype=float)
        if not np.all(np.isfinite(origin)):
            raise _fail(path, f"field 'space origin' must be finite, got {origin.tolist()}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data, _ = nrrd.read(str(path))
    except Exception as exc:
        raise _fail(path, f"cannot read image (NRRD data: {_first_line(exc)})") from None
    if list(data.shape) != sizes:
        raise _fail(path, f"NRRD data shape {list(data.shape)} differs from the sizes {sizes}")


# ---- MetaImage --------------------------------------------------------------------------------
def _meta_header(path: Path) -> tuple[dict[str, str], int]:
    fields: dict[str, str] = {}
    offset = 0
    with path.open("rb") as fh:
        for _ in range(200):
            line = fh.readline(4096)
            if not line:
                break
            offset += len(line)
            text = line.decode("latin-1").strip()
            if "=" not in text:
                continue
            key, value = (s.strip() for s in text.split("=", 1))
            fields[key] = value
            if key == "ElementDataFile":
                return fields, offset
    raise _fail(path, "MetaImage header has no ElementDataFile line")


def check_meta(path: Path) -> None:
    """MetaImage (.mha/.mhd) header fields and data length."""
    fields, offset = _meta_header(path)

    def numbers(key: str, n: int, default: list[float] | None = None) -> list[float]:
        if key not in fields:
            if default is None:
                raise _fail(path, f"MetaImage header has no {key}")
            return default
        try:
            vals = [float(v) for v in fields[key].split()]
        except ValueError:
            raise _fail(path, f"MetaImage {key} must hold numbers, got '{fields[key]}'") from None
        if len(vals) != n:
            raise _fail(path, f"MetaImage {key} must hold {n} numbers, got {len(vals)}")
        return vals

    ndims = numbers("NDims", 1)[0]
    if ndims != 3:
        raise _fail(path, f"expected a 3D image, NDims is {ndims:g}")
    dims = numbers("DimSize", 3)
    if any(d < 1 or d != int(d) for d in dims):
        raise _fail(path, f"MetaImage DimSize must be positive integers, got {dims}")
    spacing = numbers("ElementSpacing", 3, numbers("ElementSize", 3, [1.0, 1.0, 1.0]))
    key = next((k for k in ("TransformMatrix", "Rotation", "Orientation") if k in fields), None)
    matrix = None if key is None else np.array(numbers(key, 9)).reshape(3, 3)
    _check_geometry(path, spacing, matrix, f"MetaImage {key}")
    ok = next((k for k in ("Offset", "Origin", "Position") if k in fields), None)
    if ok is not None and not np.all(np.isfinite(numbers(ok, 3))):
        raise _fail(path, f"MetaImage {ok} must be finite")
    etype = fields.get("ElementType", "")
    if etype not in META_TYPES:
        raise _fail(path, f"MetaImage ElementType '{etype}' is not supported")
    if int(float(fields.get("ElementNumberOfChannels", "1"))) != 1:
        raise _fail(path, "expected a scalar image (ElementNumberOfChannels 1)")
    needed = int(np.prod([int(d) for d in dims], dtype=np.int64)) * META_TYPES[etype]
    local = fields["ElementDataFile"]
    compressed = fields.get("CompressedData", "False").lower() == "true"
    try:
        if local.upper() == "LOCAL":
            target, skip = path, offset
        else:
            target, skip = (path.parent / local), 0
            if not target.is_file():
                raise _fail(path, f"MetaImage data file '{local}' not found")
        with target.open("rb") as fh:
            fh.seek(skip)
            if compressed:
                available = _count_zlib(fh, needed)
            else:
                available = _count_bytes(fh)
    except (OSError, zlib.error) as exc:
        raise _fail(path, f"cannot read image (MetaImage data: {_first_line(exc)})") from None
    _check_size(path, available, needed)


def _count_zlib(fh: Any, limit: int) -> int:
    d = zlib.decompressobj()
    n = 0
    while True:
        block = fh.read(_CHUNK)
        if not block:
            return n + len(d.flush())
        n += len(d.decompress(block))
        if n > limit or d.eof:
            return n


# ---- DICOM ------------------------------------------------------------------------------------
def check_dicom_series(folder: Path, files: Sequence[str]) -> None:
    """Per-slice geometry and pixel data of a DICOM series (pydicom), before GDCM reads it."""
    import pydicom

    from hepablate.imaging.dicom_ct import quiet_pydicom

    normals: list[np.ndarray] = []
    positions: list[float] = []
    first_iop: np.ndarray | None = None
    with quiet_pydicom():
        for f in files:
            name = Path(f).name
            try:
                ds = pydicom.dcmread(f)
            except Exception as exc:
                raise _fail(f, f"cannot read DICOM ({_first_line(exc)})") from None
            where = f"{folder} ({name})"
            try:
                ps = [float(v) for v in ds.PixelSpacing]
                iop = np.array([float(v) for v in ds.ImageOrientationPatient])
                ipp = np.array([float(v) for v in ds.ImagePositionPatient])
                rows, cols = int(ds.Rows), int(ds.Columns)
                bits = int(ds.BitsAllocated)
                spp = int(ds.get("SamplesPerPixel", 1))
                frames = int(ds.get("NumberOfFrames", 1) or 1)
            except (AttributeError, TypeError, ValueError):
                raise _fail(
                    where,
                    "PixelSpacing, ImageOrientationPatient, ImagePositionPatient, Rows, Columns "
                    "and BitsAllocated must be present and numeric",
                ) from None
            if len(ps) != 2 or not all(np.isfinite(ps)) or min(ps) <= 0:
                raise _fail(where, f"PixelSpacing must be two finite positive numbers, got {ps}")
            if iop.shape != (6,) or not np.all(np.isfinite(iop)):
                raise _fail(where, "ImageOrientationPatient must be six finite numbers")
            r, c = iop[:3], iop[3:]
            if abs(np.linalg.norm(r) - 1) > 1e-3 or abs(np.linalg.norm(c) - 1) > 1e-3:
                raise _fail(where, "ImageOrientationPatient rows are not unit vectors")
            if abs(float(r @ c)) > 1e-3:
                raise _fail(where, "ImageOrientationPatient rows are not orthogonal")
            if ipp.shape != (3,) or not np.all(np.isfinite(ipp)):
                raise _fail(where, "ImagePositionPatient must be three finite numbers")
            if rows < 1 or cols < 1 or bits not in (8, 16, 32) or spp != 1:
                raise _fail(where, "expected a scalar image of 8, 16 or 32 bits")
            for key in ("RescaleSlope", "RescaleIntercept"):
                if key in ds and not np.isfinite(float(ds[key].value)):
                    raise _fail(where, f"{key} must be finite")
            if "PixelData" not in ds:
                raise _fail(where, "no PixelData")
            ts = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
            if ts in UNCOMPRESSED_TS:
                needed = rows * cols * bits // 8 * frames
                have = len(ds.PixelData)
                if have < needed:
                    _check_size(where, have, needed)
            if first_iop is None:
                first_iop = iop
            elif not np.allclose(iop, first_iop, atol=1e-4):
                raise _fail(where, "ImageOrientationPatient differs between slices")
            normal = np.cross(r, c)
            normals.append(normal)
            positions.append(float(ipp @ normal))
    if len(positions) > 1:
        gaps = np.diff(np.sort(positions))
        if np.any(gaps < 1e-3):
            raise _fail(folder, "two slices share one ImagePositionPatient (zero slice spacing)")
        if np.ptp(gaps) > max(1e-2, 0.01 * float(np.median(gaps))):
            raise _fail(
                folder,
                f"slice spacing is not uniform ({gaps.min():.3g} to {gaps.max():.3g} mm); "
                "missing slices?",
            )


def check_image_file(path: Path) -> None:
    """Dispatch on the suffix; unknown suffixes are left to SimpleITK."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        check_nifti(path)
    elif name.endswith((".nrrd", ".nhdr")):
        check_nrrd(path)
    elif name.endswith((".mha", ".mhd")):
        check_meta(path)


# ---- native library output --------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:160] if text else type(exc).__name__).strip()


_ITK_WARNING = re.compile(r"^\s*\S+ \(0x[0-9a-f]+\): (?P<msg>.+)$", re.MULTILINE)


@contextlib.contextmanager
def native_warnings_as_errors(source: Path | str) -> Iterator[None]:
    """Capture what C/C++ libraries (ITK, GDCM) write to file descriptor 2 while the block
    runs; any warning text becomes one `InputError` naming `source` (the first message)."""
    with tempfile.TemporaryFile() as tmp:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr descriptor (embedded interpreter): nothing to capture
            yield
            return
        try:
            os.dup2(tmp.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read(65536).decode("utf-8", "replace")
        if text.strip():
            m = _ITK_WARNING.search(text)
            msg = (m.group("msg") if m else text.strip().splitlines()[-1]).strip()
            raise _fail(source, f"image library warning: {msg[:200]}")
