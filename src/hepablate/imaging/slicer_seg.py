"""3D Slicer segmentation files (`.seg.nrrd`), read and written with pynrrd.

Slicer stores a segmentation as NRRD with per-segment key/value fields (``Segment{N}_Name``,
``Segment{N}_LabelValue``, ``Segment{N}_Layer``, ``Segment{N}_Extent`` ...; see the Slicer
developer guide, "Segmentation labelmap file format"). Two layouts exist:

- labelmap: a 3D array; each segment is the voxels equal to its LabelValue;
- layered: a 4D array whose first axis (kind ``list``) holds layers; segment N is the voxels of
  layer ``Segment{N}_Layer`` equal to its LabelValue. Segments may then overlap.

Files in ``right-anterior-superior`` space are converted to LPS on read (x and y negated).
"""

from __future__ import annotations

from pathlib import Path

import nrrd
import numpy as np

from hepablate.anatomy.vocabulary import base_name
from hepablate.core.volume import Volume
from hepablate.errors import InputError
from hepablate.imaging.segments import Segment

_LPS = "left-posterior-superior"
#: Space name -> sign flips that take its coordinates to LPS.
_SPACES = {
    _LPS: np.array([1.0, 1.0, 1.0]),
    "lps": np.array([1.0, 1.0, 1.0]),
    "right-anterior-superior": np.array([-1.0, -1.0, 1.0]),
    "ras": np.array([-1.0, -1.0, 1.0]),
}

#: Display colours (RGB 0-1) by structure name; others get grey. Slicer's defaults look alike.
DISPLAY_COLOURS = {
    "liver": (0.87, 0.51, 0.40),
    "tumour": (0.56, 0.93, 0.56),
    "portal_vein": (0.00, 0.59, 0.81),
    "hepatic_vein": (0.00, 0.35, 0.70),
    "hepatic_artery": (0.85, 0.20, 0.20),
    "ivc": (0.00, 0.46, 0.74),
    "aorta": (0.88, 0.22, 0.16),
    "bile_duct": (0.85, 0.85, 0.20),
    "gallbladder": (0.54, 0.70, 0.30),
    "body": (0.96, 0.84, 0.70),
}


def _fail(path: Path, message: str) -> InputError:
    return InputError(message, source=str(path))


def _segment_indices(header: dict) -> list[int]:
    out = set()
    for key in header:
        if key.startswith("Segment") and key.endswith("_Name"):
            mid = key[len("Segment") : -len("_Name")]
            if mid.isdigit():
                out.add(int(mid))
    return sorted(out)


def _int_field(header: dict, key: str, default: int | None, path: Path) -> int:
    raw = header.get(key)
    if raw is None:
        if default is None:
            raise _fail(path, f"field '{key}' missing")
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise _fail(path, f"field '{key}' must be an integer, got '{raw}'") from None


