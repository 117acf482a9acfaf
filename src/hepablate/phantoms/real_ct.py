"""Planning cases on a real CT: synthetic tumours inserted into a real segmented liver.

The data are the TotalSegmentator test reference files in `examples/real-ct/` (a real
abdominal CT, 3 mm isotropic, and its multi-label segmentation on the first 30 axial slices;
Apache License 2.0, attribution in that folder's README). The builder

- crops the CT to the segmented slices (elsewhere the CT has organs that no label marks: a
  path there could not be checked, so those slices are left out and the body is cut by the top
  and bottom faces of the grid, where `PathMap` gives no skin entry). The example's
  segmentation header puts it on the CT's first 30 slices (the pelvis) but its labels fit the
  last 30 (`EXAMPLE_SLICE_OFFSET`); the slab is placed where it fits (`find_slice_offset`);
- derives the body surface from the CT: HU above `BODY_HU`, holes filled slice by slice, the
  largest connected component (the couch is left out);
- maps the TotalSegmentator labels to hepablate structure names
  (`TOTALSEGMENTATOR_TO_HEPABLATE`);
- inserts a spherical tumour into the liver at a named position (`REAL_CT_POSITIONS`), found
  from distance maps of the real anatomy, and carves it out of the liver as a label map would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from hepablate.anatomy.containment import normalise_containment
from hepablate.case.model import Case
from hepablate.core.volume import Volume, vec3
from hepablate.errors import InputError

#: TotalSegmentator v2 "total" labels present in the example, as hepablate structures. Labels
#: 8 and 9 (adrenal glands) have no hepablate structure and stay soft tissue in the body.
TOTALSEGMENTATOR_TO_HEPABLATE: dict[int, str] = {
    1: "spleen",
    2: "kidney",  # right
    3: "kidney",  # left
    4: "gallbladder",
    5: "liver",
    6: "stomach",
    7: "pancreas",
    10: "lung",  # upper lobe left
    11: "lung",  # lower lobe left
    12: "lung",  # upper lobe right
    13: "lung",  # middle lobe right
    14: "lung",  # lower lobe right
    18: "bowel",  # small bowel
    19: "duodenum",
    20: "colon",
    30: "bone",  # vertebra L2
    31: "bone",  # L1
    32: "bone",  # T12
    33: "bone",  # T11
    52: "aorta",
    63: "ivc",
    64: "portal_vein",  # portal and splenic vein
    79: "bone",  # spinal cord: inside the vertebral canal, no-go either way
    86: "muscle",  # autochthon left
    87: "muscle",  # autochthon right
    88: "muscle",  # iliopsoas left
    89: "muscle",  # iliopsoas right
    **{n: "bone" for n in range(92, 116)},  # ribs left 1-12 (92-103), right 1-12 (104-115)
    116: "bone",  # sternum
    117: "cartilage",  # costal cartilages
}
RIB_LABELS = frozenset(range(92, 116)) | {117}

#: Body surface threshold (HU): above air and lung, below fat.
BODY_HU = -400.0

#: Named tumour positions in the real liver.
REAL_CT_POSITIONS: dict[str, str] = {
    "portal": "abutting the portal vein, as deep in the liver as possible",
    "under_ribs": "inside the liver as close as possible to a rib or costal cartilage",
    "subcapsular": "touching the anterior liver capsule (centre 0.6 radius deep)",
    "central": "at the deepest point of the liver",
    "gallbladder": "abutting the gallbladder",
    "ivc": "abutting the IVC",
}


def default_real_ct_dir() -> Path:
    """`examples/real-ct` of the source tree this module is in."""
    return Path(__file__).resolve().parents[3] / "examples" / "real-ct"


def load_real_ct(data_dir: str | Path | None = None) -> tuple[Volume, np.ndarray]:
    """(CT Volume cropped to the segmented slices, label array on it) from the example files."""
    from hepablate.imaging.images import read_image

    d = Path(data_dir) if data_dir is not None else default_real_ct_dir()
    ct_path, seg_path = d / "example_ct.nii.gz", d / "example_seg.nii.gz"
    for p in (ct_path, seg_path):
        if not p.exists():
            raise InputError("real-CT example file not found", source=str(p))
    ct = read_image(ct_path)
    seg = read_image(seg_path)
    if not (
        np.allclose(seg.spacing_mm, ct.spacing_mm)
        and np.allclose(seg.direction, ct.direction)
        and seg.array.shape[1:] == ct.array.shape[1:]
    ):
        raise InputError("segmentation is not on the CT's voxel lattice", source=str(seg_path))
    k0 = find_slice_offset(ct.array, seg.array)
    nk = seg.array.shape[0]
    grid = Volume(
        ct.array[k0 : k0 + nk].astype(np.int16),
        ct.spacing_mm,
        vec3(ct.index_to_lps(np.array([0.0, 0.0, float(k0)]))),
        ct.direction.copy(),
    )
    return grid, seg.array.astype(np.int32)


#: Where the example segmentation belongs on the CT: its 30 slices are the CT's slices 82 to
#: 111 (the top of an abdomen-pelvis CT: T11 to L2, lung bases, liver, kidneys), although its
#: header gives the CT's own origin (slices 0 to 29, the pelvis). Found by
#: `find_slice_offset`: at offset 82, 99 % of the liver voxels have liver CT numbers (0 to
#: 150 HU) and 93 % of the lung voxels are below -500 HU; at the header's offset 0, 45 % and 7 %.
EXAMPLE_SLICE_OFFSET = 82


def segmentation_fit(ct: np.ndarray, seg: np.ndarray, offset: int) -> float:
    """How well a label slab fits the CT at a slice offset: the fraction of liver voxels (5)
    with 0 to 150 HU plus the fraction of lung voxels (10 to 14) below -500 HU."""
    sub = ct[offset : offset + seg.shape[0]]
    liver = seg == 5
    lung = np.isin(seg, [10, 11, 12, 13, 14])
    f = 0.0
    if liver.any():
        f += float(np.mean((sub[liver] > 0) & (sub[liver] < 150)))
    if lung.any():
        f += float(np.mean(sub[lung] < -500))
    return f


def find_slice_offset(ct: np.ndarray, seg: np.ndarray) -> int:
    """The slice offset at which a segmentation slab (same in-plane lattice) fits the CT best
    (`segmentation_fit`); the first best, so deterministic."""
    n = ct.shape[0] - seg.shape[0]
    if n < 0:
        raise InputError("segmentation has more slices than the CT")
    fits = [segmentation_fit(ct, seg, o) for o in range(n + 1)]
    return int(np.argmax(fits))


def body_from_ct(ct: np.ndarray, threshold_hu: float = BODY_HU) -> np.ndarray:
    """The patient outline: CT above the threshold, holes filled slice by slice (axial), the
    largest connected component."""
    m = ct > threshold_hu
    m = np.stack([ndimage.binary_fill_holes(s) for s in m])
    lab, n = ndimage.label(m)
    if n == 0:
        return m
    sizes = ndimage.sum_labels(m, lab, index=np.arange(1, n + 1))
    return lab == (int(np.argmax(sizes)) + 1)


def _structures(labels: np.ndarray, ct: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"body": body_from_ct(ct)}
    for value, name in TOTALSEGMENTATOR_TO_HEPABLATE.items():
        m = labels == value
        if m.any():
            out[name] = out.get(name, np.zeros(labels.shape, bool)) | m
    return out


def _pick(score: np.ndarray, ok: np.ndarray, what: str) -> tuple[int, int, int]:
    if not ok.any():
        raise ValueError(f"no place in this liver for a tumour {what}")
    s = np.where(ok, score, -np.inf)
    flat = int(np.argmax(s))  # first maximum: deterministic
    k, j, i = np.unravel_index(flat, s.shape)
    return int(k), int(j), int(i)


def build_real_ct_case(
    position: str = "portal",
    diameter_mm: float = 20.0,
    *,
    margin_mm: float = 5.0,
    data_dir: str | Path | None = None,
) -> Case:
    """A planning case on the real CT with a spherical tumour at `position`."""
    if position not in REAL_CT_POSITIONS:
        raise ValueError(
            f"unknown position '{position}'; expected one of {', '.join(REAL_CT_POSITIONS)}"
        )
    grid, labels = load_real_ct(data_dir)
    s = _structures(labels, grid.array)
    sampling = tuple(grid.spacing_mm[::-1])
    liver = s["liver"]
    r = diameter_mm / 2.0
    # Depth inside the liver, the grid faces counting as outside (the liver is cut by them).
    depth = ndimage.distance_transform_edt(np.pad(liver, 1), sampling=sampling)[1:-1, 1:-1, 1:-1]

    def dist_to(m: np.ndarray) -> np.ndarray:
        return ndimage.distance_transform_edt(~m, sampling=sampling)

    tol = max(grid.spacing_mm)  # one voxel
    # Abutting a structure: centre r + half a voxel from it (the sphere's voxels touch it).
    if position == "portal":
        d = dist_to(s["portal_vein"])
        ok = liver & (np.abs(d - r - 0.5 * tol) <= 0.5 * tol) & (depth >= 0.8 * r)
        kji = _pick(depth, ok, "next to the portal vein")
    elif position == "under_ribs":
        ribs = np.isin(labels, list(RIB_LABELS))
        d = dist_to(ribs)
        ok = liver & (depth >= r + 0.5 * tol)
        kji = _pick(-d, ok, "under the ribs")
    elif position == "subcapsular":
        ok = liver & (np.abs(depth - 0.6 * r) <= 0.5 * tol)
        nogo_far = dist_to(s["gallbladder"] | s["portal_vein"] | s["ivc"]) >= r + tol
        y = grid.voxel_centres_lps()[..., 1]
        kji = _pick(-y, ok & nogo_far, "at the capsule")  # the most anterior
    elif position == "central":
        kji = _pick(depth, liver, "in the liver")
    elif position == "gallbladder":
        d = dist_to(s["gallbladder"])
        ok = liver & (np.abs(d - r - 0.5 * tol) <= 0.5 * tol) & (depth >= 0.7 * r)
        kji = _pick(depth, ok, "next to the gallbladder")
    else:  # ivc
        d = dist_to(s["ivc"])
        ok = liver & (np.abs(d - r - 0.5 * tol) <= 0.5 * tol) & (depth >= 0.7 * r)
        kji = _pick(depth, ok, "next to the IVC")
    centre = grid.index_to_lps(np.array(kji[::-1], float))
    pts = grid.voxel_centres_lps()
    sphere = ((pts - centre) ** 2).sum(axis=-1) <= r**2
    vessels = s["portal_vein"] | s["ivc"] | s["aorta"]
    tumour = sphere & s["body"] & ~vessels & ~s.get("gallbladder", np.zeros_like(sphere))
    for key in list(s):
        if key not in ("body",):
            s[key] = s[key] & ~tumour
    s["tumour:T1"] = tumour
    normalise_containment(s)
    return Case(
        case_id=f"real-ct-{position}",
        grid=grid,
        structures=s,
        target_id="T1",
        margin_mm=margin_mm,
        ct=grid,
        notes=[
            "real CT (TotalSegmentator test reference files, Apache License 2.0) with a "
            f"synthetic {diameter_mm:g} mm tumour {REAL_CT_POSITIONS[position]}"
        ],
    )


def write_real_ct_cases(
    out_dir: str | Path,
    positions: list[str] | None = None,
    diameter_mm: float = 20.0,
    data_dir: str | Path | None = None,
) -> list[Path]:
    """Write one case directory per position under `out_dir` (NIfTI label map + CT); returns
    the case.yaml paths."""
    from hepablate.case.writer import write_case

    out = Path(out_dir)
    paths = []
    for p in positions or list(REAL_CT_POSITIONS):
        case = build_real_ct_case(p, diameter_mm, data_dir=data_dir)
        paths.append(
            write_case(
                case,
                out / case.case_id,
                "nifti",
                description=f"{case.notes[0]}; from examples/real-ct (see its README)",
            )
        )
    return paths
