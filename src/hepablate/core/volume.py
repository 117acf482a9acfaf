"""`Volume`: a 3D array with its geometry in the patient frame (LPS, millimetres).

Conventions (the same as SimpleITK/ITK and DICOM):
- `array[k, j, i]`: numpy axis 0 is the slice index k, axis 2 the column index i.
- `spacing_mm`, `origin_lps_mm` and the columns of `direction` are given in (i, j, k) order.
- The physical point of voxel index (i, j, k) is
  ``origin_lps_mm + direction @ (spacing_mm * (i, j, k))``, in LPS (x to the patient's left,
  y to posterior, z to superior). NIfTI files store RAS; conversion happens in the readers
  (SimpleITK does it), never elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from hepablate.errors import InputError

Vec3 = tuple[float, float, float]


def vec3(values: Iterable[float]) -> Vec3:
    """Three floats as a typed (x, y, z) tuple (LPS mm, or a direction)."""
    x, y, z = (float(v) for v in values)
    return (x, y, z)


@dataclass(eq=False)
class Volume:
    """An image or mask on a regular grid in the patient frame (LPS, mm)."""

    array: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise ValueError(f"Volume array must be 3D, got shape {self.array.shape}")
        self.spacing_mm = tuple(float(s) for s in self.spacing_mm)  # type: ignore[assignment]
        self.origin_lps_mm = tuple(float(o) for o in self.origin_lps_mm)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)

    # ---- geometry -------------------------------------------------------------------------
    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        """Grid size in (i, j, k) order."""
        k, j, i = self.array.shape
        return (i, j, k)

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing_mm)) / 1000.0

    @property
    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) to (x, y, z, 1) in LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction @ np.diag(self.spacing_mm)
        a[:3, 3] = self.origin_lps_mm
        return a

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Continuous (i, j, k) indices, shape (..., 3), to LPS points in mm."""
        ijk = np.asarray(ijk, dtype=float)
        m = self.direction @ np.diag(self.spacing_mm)
        return ijk @ m.T + np.asarray(self.origin_lps_mm)

    def lps_to_index(self, xyz_lps_mm: np.ndarray) -> np.ndarray:
        """LPS points in mm, shape (..., 3), to continuous (i, j, k) indices."""
        xyz = np.asarray(xyz_lps_mm, dtype=float) - np.asarray(self.origin_lps_mm)
        m_inv = np.linalg.inv(self.direction @ np.diag(self.spacing_mm))
        return xyz @ m_inv.T

    def voxel_centres_lps(self) -> np.ndarray:
        """LPS coordinates of all voxel centres, shape (nk, nj, ni, 3)."""
        k, j, i = np.meshgrid(*(np.arange(n) for n in self.array.shape), indexing="ij")
        ijk = np.stack([i, j, k], axis=-1)
        return self.index_to_lps(ijk)

    def same_geometry(self, other: Volume, tol_mm: float = 1e-3) -> bool:
        return (
            self.array.shape == other.array.shape
            and np.allclose(self.spacing_mm, other.spacing_mm, atol=tol_mm)
            and np.allclose(self.origin_lps_mm, other.origin_lps_mm, atol=tol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-4)
        )

    def with_array(self, array: np.ndarray) -> Volume:
        """A new volume on the same grid."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from grid {self.array.shape}")
        return Volume(array, self.spacing_mm, self.origin_lps_mm, self.direction.copy())

    def bounding_box_lps_mm(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Axis-aligned LPS box (min, max) of the voxel centres where array is non-zero."""
        idx = np.argwhere(self.array != 0)
        if idx.size == 0:
            return None
        ijk = idx[:, ::-1].astype(float)
        corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=float)
        lo, hi = ijk.min(axis=0), ijk.max(axis=0)
        pts = self.index_to_lps(lo + corners * (hi - lo))
        return pts.min(axis=0), pts.max(axis=0)

    def centroid_lps_mm(self) -> np.ndarray:
        idx = np.argwhere(self.array != 0)
        if idx.size == 0:
            raise ValueError("empty mask has no centroid")
        return self.index_to_lps(idx[:, ::-1].mean(axis=0))

    # ---- SimpleITK bridge -----------------------------------------------------------------
    def to_sitk(self) -> sitk.Image:
        arr = self.array
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(self.spacing_mm)
        img.SetOrigin(self.origin_lps_mm)
        img.SetDirection(tuple(self.direction.ravel()))
        return img

    @classmethod
    def from_sitk(cls, img: sitk.Image, source: str | None = None) -> Volume:
        if img.GetDimension() != 3:
            raise InputError(f"expected a 3D image, got {img.GetDimension()}D", source=source)
        if img.GetNumberOfComponentsPerPixel() != 1:
            raise InputError("expected a scalar image, got a multi-component one", source=source)
        spacing = img.GetSpacing()
        if not all(np.isfinite(s) and s > 0 for s in spacing):
            raise InputError(
                f"voxel spacing must be finite and positive, got {spacing}", source=source
            )
        origin = img.GetOrigin()
        if not all(np.isfinite(o) for o in origin):
            raise InputError(f"image origin must be finite, got {origin}", source=source)
        direction = np.array(img.GetDirection(), dtype=float).reshape(3, 3)
        if not np.all(np.isfinite(direction)) or abs(abs(np.linalg.det(direction)) - 1) > 1e-3:
            raise InputError("direction cosines are not a valid rotation", source=source)
        array = sitk.GetArrayFromImage(img)
        if array.dtype.kind not in "biuf":
            raise InputError(
                f"voxel type {array.dtype} is not supported (expected integers or floats)",
                source=source,
            )
        return cls(array, spacing, origin, direction)


def resample_to(
    moving: Volume, reference: Volume, *, interpolation: str = "nearest", default: float = 0
) -> Volume:
    """Resample `moving` onto the grid of `reference` (the one place hepablate resamples).

    `interpolation` is "nearest" for masks and labels or "linear" for intensities. Both volumes
    live in LPS, so this is a pure grid change with the identity transform.
    """
    interp = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}[interpolation]
    out = sitk.Resample(moving.to_sitk(), reference.to_sitk(), sitk.Transform(), interp, default)
    arr = sitk.GetArrayFromImage(out)
    if moving.array.dtype == bool:
        arr = arr.astype(bool)
    return reference.with_array(arr)
