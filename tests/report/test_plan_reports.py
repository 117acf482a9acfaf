"""The IRE and laser plan reports on the anatomical torso (CT, ribs, vessels): every PDF page
rendered to an image is not blank, the needle views are there, the probe tables give the
pull-backs, an infeasible plan keeps its images and volumes, and every view is lettered."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pypdfium2 as pdfium
import pytest

import hepablate
from hepablate.phantoms.torso import build_torso, torso_spec
from hepablate.plans.model import (
    EvaluationSettings,
    Fibre,
    Illumination,
    IrePair,
    IreSimulationSettings,
    LaserSimulationSettings,
    Plan,
    Probe,
)
from hepablate.report.figures import VIEW_AXES, draw_orientation, orientation_letter
from hepablate.report.ire import write_ire_report
from hepablate.report.laser import write_laser_report

FAST = EvaluationSettings(monte_carlo_samples=8)


@pytest.fixture(scope="module")
def torso():
    return build_torso(torso_spec("subcapsular", spacing_mm=2.0))


def _centre(case) -> np.ndarray:
    return case.grid.with_array(case.target_mask).centroid_lps_mm()


def _ire_plan(case) -> Plan:
    """Two probes from anterior, 15 mm apart; cycle 2 pulls both back 10 mm."""
    c = _centre(case)
    d = (0.0, 1.0, 0.0)
    probes = []
    for cyc, back in ((1, 0.0), (2, 10.0)):
        for i, dx in enumerate((-7.5, 7.5)):
            tip = (float(c[0] + dx), float(c[1] + 12.0 - back), float(c[2]))
            probes.append(Probe(id=f"P{i + 1}", cycle=cyc, tip_lps_mm=tip, direction_lps=d))
    pairs = [IrePair(cycle=cyc, anode="P1", cathode="P2", voltage_v=2250.0) for cyc in (1, 2)]
    return Plan(
        modality="ire",
        probes=probes,
        pairs=pairs,
        ire_simulation=IreSimulationSettings(grid_spacing_mm=2.0, roi_padding_mm=12.0),
        evaluation=FAST,
    )


def _pages(pdf_path: Path) -> list[tuple[np.ndarray, str]]:
    """(grey image, text) of each page."""
    pdf = pdfium.PdfDocument(str(pdf_path))
    out = []
    for page in pdf:
        img = np.asarray(page.render(scale=0.5).to_pil().convert("L"), float)
        # Lines joined with single spaces (the PDF breaks lines anywhere).
        out.append((img, " ".join(page.get_textpage().get_text_range().split())))
    return out


def _assert_not_blank(pages) -> None:
    for n, (img, text) in enumerate(pages, 1):
        ink = float(np.mean(img < 200))
        # A page holds more than the running footer: some text or figure beyond 1 % ink.
        assert ink > 0.01 and len(text.strip()) > 80, f"page {n} is blank"


@pytest.fixture(scope="module")
def ire_report(torso, tmp_path_factory):
    ev = hepablate.evaluate(torso, _ire_plan(torso))
    out = tmp_path_factory.mktemp("ire")
    write_ire_report(out, torso, ev)
    return ev, out


def test_ire_report_pages_are_not_blank_and_hold_the_needle_views(ire_report) -> None:
    ev, out = ire_report
    pages = _pages(out / "report.pdf")
    _assert_not_blank(pages)
    text = " ".join(t for _, t in pages)
    # Two needle lines (each probe and its pull-back on one line): one view each.
    assert text.count("oblique plane containing the needle, on the CT") == 2
    for p in ("P1", "P2"):
        assert f"probe {p} cycle 1 = probe {p} cycle 2" in text
    assert "rib space" in text and "to the liver capsule" in text
    assert "closest distance" in text and "required (mm)" in text
    # Bone and cartilage are held to their own distance (approaches.yaml), not the 3 mm.
    from hepablate.placement.approach import load_approach_settings

    bone_mm = load_approach_settings().structure_safety_distance_mm["bone"].value
    assert bone_mm < 3.0
    from hepablate.report.document import Table
    from hepablate.report.needles import needle_section

    items = [
        (p.id, np.asarray(p.tip_lps_mm), np.asarray(p.direction_lps), p.exposure_mm)
        for p in ev.plan.probes
    ]
    sec = needle_section(ev.case, items, 3.0)
    tables = [b for b in sec.blocks if isinstance(b, Table) and "required (mm)" in b.header]
    rows = [r for t in tables for r in t.rows]
    bone_rows = [r for r in rows if r[0] in ("bone", "cartilage")]
    assert bone_rows and all(r[2] == f"{bone_mm:g}" for r in bone_rows), bone_rows
    assert all(r[2] == "3" for r in rows if r[0] in ("portal_vein", "hepatic_vein")), rows
    # Each probe's entry window in its cycle table, as the landmarks module names it.
    from hepablate.placement.landmarks import describe_entry
    from hepablate.placement.paths import PathMap
    from hepablate.report.probe_tables import _window

    p1 = ev.plan.probes[0]
    tip, d = np.asarray(p1.tip_lps_mm), np.asarray(p1.direction_lps)
    de = describe_entry(ev.case, PathMap(ev.case, 0.0).skin_entry(tip, d), tip)
    assert f"{_window(de.rib_space)}, {de.side}" in text
    # One probe table per cycle with the pull-back (10 mm in cycle 2).
    assert "Cycle 1 of 2" in text and "Cycle 2 of 2" in text
    assert "first position" in text and "10.0" in text
    # The pages with a needle view carry an image.
    pdf = pdfium.PdfDocument(str(out / "report.pdf"))
    with_view = [i for i, (_, t) in enumerate(pages) if "containing the needle, on the CT" in t]
    assert with_view
    for i in with_view:
        objs = list(pdf[i].get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE]))
        assert objs, f"page {i + 1} has no image"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 6
    assert "nan ml" not in html


def test_infeasible_ire_report_keeps_images_and_volumes(ire_report, torso, tmp_path) -> None:
    ev, _ = ire_report
    # What the planner returns when no layout is found: no probes, no zone.
    empty = ev.plan.model_copy(
        update={"probes": [], "pairs": [], "status": "infeasible", "status_reason": "no layout"}
    )
    inf = dataclasses.replace(ev, plan=empty, zone=np.zeros_like(ev.zone), maps={}, details=None)
    write_ire_report(tmp_path, torso, inf)
    pages = _pages(tmp_path / "report.pdf")
    _assert_not_blank(pages)
    text = " ".join(t for _, t in pages)
    assert "nan ml" not in text and " nan " not in text
    region_ml = float(np.count_nonzero(ev.region)) * ev.grid.voxel_volume_ml
    assert f"{region_ml:.1f} ml" in text
    assert "Orthogonal slices through the target centre" in text
    assert "No needle in this plan" in text


def test_laser_report_pages_are_not_blank_and_hold_the_fibre_view(torso, tmp_path) -> None:
    c = _centre(torso)
    plan = Plan(
        modality="laser",
        fibres=[
            Fibre(
                id="F1",
                tip_lps_mm=(float(c[0]), float(c[1]) + 8.0, float(c[2])),
                direction_lps=(0.0, 1.0, 0.0),
            )
        ],
        illuminations=[
            Illumination(step=1, fibre="F1", power_w=3.0, duration_s=60.0),
            Illumination(step=2, fibre="F1", power_w=3.0, duration_s=60.0, pullback_mm=8.0),
        ],
        laser_simulation=LaserSimulationSettings(
            grid_spacing_mm=2.5, roi_padding_mm=12.0, time_step_s=6.0, cooldown_s=20.0
        ),
        evaluation=FAST,
    )
    ev = hepablate.evaluate(torso, plan)
    write_laser_report(tmp_path, torso, ev)
    pages = _pages(tmp_path / "report.pdf")
    _assert_not_blank(pages)
    text = " ".join(t for _, t in pages)
    assert text.count("oblique plane containing the fibre, on the CT") == 1
    for heading in ("Case", "Structures not segmented", "Fibre paths", "Provenance"):
        assert heading in text
    assert "Model, assumptions and sources" in text
    assert "Predicted thermal damage" in text


def test_orientation_letters_follow_the_lps_frame() -> None:
    assert orientation_letter([1, 0, 0]) == "L"
    assert orientation_letter([-1, 0, 0]) == "R"
    assert orientation_letter([0, -1, 0]) == "A"
    assert orientation_letter([0, 0, 1]) == "S"
    assert orientation_letter([0.0, 0.6, 0.8]) == "SP"
    fig, ax = plt.subplots()
    draw_orientation(ax, *VIEW_AXES["axial"])
    # Radiological convention: the patient's right on the viewer's left, anterior up.
    where = {t.get_text(): t.get_position() for t in ax.texts}
    plt.close(fig)
    assert where["R"][0] < 0.5 < where["L"][0]
    assert where["A"][1] > 0.5 > where["P"][1]


def test_a_grid_stored_with_reversed_axes_is_drawn_in_lps_order() -> None:
    from hepablate.core.volume import Volume
    from hepablate.report.figures import lps_aligned

    rng = np.random.default_rng(0)
    arr = rng.random((4, 5, 6))
    ident = Volume(arr, (1.0, 2.0, 3.0), (-10.0, -20.0, 0.0))
    # The same voxels stored with i and j reversed (direction diag(-1, -1, 1)), as in the real CT.
    far = ident.index_to_lps(np.array([5.0, 4.0, 0.0]))
    rev = Volume(arr[:, ::-1, ::-1], (1.0, 2.0, 3.0), tuple(far), np.diag([-1.0, -1.0, 1.0]))
    assert np.allclose(rev.index_to_lps(np.array([0.0, 0.0, 0.0])), far)
    grid, (a,) = lps_aligned(rev, [rev.array])
    assert np.allclose(grid.direction, np.eye(3))
    assert np.allclose(grid.origin_lps_mm, ident.origin_lps_mm)
    assert np.array_equal(a, arr)
