"""Exact distances (mm) from points and needle paths to a set of no-go voxels (LPS frame).

One `NoGoField` holds the voxels of the no-go structures held to one safety distance (the
general one, or a per-structure one of approaches.yaml). Each voxel is the box it stands for
(centre +- half the spacing along each grid axis); distances are Euclidean distances to those
boxes, exact on any grid, anisotropic included. A voxel-centred distance map preselects the
path samples that can hold the minimum (it is within two half-diagonals of the exact value); a
KD-tree of the surface voxels gives their exact distance (`PathMap` docstring).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from hepablate.core.volume import Volume


class NoGoField:
    """Distances (mm) to the no-go voxels `mask`; `labels` (same shape) holds, per voxel, the
    1-based index of its structure in the owner's name list (0: none)."""

    def __init__(self, grid: Volume, mask: np.ndarray, labels: np.ndarray, required_mm: float):
        self.grid = grid
        self.mask = mask
        self.labels = labels
        self.required_mm = float(required_mm)
        """Safety distance (mm) the structures of this field are held to."""
        spacing = np.asarray(grid.spacing_mm, float)
        self._half_diag = 0.5 * float(np.linalg.norm(spacing))
        self._tree: cKDTree | None = None
        self._surf_idx = np.zeros((0, 3), dtype=np.int64)
        if mask.any():
            dist, idx = ndimage.distance_transform_edt(
                ~mask, sampling=tuple(reversed(grid.spacing_mm)), return_indices=True
            )
            self.dist_mm = dist.astype(np.float32)
            self.nearest_label = labels[tuple(idx)]
            del idx
        else:
            self.dist_mm = np.full(mask.shape, np.inf, dtype=np.float32)
            self.nearest_label = labels

    def _index(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ijk = np.rint(self.grid.lps_to_index(pts)).astype(int)
        inside = np.all((ijk >= 0) & (ijk < np.array(self.grid.shape_ijk)), axis=-1)
        return ijk, inside

    def coarse(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance mm, label) read from the voxel-centred map at the nearest voxel; outside
        the grid: inf, 0."""
        ijk, inside = self._index(pts)
        d = np.full(len(pts), np.inf)
        lab = np.zeros(len(pts), dtype=int)
        k = ijk[inside]
        d[inside] = self.dist_mm[k[:, 2], k[:, 1], k[:, 0]]
        lab[inside] = self.nearest_label[k[:, 2], k[:, 1], k[:, 0]]
        return d, lab

    def _tree_of_surface(self) -> cKDTree | None:
        """KD-tree of the centres (LPS mm) of no-go voxels with a face on other tissue."""
        if self._tree is None and self.mask.any():
            surf = self.mask & ~ndimage.binary_erosion(self.mask, border_value=1)
            self._surf_idx = np.argwhere(surf)  # (k, j, i)
            centres = self.grid.index_to_lps(self._surf_idx[:, ::-1].astype(float))
            self._tree = cKDTree(centres)
        return self._tree

    def exact(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance mm, label) from each point to the nearest no-go voxel box; 0 inside one;
        inf, 0 without no-go voxels."""
        pts = np.atleast_2d(np.asarray(pts, float))
        d = np.full(len(pts), np.inf)
        lab = np.zeros(len(pts), dtype=int)
        tree = self._tree_of_surface()
        if tree is None:
            return d, lab
        ijk, inside = self._index(pts)
        k = ijk[inside]
        hit = np.zeros(len(pts), dtype=bool)
        hit[inside] = self.mask[k[:, 2], k[:, 1], k[:, 0]]
        d[hit] = 0.0
        kh = ijk[hit]
        lab[hit] = self.labels[kh[:, 2], kh[:, 1], kh[:, 0]]
        rest = np.flatnonzero(~hit)
        if rest.size == 0:
            return d, lab
        # Work in the grid's own axes (mm along i, j, k), where voxels are axis-aligned boxes;
        # all points at once, the few whose nearest box may lie beyond the first neighbours
        # again with more.
        rot = np.asarray(self.grid.direction, float)
        half = 0.5 * np.asarray(self.grid.spacing_mm, float)
        origin = np.asarray(self.grid.origin_lps_mm, float)
        n = len(self._surf_idx)
        q_all = (pts - origin[None, :]) @ rot
        todo = rest
        kq = min(16, n)
        while todo.size:
            dist, nn = tree.query(pts[todo], k=kq)
            dist = dist.reshape(len(todo), -1)
            nn = nn.reshape(len(todo), -1)
            idx = self._surf_idx[nn][..., ::-1].astype(float)  # (t, kq, (i, j, k))
            rel = np.abs(q_all[todo][:, None, :] - idx * (2.0 * half)) - half
            box = np.sqrt((np.maximum(rel, 0.0) ** 2).sum(axis=-1))
            best = np.argmin(box, axis=1)
            rows = np.arange(len(todo))
            bb = box[rows, best]
            # No farther centre can have a nearer box: boxes reach half a diagonal.
            done = (dist[:, -1] - self._half_diag >= bb) | (kq >= n) | (kq >= 4096)
            kk = self._surf_idx[nn[rows, best]]
            d[todo[done]] = bb[done]
            lab[todo[done]] = self.labels[kk[done, 0], kk[done, 1], kk[done, 2]]
            todo = todo[~done]
            kq = min(kq * 4, n)
        return d, lab

    def path_clearance(
        self, pts: np.ndarray, exact_above_mm: float | None = None
    ) -> tuple[float, int, int]:
        """Smallest exact clearance (mm) over the sample points of a path, the label there and
        the sample's index; the coarse map preselects the samples within reach of the
        minimum, only those get an exact distance. With `exact_above_mm`, a path whose
        clearance is surely above it (coarse minimum minus two half-diagonals) gets the coarse
        minimum instead (a clear/blocked decision at that distance stays exact)."""
        if len(pts) == 0:
            return float("inf"), 0, -1
        coarse, clab = self.coarse(pts)
        if not np.isfinite(coarse).any():
            return float("inf"), 0, -1
        if exact_above_mm is not None:
            i = int(np.argmin(coarse))
            if float(coarse[i]) - 2.0 * self._half_diag >= exact_above_mm:
                return float(coarse[i]), int(clab[i]), i
        # exact is within [coarse - 2 h, coarse + h] (h: half-diagonal): candidates for the
        # minimum are the samples with coarse <= min(coarse) + 3 h.
        cand = np.flatnonzero(coarse <= float(np.min(coarse)) + 3.0 * self._half_diag + 1e-9)
        d, lab = self.exact(pts[cand])
        i = int(np.argmin(d))
        return float(d[i]), int(lab[i]), int(cand[i])
