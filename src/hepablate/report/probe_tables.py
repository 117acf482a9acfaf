"""Cells of the IRE probe tables (and the laser fibre table's entries): each probe's pull-back from the cycle before, its skin entry
and depth (the plan's, or found by the library's path check), its entry window by landmarks
(`hepablate.placement.landmarks`), and a note on parallel or angled probes."""

from __future__ import annotations

import numpy as np

from hepablate.case.model import Case
from hepablate.placement.geometry import unit
from hepablate.plans.model import Fibre, Probe


def _vec(v) -> str:
    return "(" + ", ".join(f"{round(float(x), 1) + 0.0:.1f}" for x in v) + ")"


def pullbacks(probes: list[Probe]) -> dict[tuple[int, str], str]:
    """(cycle, probe id) -> its pull-back from the previous cycle (mm, along the needle), or
    'repositioned' / 'first position'."""
    out: dict[tuple[int, str], str] = {}
    prev: dict[str, Probe] = {}
    for p in sorted(probes, key=lambda q: q.cycle):
        q = prev.get(p.id)
        if q is None:
            out[(p.cycle, p.id)] = "first position"
        else:
            d = unit(np.asarray(q.direction_lps, float))
            off = np.asarray(q.tip_lps_mm, float) - np.asarray(p.tip_lps_mm, float)
            lateral = float(np.linalg.norm(off - (off @ d) * d))
            same = float(d @ unit(np.asarray(p.direction_lps, float))) > np.cos(np.radians(0.5))
            out[(p.cycle, p.id)] = (
                f"{float(off @ d):.1f}" if same and lateral < 1.0 else "repositioned"
            )
        prev[p.id] = p
    return out


def _window(text: str) -> str:
    """A rib-space description in the short form of a table cell."""
    for side in (" (right)", " (left)"):  # the side has a cell part of its own
        text = text.replace(side, "")
    return (
        text.replace(" intercostal space", " ICS")
        .split(" (between")[0]
        .replace("subcostal (below the costal margin)", "subcostal")
    )


def entry_cells(case: Case, probes: list[Probe] | list[Fibre]) -> dict[tuple[int, str], list[str]]:
    """(cycle, id) -> [skin entry, depth, entry window] as table cells (fibres: cycle 1). The
    entry and depth are the plan's, or where the plan has none, found by the library's path
    check (marked *); the window is the rib space and side (`landmarks.describe_entry`)."""
    from hepablate.placement.landmarks import describe_entry, number_ribs, skin_points_lps_mm
    from hepablate.placement.paths import PathMap

    pm: PathMap | None = None
    skin = skin_points_lps_mm(case)
    cage = number_ribs(case, skin)
    out = {}
    for p in probes:
        tip = np.asarray(p.tip_lps_mm, float)
        star = ""
        e: np.ndarray | None
        if p.entry_lps_mm is not None:
            e = np.asarray(p.entry_lps_mm, float)
        else:
            pm = pm or PathMap(case, 0.0)
            e = pm.skin_entry(tip, np.asarray(p.direction_lps, float))
            star = " *"
        if e is None:
            out[(getattr(p, "cycle", 1), p.id)] = ["- (no skin in the image)", "-", "-"]
            continue
        de = describe_entry(case, e, tip, cage, skin)
        out[(getattr(p, "cycle", 1), p.id)] = [
            _vec(e) + star,
            f"{float(np.linalg.norm(tip - e)):.1f}{star}",
            f"{_window(de.rib_space)}, {de.side}",
        ]
    return out


def parallel_note(probes) -> str:
    """'Probes are parallel within a cycle.' or the largest angle between two probes."""
    worst = 0.0
    for c in sorted({p.cycle for p in probes}):
        ds = [unit(np.asarray(p.direction_lps, float)) for p in probes if p.cycle == c]
        for i in range(len(ds)):
            for j in range(i):
                cos = float(np.clip(ds[i] @ ds[j], -1.0, 1.0))
                worst = max(worst, float(np.degrees(np.arccos(cos))))
    if worst < 0.05:
        return "Probes are parallel within a cycle."
    return (
        f"Angled probes (--allow-angled): directions within a cycle differ by up to "
        f"{worst:.1f} deg; see the direction column."
    )
