"""The needle section every plan report shares: for each needle (IRE probe or laser fibre) a
view along it from skin to tip on the case's CT, its entry described by landmarks with its
angles and depths (`hepablate.placement.landmarks`), the structures it passes and its closest
distance to each no-go structure (`hepablate.placement.passage`, the library's path check).

Positions on one line (a pull-back, or the same probe in a later cycle) share one view, with
each tip position marked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hepablate.anatomy.vocabulary import BILE_DUCTS, BOWEL, VESSELS, base_name
from hepablate.case.model import Case
from hepablate.core.volume import Volume, resample_to
from hepablate.placement.geometry import unit
from hepablate.placement.landmarks import describe_entry, number_ribs, skin_points_lps_mm
from hepablate.placement.passage import (
    CLEARANCE_REACH_MM,
    path_structures,
    structure_clearances,
)
from hepablate.placement.paths import PathMap
from hepablate.report.document import Block, Figure, PageBreak, Paragraph, Section, Table
from hepablate.report.figures import Background, Needle, Overlay, oblique_slice

#: Abdominal soft-tissue window (HU): level 40, width 400.
CT_WINDOW_HU = (-160.0, 240.0)
#: Colour of the needle in its own view (gold: apart from every structure colour).
NEEDLE_COLOUR = "#ffd700"
#: Colours of the structure groups drawn in every image.
GROUP_COLOURS = {
    "tumour": "#d62728",
    "target": "#ff7f0e",
    "zone": "#2ca02c",
    "vessel": "#1f77b4",
    "duct": "#bcbd22",
    "liver": "#c49c94",
    "bone": "#f7f7f7",
    "lung": "#17becf",
    "hollow": "#e377c2",
    "other": "#9467bd",
}
_OTHER_NOGO = frozenset({"gallbladder", "kidney", "spleen", "pancreas", "heart", "pericardium"})


@dataclass
class NeedleLine:
    """One needle line: its deepest tip and every position (label, tip) placed on it."""

    name: str
    tip_lps_mm: np.ndarray
    direction_lps: np.ndarray
    active_mm: float
    """Length of the active part (IRE exposure; laser: the illuminated span)."""
    positions: list[tuple[str, np.ndarray]] = field(default_factory=list)


def group_lines(items: list[tuple[str, np.ndarray, np.ndarray, float]]) -> list[NeedleLine]:
    """Group needle positions (label, tip LPS mm, direction, active length mm) that lie on one
    line (directions within 0.5 deg, tips within 1 mm of the other's axis)."""
    lines: list[NeedleLine] = []
    for label, tip, d, active in items:
        tip, d = np.asarray(tip, float), unit(np.asarray(d, float))
        for ln in lines:
            off = tip - ln.tip_lps_mm
            lateral = float(np.linalg.norm(off - (off @ ln.direction_lps) * ln.direction_lps))
            if float(d @ ln.direction_lps) > np.cos(np.radians(0.5)) and lateral < 1.0:
                ln.positions.append((label, tip))
                if float(off @ d) > 0:  # deeper: the line's tip moves on
                    ln.tip_lps_mm = tip
                ln.active_mm = max(ln.active_mm, active)
                break
        else:
            lines.append(NeedleLine(label, tip, d, active, [(label, tip)]))
    return lines


def ct_background(case: Case, grid: Volume | None = None) -> Background | None:
    """The case's CT in the abdominal window, on `grid` (default: the case grid)."""
    if case.ct is None:
        return None
    ct = case.ct
    if grid is not None and not ct.same_geometry(grid):
        ct = resample_to(
            ct.with_array(ct.array.astype(np.float32)), grid, interpolation="linear", default=-1000
        )
    return Background(np.asarray(ct.array, np.float32), "gray", *CT_WINDOW_HU, "CT (HU)")


def anatomy_overlays(structures: dict[str, np.ndarray], target_key: str) -> list[Overlay]:
    """Outlines of the structures a needle must respect, grouped and coloured as in every
    image of the reports (tumour, vessels, ducts, bone, lung/pleura, hollow organs, others)."""

    def union(pred) -> np.ndarray:
        out = np.zeros(next(iter(structures.values())).shape, bool)
        for k, m in structures.items():
            if pred(k):
                out |= m
        return out

    groups = [
        ("liver", "liver", lambda k: base_name(k) == "liver", False),
        ("vessel", "vessels", lambda k: base_name(k) in VESSELS, True),
        ("duct", "bile ducts", lambda k: base_name(k) in BILE_DUCTS, True),
        ("bone", "bone / cartilage", lambda k: base_name(k) in {"bone", "cartilage"}, False),
        ("lung", "lung / pleura", lambda k: base_name(k) in {"lung", "pleura"}, False),
        ("hollow", "bowel / stomach", lambda k: base_name(k) in BOWEL, False),
        ("other", "other no-go organs", lambda k: base_name(k) in _OTHER_NOGO, False),
        (
            "tumour",
            "other tumours",
            lambda k: base_name(k) == "tumour" and k != target_key,
            False,
        ),
    ]
    out = []
    for colour, label, pred, fill in groups:
        m = union(pred)
        if m.any():
            out.append(Overlay(m, GROUP_COLOURS[colour], label, fill=fill, alpha=0.35))
    return out


def _view(
    case: Case,
    line: NeedleLine,
    entry: np.ndarray,
    overlays: list[Overlay],
    bg: Background | None,
    others: list[Needle],
) -> tuple[bytes, float]:
    """Oblique plane containing the needle, read like an axial CT tilted about the horizontal
    line across the needle (a gantry tilt): image right is the in-plane direction closest to
    the patient's left, image up the one closest to anterior (for a needle within 25 deg of
    craniocaudal: a tilted coronal plane, superior up)."""
    tip = line.tip_lps_mm
    d = line.direction_lps
    x, y, z = np.eye(3)
    if abs(d[2]) < np.cos(np.radians(25.0)):
        n = unit(np.cross(d, unit(np.cross(d, z))))  # normal of the plane holding d and h
        up_ref = -y
    else:
        n = unit(np.cross(d, x))
        up_ref = z
    right = unit(x - (x @ n) * n) if abs(x @ n) < 0.99 else unit(np.cross(n, up_ref))
    up = unit(np.cross(n, right))
    if up @ up_ref < 0:
        up = -up
    depth = float(np.linalg.norm(tip - entry))
    beyond = 35.0  # mm shown around the path: the skin and the ribs beside the entry
    centre = 0.5 * (entry + tip)
    half_u = max(45.0, abs(float(d @ right)) * depth / 2 + beyond)
    half_v = max(45.0, abs(float(d @ up)) * depth / 2 + beyond)
    me = Needle(entry, tip, tip - line.active_mm * d, "", NEEDLE_COLOUR)
    size = (6.4, max(3.5, min(7.0, 6.4 * half_v / half_u)))
    png = oblique_slice(
        case.grid,
        centre,
        right,
        up,
        (half_u, half_v),
        overlays,
        bg,
        [me, *others],
        f"Plane of {line.name}",
        u_label="mm",
        v_label="mm",
        marks=[(p, str(i)) for i, (_, p) in enumerate(line.positions, 1)]
        if len(line.positions) > 1
        else None,
        figsize=size,
    )
    return png, size[1] / size[0]


def needle_section(
    case: Case,
    items: list[tuple[str, np.ndarray, np.ndarray, float]],
    safety_mm: float,
    zone: tuple[Volume, np.ndarray] | None = None,
    what: str = "needle",
) -> Section:
    """One view and three tables per needle line; `items` as for `group_lines`; `zone`: the
    predicted zone on its grid (drawn in each view)."""
    lines = group_lines(items)
    if not lines:
        return Section(
            f"{what.capitalize()} paths",
            [Paragraph(f"No {what} in this plan: no path to show.", style="note")],
        )
    pm = PathMap(case, safety_mm)
    skin = skin_points_lps_mm(case)
    cage = number_ribs(case, skin)
    overlays = anatomy_overlays(case.structures, case.target_key)
    overlays.insert(0, Overlay(case.target_mask, GROUP_COLOURS["tumour"], "target tumour"))
    if zone is not None and zone[1].any():
        zc = resample_to(
            zone[0].with_array(zone[1].astype(np.uint8)), case.grid, interpolation="nearest"
        )
        overlays.insert(0, Overlay(zc.array > 0, GROUP_COLOURS["zone"], "zone", True, alpha=0.25))
    bg = ct_background(case)
    blocks: list[Block] = [
        Paragraph(
            f"Each {what} line from the skin entry to its deepest tip: an oblique plane "
            f"containing the {what}, read like an axial image tilted to hold it (the edge "
            "letters give the patient directions), the structures it passes, and its "
            "closest distance to each no-go structure by the same path check the planner "
            f"uses (required: {safety_mm:g} mm, bone and cartilage their own distance, the "
            f"{what}'s radius included). Rib numbers "
            "come from the bone mask, counted up from the lowest rib taken as the 12th; the "
            "clavicular and axillary lines are estimated from the body outline on the entry's "
            "axial level (midline: centre of the left-right extent; MCL: halfway to the lateral "
            "skin; AAL: where the anterior skin turns 45 deg; MAL: the most lateral skin). "
            "Check both on the planning CT.",
            style="note",
        )
    ]
    for n, ln in enumerate(lines):
        if n:
            blocks.append(PageBreak())  # one page per needle line, its tables with its view
        chk = pm.check_path(ln.tip_lps_mm, ln.direction_lps)
        title = " = ".join(lab for lab, _ in ln.positions)
        if chk.entry_lps_mm is None:
            blocks.append(
                Paragraph(
                    f"{title}: no skin entry along its line inside the image "
                    f"({chk.blocking}); its path could not be checked.",
                    style="warning",
                )
            )
            continue
        entry = np.asarray(chk.entry_lps_mm, float)
        others = [
            Needle(
                o.tip_lps_mm - 30.0 * o.direction_lps,
                o.tip_lps_mm,
                o.tip_lps_mm - o.active_mm * o.direction_lps,
                "",
                NEEDLE_COLOUR,
            )
            for o in lines
            if o is not ln
        ]
        png, aspect = _view(case, ln, entry, overlays, bg, others)
        de = describe_entry(case, entry, ln.tip_lps_mm, cage, skin)
        rows = [
            ["skin entry (LPS mm)", _vec(entry)],
            ["rib space", de.rib_space],
            [
                "position",
                f"{de.from_midline_mm:.0f} mm {de.side} of the midline; {de.line}; {de.xiphoid}",
            ],
            ["angles", de.angles_text()],
            [
                "depth",
                "to the liver capsule "
                + (
                    "- (the path does not reach the liver)"
                    if de.depth_to_capsule_mm is None
                    else f"{de.depth_to_capsule_mm:.1f} mm"
                )
                + f"; to the tip {de.depth_to_tip_mm:.1f} mm",
            ],
        ]
        passed = [
            [s.name, f"{s.from_mm:.1f} - {s.to_mm:.1f}", f"{s.to_mm - s.from_mm:.1f}"]
            for s in path_structures(case, entry, ln.tip_lps_mm)
            if s.to_mm - s.from_mm >= 0.5
        ]
        clear, far = [], []
        for c in structure_clearances(case, ln.tip_lps_mm, ln.direction_lps, entry):
            if c.clearance_mm is None:
                far.append(c.name)
                continue
            # Each structure against its own distance (approaches.yaml: bone and cartilage
            # 1.5 mm), as the planner's check; crossable ones (the pleural recess) warn only.
            if c.name in pm.required_mm:
                req = pm.required_mm[c.name]
                ok = c.clearance_mm >= req - 1e-9
                clear.append(
                    [c.name, f"{c.clearance_mm:.2f}", f"{req:g}", "ok" if ok else "BELOW SAFETY"]
                )
            else:
                clear.append([c.name, f"{c.clearance_mm:.2f}", "-", "crossable (warning)"])
        if far:
            clear.append([", ".join(far), f"> {CLEARANCE_REACH_MM:g}", "", "ok"])
        blocks += [
            Table(["entry", "value"], rows, title=title, col_widths=[1.2, 5], keep_together=True),
            Figure(
                png,
                f"{title}: oblique plane containing the {what}, on the CT "
                "(abdominal window W400/L40) where the case has one; zone green, target red, "
                "this needle gold (thick: active part), other needles gold stubs; white "
                "crosses numbered 1, 2, ...: the tip positions in the order of the title.",
                # At most about 105 mm high on the A4 page (180 mm text width).
                min(0.8, 105.0 / (aspect * 180.0)),
            ),
            Table(
                ["passes", "from - to (mm from skin)", "length (mm)"],
                passed,
                col_widths=[2, 2, 1],
            ),
            Table(
                ["no-go structure", "closest distance (mm)", "required (mm)", "result"],
                clear or [["(none segmented)", "-", "-", "-"]],
                caption=f"Path clearance of {title} from each no-go structure: the smallest "
                f"is the path's clearance, {chk.clearance_mm:.2f} mm (required: each "
                "structure's own distance, approaches.yaml).",
                col_widths=[2, 1.4, 1.1, 1.3],
            ),
        ]
    return Section(f"{what.capitalize()} paths", blocks, new_page=True)


def _vec(v) -> str:
    return "(" + ", ".join(f"{round(float(x), 1) + 0.0:.1f}" for x in v) + ")"