def read_slicer_seg(path: Path) -> list[Segment]:
    """Read a Slicer `.seg.nrrd` (labelmap or layered layout) into boolean LPS segments.

    `Segment.number` is the segment's LabelValue; `name` its Segment{N}_Name.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        data, header = nrrd.read(str(path))
    except Exception as exc:  # pynrrd raises several types for corrupt files
        msg = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise _fail(path, f"cannot read NRRD ({msg})") from None
    space = str(header.get("space", "")).strip().lower()
    if space not in _SPACES:
        raise _fail(
            path,
            f"field 'space' is '{header.get('space', '')}'; expected left-posterior-superior "
            "or right-anterior-superior",
        )
    flip = _SPACES[space]
    if data.ndim == 3:
        layers = data[None]
        list_axis = False
    elif data.ndim == 4:
        layers = data
        list_axis = True
    else:
        raise _fail(path, f"expected a 3D or 4D segmentation, got {data.ndim}D")
    if not np.issubdtype(layers.dtype, np.integer):
        if not np.all(np.isfinite(layers)) or np.any(layers != np.round(layers)):
            raise _fail(path, "segmentation values must be integer labels")
        layers = layers.astype(np.int64)
    dirs = (
        np.asarray(header.get("space directions"), dtype=float)
        if "space directions" in header
        else None
    )
    if dirs is None or dirs.ndim != 2 or dirs.shape[1] != 3:
        raise _fail(path, "field 'space directions' missing or malformed")
    if list_axis:
        if dirs.shape[0] != 4:
            raise _fail(path, "field 'space directions' must have 4 entries for a 4D file")
        if np.all(np.isfinite(dirs[0])):
            raise _fail(path, "the first axis of a 4D .seg.nrrd must be the layer list ('none')")
        dirs = dirs[1:]
    if dirs.shape[0] != 3 or not np.all(np.isfinite(dirs)):
        raise _fail(
            path, f"field 'space directions' must hold 3 finite vectors, got {dirs.tolist()}"
        )
    spacing = np.linalg.norm(dirs, axis=1)
    if np.any(spacing <= 0):
        raise _fail(path, f"voxel spacing must be positive, got {spacing.tolist()}")
    direction = (dirs / spacing[:, None]).T * flip[:, None]
    if abs(abs(np.linalg.det(direction)) - 1.0) > 1e-3:
        raise _fail(path, "field 'space directions' is not a valid rotation with spacing")
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float).reshape(-1)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise _fail(path, f"field 'space origin' must be 3 finite numbers, got {origin.tolist()}")
    origin = origin * flip
    # pynrrd returns (layers, i, j, k) in Fortran index order; Volume wants [k, j, i].
    arrays = np.transpose(layers, (0, 3, 2, 1))
    indices = _segment_indices(header)
    if not indices:
        raise _fail(path, "no Segment{N}_Name fields: not a 3D Slicer segmentation")
    segments: list[Segment] = []
    for n in indices:
        name = str(header[f"Segment{n}_Name"]).strip()
        label = _int_field(header, f"Segment{n}_LabelValue", 1, path)
        layer = _int_field(header, f"Segment{n}_Layer", n if list_axis else 0, path)
        if not 0 <= layer < arrays.shape[0]:
            raise _fail(
                path, f"field 'Segment{n}_Layer' is {layer}; the file has {arrays.shape[0]} layers"
            )
        mask = arrays[layer] == label
        segments.append(
            Segment(label, name, Volume(mask, tuple(spacing), tuple(origin), direction))
        )
    return segments


def _extent(mask: np.ndarray) -> str:
    idx = np.argwhere(mask)
    if idx.size == 0:
        return "0 -1 0 -1 0 -1"  # Slicer's notation for an empty extent
    lo, hi = idx.min(axis=0)[::-1], idx.max(axis=0)[::-1]
    return " ".join(f"{a} {b}" for a, b in zip(lo, hi, strict=True))


def write_slicer_seg(masks: dict[str, np.ndarray], grid: Volume, path: Path) -> Path:
    """Write boolean masks ([k, j, i] on `grid`) as a Slicer `.seg.nrrd` in LPS.

    Non-overlapping masks go to one 3D labelmap (label values 1, 2, ... in dict order);
    overlapping masks to the layered layout with one layer per segment (label value 1).
    """
    path = Path(path)
    if not masks:
        raise ValueError("no masks to write")
    names = list(masks)
    stack = []
    for name in names:
        m = np.asarray(masks[name], dtype=bool)
        if m.shape != grid.array.shape:
            raise ValueError(f"mask '{name}' has shape {m.shape}, grid {grid.array.shape}")
        stack.append(m)
    overlap = np.sum(stack, axis=0, dtype=np.int32).max() > 1
    header: dict[str, object] = {"space": _LPS}
    axes = (grid.direction @ np.diag(grid.spacing_mm)).T  # one row per i, j, k axis
    if overlap:
        data = np.stack([m.transpose(2, 1, 0) for m in stack]).astype(np.uint8)
        header["kinds"] = ["list", "domain", "domain", "domain"]
        header["space directions"] = np.vstack([np.full(3, np.nan), axes])
        labels = [1] * len(names)
        layers = list(range(len(names)))
    else:
        dtype = np.uint8 if len(names) < 256 else np.uint16
        lm = np.zeros(grid.array.shape, dtype=dtype)
        for value, m in enumerate(stack, start=1):
            lm[m] = value
        data = lm.transpose(2, 1, 0)
        header["kinds"] = ["domain", "domain", "domain"]
        header["space directions"] = axes
        labels = list(range(1, len(names) + 1))
        layers = [0] * len(names)
    header["space origin"] = np.asarray(grid.origin_lps_mm, dtype=float)
    header["encoding"] = "gzip"
    for n, name in enumerate(names):
        rgb = DISPLAY_COLOURS.get(base_name(name), (0.5, 0.5, 0.5))
        header[f"Segment{n}_Color"] = " ".join(f"{c:g}" for c in rgb)
        header[f"Segment{n}_ColorAutoGenerated"] = "0"
        header[f"Segment{n}_Extent"] = _extent(stack[n])
        header[f"Segment{n}_ID"] = f"Segment_{n + 1}"
        header[f"Segment{n}_LabelValue"] = str(labels[n])
        header[f"Segment{n}_Layer"] = str(layers[n])
        header[f"Segment{n}_Name"] = name
        header[f"Segment{n}_NameAutoGenerated"] = "0"
        header[f"Segment{n}_Tags"] = "|"
    header["Segmentation_ContainedRepresentationNames"] = "Binary labelmap|"
    header["Segmentation_MasterRepresentation"] = "Binary labelmap"
    header["Segmentation_ReferenceImageExtentOffset"] = "0 0 0"
    path.parent.mkdir(parents=True, exist_ok=True)
    nrrd.write(str(path), np.ascontiguousarray(data), header, compression_level=6)
    return path
