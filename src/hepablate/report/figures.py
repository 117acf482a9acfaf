"""Reusable report figures (matplotlib, Agg backend) returning PNG bytes.

All take volumes on one grid (LPS mm, array order k, j, i). Views: axial (image x = LPS x,
so the patient's right is on the image left as in radiology; anterior up), coronal (superior
up) and sagittal (superior up, anterior left). Overlays are masks drawn as outlines or
translucent fills; a scalar map (CT, field, temperature, damage) can be the background.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402
from scipy import ndimage  # noqa: E402

from hepablate.core.volume import Volume  # noqa: E402


@dataclass
class Overlay:
    mask: np.ndarray
    colour: str
    label: str
    fill: bool = False
    linestyle: str = "-"
    alpha: float = 0.3


@dataclass
class Background:
    array: np.ndarray
    cmap: str = "gray"
    vmin: float | None = None
    vmax: float | None = None
    label: str = ""
    colorbar: bool = False


@dataclass
class Needle:
    """A needle drawn as its path (entry to tip, thin) and its active part (thick)."""

    start_lps_mm: np.ndarray
    tip_lps_mm: np.ndarray
    active_start_lps_mm: np.ndarray
    label: str = ""
    colour: str = "black"


def lps_aligned(grid: Volume, arrays: list[np.ndarray]) -> tuple[Volume, list[np.ndarray]]:
    """`grid` and `arrays` (on it, k, j, i) flipped so that i, j, k run along +x, +y, +z, for
    a grid whose direction is a diagonal of +-1 (e.g. a CT stored with x and y reversed); the
    slice views draw index order as LPS order, so without this such a CT would be shown
    mirrored. Other grids are returned as they are."""
    d = np.asarray(grid.direction, float)
    if not np.allclose(np.abs(d), np.eye(3)) or np.all(np.diag(d) > 0):
        return grid, arrays
    flips = [a for a in range(3) if d[a, a] < 0]  # index axes i, j, k = array axes 2, 1, 0
    far = np.array([grid.shape_ijk[a] - 1 if a in flips else 0 for a in range(3)], float)
    axes = tuple(2 - a for a in flips)
    out = Volume(
        np.flip(grid.array, axis=axes),
        grid.spacing_mm,
        tuple(float(v) for v in grid.index_to_lps(far)),  # type: ignore[arg-type]
        np.eye(3),
    )
    return out, [np.flip(np.asarray(a), axis=axes) for a in arrays]


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _view(grid: Volume, axis: str, index: int, arr: np.ndarray) -> tuple[np.ndarray, list]:
    """2D slice and its imshow extent (mm) for axis in {'axial', 'coronal', 'sagittal'}."""
    sx, sy, sz = grid.spacing_mm
    ox, oy, oz = grid.origin_lps_mm
    nk, nj, ni = arr.shape
    if axis == "axial":
        img = arr[index]
        ext = [ox - sx / 2, ox + (ni - 0.5) * sx, oy + (nj - 0.5) * sy, oy - sy / 2]
    elif axis == "coronal":
        img = arr[:, index, :]
        ext = [ox - sx / 2, ox + (ni - 0.5) * sx, oz - sz / 2, oz + (nk - 0.5) * sz]
    else:
        img = arr[:, :, index]
        ext = [oy - sy / 2, oy + (nj - 0.5) * sy, oz - sz / 2, oz + (nk - 0.5) * sz]
    return img, ext


def _plane_coords(axis: str, p: np.ndarray) -> tuple[float, float]:
    if axis == "axial":
        return float(p[0]), float(p[1])
    if axis == "coronal":
        return float(p[0]), float(p[2])
    return float(p[1]), float(p[2])


#: Patient-frame letter of each LPS axis direction (+x left, +y posterior, +z superior).
_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))


def orientation_letter(v: ArrayLike) -> str:
    """The patient direction of an LPS vector: its dominant axis letter, with a second
    letter where another axis holds more than 40 % of it (e.g. 'L', 'PS')."""
    v = np.asarray(v, float) / max(float(np.linalg.norm(v)), 1e-12)
    order = np.argsort(-np.abs(v))
    out = ""
    for k in order[:2]:
        if k == order[0] or abs(v[k]) > 0.4:
            out += _LETTERS[k][int(v[k] > 0)]
    return out


def draw_orientation(ax, right_lps: ArrayLike, up_lps: ArrayLike) -> None:
    """Letters at the middle of each image edge: the patient direction that edge faces."""
    style = {"fontsize": 10, "fontweight": "bold", "color": "#ffd700", "transform": ax.transAxes}
    box = {"boxstyle": "round,pad=0.1", "fc": "black", "ec": "none", "alpha": 0.55}
    r, u = np.asarray(right_lps, float), np.asarray(up_lps, float)
    for text, x, y, ha, va in (
        (orientation_letter(r), 0.985, 0.5, "right", "center"),
        (orientation_letter(-r), 0.015, 0.5, "left", "center"),
        (orientation_letter(u), 0.5, 0.985, "center", "top"),
        (orientation_letter(-u), 0.5, 0.015, "center", "bottom"),
    ):
        ax.text(x, y, text, ha=ha, va=va, bbox=box, **style)


#: (image right, image up) of each view in LPS: radiological convention, the patient's right
#: on the viewer's left in axial and coronal views; anterior up (axial), superior up.
VIEW_AXES = {
    "axial": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
}

_AXIS_LABELS = {
    "axial": ("x (mm)  patient right <-> left", "y (mm)  anterior (up)"),
    "coronal": ("x (mm)  patient right <-> left", "z (mm)  superior (up)"),
    "sagittal": ("y (mm)  anterior <-> posterior", "z (mm)  superior (up)"),
}


def orthogonal_slices(
    grid: Volume,
    centre_lps_mm: np.ndarray,
    overlays: list[Overlay],
    background: Background | None = None,
    needles: list[Needle] | None = None,
    title: str = "",
) -> bytes:
    """Axial, coronal and sagittal slices through `centre_lps_mm` with overlays and needles
    (needles are projected onto each plane; thick where active)."""
    import dataclasses

    arrays = [o.mask for o in overlays] + ([background.array] if background is not None else [])
    grid, arrays = lps_aligned(grid, arrays)
    overlays = [dataclasses.replace(o, mask=m) for o, m in zip(overlays, arrays, strict=False)]
    if background is not None:
        background = dataclasses.replace(background, array=arrays[-1])
    ijk = np.rint(grid.lps_to_index(np.asarray(centre_lps_mm, float))).astype(int)
    ijk = np.clip(ijk, 0, np.array(grid.shape_ijk) - 1)
    index = {"axial": ijk[2], "coronal": ijk[1], "sagittal": ijk[0]}
    with_bar = background is not None and background.colorbar
    fig, axes = plt.subplots(1, 3, figsize=(15.5 if with_bar else 13, 4.6))
    if with_bar:
        fig.subplots_adjust(wspace=0.5)
    for ax, name in zip(axes, ("axial", "coronal", "sagittal"), strict=True):
        _draw_plane(ax, grid, name, index[name], overlays, background, needles)
        pos = {"axial": 2, "coronal": 1, "sagittal": 0}[name]
        val = grid.index_to_lps(ijk.astype(float))[pos]
        ax.set_title(f"{name} ({'xyz'[pos]} = {val:.0f} mm)", fontsize=10)
    _legend(fig, overlays, needles)
    if title:
        fig.suptitle(title, fontsize=11)
    return png_bytes(fig)


def _draw_plane(ax, grid, name, idx, overlays, background, needles) -> None:
    if background is not None:
        img, ext = _view(grid, name, idx, background.array)
        im = ax.imshow(
            img,
            cmap=background.cmap,
            vmin=background.vmin,
            vmax=background.vmax,
            extent=ext,
            origin="upper" if name == "axial" else "lower",
            interpolation="nearest",
        )
        if background.colorbar:
            cb = plt.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            cb.set_label(background.label, fontsize=8)
    for ov in overlays:
        img, ext = _view(grid, name, idx, ov.mask.astype(float))
        if not img.any():
            continue
        origin = "upper" if name == "axial" else "lower"
        if ov.fill:
            rgba = np.zeros((*img.shape, 4))
            rgba[..., :3] = matplotlib.colors.to_rgb(ov.colour)
            rgba[..., 3] = ov.alpha * img
            ax.imshow(rgba, extent=ext, origin=origin, interpolation="nearest")
        # Contour coordinates follow the extent; flip rows for the 'upper' origin.
        h, w = img.shape
        xs = np.linspace(ext[0], ext[1], w + 1)[:-1] + (ext[1] - ext[0]) / (2 * w)
        if origin == "upper":
            ys = np.linspace(ext[3], ext[2], h + 1)[:-1] + (ext[2] - ext[3]) / (2 * h)
        else:
            ys = np.linspace(ext[2], ext[3], h + 1)[:-1] + (ext[3] - ext[2]) / (2 * h)
        ax.contour(
            xs, ys, img, levels=[0.5], colors=[ov.colour], linewidths=1.3, linestyles=ov.linestyle
        )
    for nd in needles or []:
        a = _plane_coords(name, nd.start_lps_mm)
        b = _plane_coords(name, nd.tip_lps_mm)
        c = _plane_coords(name, nd.active_start_lps_mm)
        ax.plot([a[0], b[0]], [a[1], b[1]], color=nd.colour, lw=0.6, alpha=0.6)
        ax.plot([c[0], b[0]], [c[1], b[1]], color=nd.colour, lw=2.2)
        ax.plot(*b, marker="o", ms=3, color=nd.colour)
        if nd.label:
            ax.annotate(
                nd.label, b, fontsize=7, color=nd.colour, xytext=(3, 3), textcoords="offset points"
            )
    if background is not None or overlays:
        _, ext = _view(
            grid, name, idx, (background.array if background is not None else overlays[0].mask)
        )
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
    ax.set_xlabel(_AXIS_LABELS[name][0], fontsize=8)
    ax.set_ylabel(_AXIS_LABELS[name][1], fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_aspect("equal")
    draw_orientation(ax, *VIEW_AXES[name])


def _legend(fig, overlays, needles) -> None:
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Artist] = []
    for ov in overlays:
        if ov.fill:
            handles.append(
                Patch(facecolor=ov.colour, alpha=0.5, edgecolor=ov.colour, label=ov.label)
            )
        else:
            handles.append(Line2D([], [], color=ov.colour, ls=ov.linestyle, label=ov.label))
    if needles:
        c = needles[0].colour
        handles.append(Line2D([], [], color=c, lw=2.2, label="needle (thick: active part)"))
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(len(handles), 7),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, -0.04),
    )


def oblique_slice(
    grid: Volume,
    origin_lps_mm: np.ndarray,
    axis_u: np.ndarray,
    axis_v: np.ndarray,
    half_size_mm: tuple[float, float],
    overlays: list[Overlay],
    background: Background | None = None,
    needles: list[Needle] | None = None,
    title: str = "",
    u_label: str = "across probes (mm)",
    v_label: str = "along probes (mm)",
    step_mm: float = 0.5,
    marks: list[tuple[np.ndarray, str]] | None = None,
    figsize: tuple[float, float] = (6.4, 5.6),
) -> bytes:
    """The plane through `origin_lps_mm` spanned by unit vectors u (image right) and v (image
    up), e.g. the probe axis and the line through two probes, resampled (nearest for masks,
    linear for the background), with the patient direction of each edge lettered. `marks`:
    points (LPS mm) drawn as crosses with a label (e.g. the tip positions of pull-backs)."""
    u = np.asarray(axis_u, float) / np.linalg.norm(axis_u)
    v = np.asarray(axis_v, float) / np.linalg.norm(axis_v)
    su = np.arange(-half_size_mm[0], half_size_mm[0] + 1e-9, step_mm)
    sv = np.arange(-half_size_mm[1], half_size_mm[1] + 1e-9, step_mm)
    uu, vv = np.meshgrid(su, sv)
    pts = np.asarray(origin_lps_mm, float) + uu[..., None] * u + vv[..., None] * v
    ijk = grid.lps_to_index(pts.reshape(-1, 3))
    coords = ijk[:, ::-1].T  # k, j, i

    def sample(arr: np.ndarray, order: int) -> np.ndarray:
        return ndimage.map_coordinates(
            arr.astype(np.float32),
            coords,
            order=order,
            mode="constant",
            cval=np.nan if order else 0.0,
        ).reshape(uu.shape)

    fig, ax = plt.subplots(figsize=figsize)
    ext = (float(su[0]), float(su[-1]), float(sv[0]), float(sv[-1]))
    if background is not None:
        img = sample(background.array, 1)
        # Outside the image: shown as air, not as paper.
        cmap = plt.get_cmap(background.cmap).with_extremes(bad="black")
        im = ax.imshow(
            img,
            cmap=cmap,
            vmin=background.vmin,
            vmax=background.vmax,
            extent=ext,
            origin="lower",
            interpolation="bilinear",
        )
        if background.colorbar:
            plt.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label(background.label)
    for ov in overlays:
        img = sample(ov.mask, 0)
        if not img.any():
            continue
        if ov.fill:
            rgba = np.zeros((*img.shape, 4))
            rgba[..., :3] = matplotlib.colors.to_rgb(ov.colour)
            rgba[..., 3] = ov.alpha * img
            ax.imshow(rgba, extent=ext, origin="lower", interpolation="nearest")
        ax.contour(
            su, sv, img, levels=[0.5], colors=[ov.colour], linewidths=1.3, linestyles=ov.linestyle
        )
    o = np.asarray(origin_lps_mm, float)
    for nd in needles or []:

        def proj(p):
            d = np.asarray(p, float) - o
            return float(d @ u), float(d @ v), float(abs(d @ np.cross(u, v)))

        a, b, c = proj(nd.start_lps_mm), proj(nd.tip_lps_mm), proj(nd.active_start_lps_mm)
        if b[2] > 3.0:  # probe not in this plane: mark faintly
            ax.plot([c[0], b[0]], [c[1], b[1]], color=nd.colour, lw=1.0, ls=":", alpha=0.7)
            continue
        ax.plot([a[0], b[0]], [a[1], b[1]], color=nd.colour, lw=0.6, alpha=0.6)
        ax.plot([c[0], b[0]], [c[1], b[1]], color=nd.colour, lw=2.2)
        if nd.label:
            ax.annotate(nd.label, b[:2], fontsize=7, xytext=(3, 3), textcoords="offset points")
    for p, lab in marks or []:
        d = np.asarray(p, float) - o
        ax.plot(float(d @ u), float(d @ v), "x", color="white", ms=6, mew=1.5)
        if lab:
            ax.annotate(
                lab,
                (float(d @ u), float(d @ v)),
                fontsize=7,
                color="white",
                xytext=(5, -3),
                textcoords="offset points",
            )
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_xlabel(u_label, fontsize=8)
    ax.set_ylabel(v_label, fontsize=8)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    draw_orientation(ax, u, v)
    if title:
        ax.set_title(title, fontsize=10)
    _legend(fig, overlays, needles)
    return png_bytes(fig)


def view_3d(
    grid: Volume,
    surfaces: list[Overlay],
    needles: list[Needle] | None = None,
    title: str = "",
    step: int = 2,
) -> bytes:
    """3D view: marching-cubes surfaces (skimage) of each mask, needles as lines."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    from skimage.measure import marching_cubes

    fig = plt.figure(figsize=(6.8, 6.0))
    ax = fig.add_subplot(111, projection="3d")
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for s in surfaces:
        m = s.mask.astype(bool)
        if m.sum() < 8:
            continue
        sl = ndimage.find_objects(m.astype(np.uint8))[0]
        sub = np.pad(m[sl], 1).astype(np.float32)
        try:
            verts, faces, _, _ = marching_cubes(sub, 0.5, step_size=step)
        except (ValueError, RuntimeError):
            continue
        off = np.array([x.start for x in sl], float) - 1.0
        kji = verts + off
        pts = grid.index_to_lps(kji[:, ::-1])
        lo = np.minimum(lo, pts.min(axis=0))
        hi = np.maximum(hi, pts.max(axis=0))
        coll = Poly3DCollection(pts[faces], alpha=s.alpha, facecolor=s.colour, edgecolor="none")
        ax.add_collection3d(coll)
    for nd in needles or []:
        c, b = np.asarray(nd.active_start_lps_mm), np.asarray(nd.tip_lps_mm)
        a = np.asarray(nd.start_lps_mm)
        # Show the shaft only near the target (the full path would dwarf the view).
        a = b + (a - b) * min(1.0, 40.0 / max(float(np.linalg.norm(a - b)), 1e-9))
        ax.plot(*zip(a, b, strict=True), color="0.3", lw=0.8)
        ax.plot(*zip(c, b, strict=True), color=nd.colour, lw=2.5)
        lo = np.minimum(lo, np.minimum(a, b))
        hi = np.maximum(hi, np.maximum(a, b))
    if np.all(np.isfinite(lo)):
        ctr = (lo + hi) / 2
        r = float((hi - lo).max()) / 2 + 2
        ax.set_xlim(ctr[0] - r, ctr[0] + r)
        ax.set_ylim(ctr[1] - r, ctr[1] + r)
        ax.set_zlim(ctr[2] - r, ctr[2] + r)
    ax.set_xlabel("x (mm, to patient left)", fontsize=8)
    ax.set_ylabel("y (mm, to posterior)", fontsize=8)
    ax.set_zlabel("z (mm, superior)", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.view_init(elev=20, azim=-60)
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(facecolor=s.colour, alpha=0.6, label=s.label) for s in surfaces if s.mask.any()
        ],
        fontsize=8,
        loc="upper left",
    )
    if title:
        ax.set_title(title, fontsize=10)
    return png_bytes(fig)


def histogram_plot(
    thresholds: list[float],
    fractions: dict[str, list[float]],
    colours: dict[str, str] | None = None,
    xlabel: str = "|E| max (V/cm)",
    marks: dict[str, float] | None = None,
    title: str = "",
    xmax: float | None = None,
) -> bytes:
    """Cumulative value-volume histogram: % of each structure at or above each value."""
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    for name, frac in fractions.items():
        ax.plot(thresholds, 100 * np.asarray(frac), label=name, color=(colours or {}).get(name))
    for lab, x in (marks or {}).items():
        ax.axvline(x, color="0.3", ls="--", lw=0.8)
        ax.annotate(lab, (x, 102), fontsize=7, ha="center", annotation_clip=False)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("volume at or above (%)", fontsize=9)
    ax.set_ylim(0, 105)
    ax.set_xlim(0, xmax or thresholds[-1])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return png_bytes(fig)
