"""The IRE plan report (report.html + report.pdf; content: docs/report.md).

Its own parts: one probe table (with pull-backs) and one figure per cycle, the protocol sheet
with ECG/pulse-group notes, coverage with a field-volume histogram, slices on the CT through
the target and along the probes, the field, a 3D view. Shared with the laser report
(`report.common`, `report.needles`): the case, the structures it does not segment, thermal
damage, a page per needle, assumptions with sources, provenance. Infeasible plans keep their
images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name
from hepablate.case.model import Case
from hepablate.core.volume import Volume
from hepablate.evaluation import field_volume_histogram, lumen_mask
from hepablate.evaluation.evaluation import Evaluation
from hepablate.placement.geometry import active_segment, unit
from hepablate.plans.model import Plan
from hepablate.report.common import (
    assumptions_table,
    case_rows,
    criteria_section,
    planning_section,
    provenance_section,
    thermal_damage_section,
    unsegmented_section,
)
from hepablate.report.document import (
    Figure,
    Paragraph,
    ReportDocument,
    Section,
    Table,
    write_report,
)
from hepablate.report.figures import (
    Background,
    Needle,
    Overlay,
    histogram_plot,
    oblique_slice,
    orthogonal_slices,
    view_3d,
)
from hepablate.report.needles import anatomy_overlays, ct_background, needle_section
from hepablate.report.probe_tables import entry_cells, parallel_note, pullbacks

COLOURS = {
    "tumour": "#d62728",
    "target": "#ff7f0e",
    "zone": "#2ca02c",
    "vessel": "#1f77b4",
    "duct": "#bcbd22",
    "liver": "#8c564b",
}


def _fmt(v, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _vec(v) -> str:
    # Adding 0.0 turns a rounded -0.0 into 0.0.
    return "-" if v is None else "(" + ", ".join(f"{round(x, 1) + 0.0:.1f}" for x in v) + ")"


def _union(structures: dict[str, np.ndarray], names: frozenset[str]) -> np.ndarray:
    out = np.zeros(next(iter(structures.values())).shape, dtype=bool)
    for k, m in structures.items():
        if base_name(k) in names:
            out |= m
    return out


def _needles(plan: Plan) -> list[Needle]:
    out = []
    cmap = ["black", "#444444", "#7f3f98", "#00707f"]
    for p in plan.probes:
        a, tip = active_segment(p)
        start = np.asarray(p.entry_lps_mm, float) if p.entry_lps_mm is not None else a
        lab = p.id if p.cycle == 1 else f"{p.id}/{p.cycle}"
        out.append(Needle(start, tip, a, lab, cmap[(p.cycle - 1) % len(cmap)]))
    return out


def build_ire_figures(
    case: Case,
    plan: Plan,
    grid: Volume,
    structures: dict[str, np.ndarray],
    region: np.ndarray,
    zone: np.ndarray,
    field_v_per_cm: np.ndarray,
    threshold_v_per_cm: float,
) -> dict[str, bytes]:
    """PNG figures of the IRE report, keyed by name."""
    tumour = structures[case.target_key]
    vessels = _union(structures, VESSELS)
    ducts = _union(structures, BILE_DUCTS)
    overlays = [
        Overlay(zone, COLOURS["zone"], "IRE zone (nonlinear)", fill=True, alpha=0.25),
        Overlay(tumour, COLOURS["tumour"], "tumour"),
        Overlay(
            region, COLOURS["target"], f"tumour + {case.margin_mm:g} mm margin", linestyle="--"
        ),
        *anatomy_overlays(structures, case.target_key),
    ]
    bg = ct_background(case, grid)
    centre = grid.with_array(tumour).centroid_lps_mm()
    needles = _needles(plan)
    figs = {
        "slices": orthogonal_slices(
            grid, centre, overlays, bg, needles, "Slices through the target centre"
        ),
    }
    cycles = sorted({p.cycle for p in plan.probes})
    for c in cycles:
        mine = [n for n, p in zip(needles, plan.probes, strict=True) if p.cycle == c]
        mids = np.array([0.5 * (n.active_start_lps_mm + n.tip_lps_mm) for n in mine])
        figs[f"cycle{c}"] = orthogonal_slices(
            grid, mids.mean(axis=0), overlays, bg, mine, f"Cycle {c}: slices through its probes"
        )
    field_bg = Background(
        np.minimum(field_v_per_cm, 3 * threshold_v_per_cm),
        "magma",
        0,
        3 * threshold_v_per_cm,
        "|E| max (V/cm)",
        colorbar=True,
    )
    figs["field_slices"] = orthogonal_slices(
        grid,
        centre,
        overlays[1:3] + [Overlay(zone, "#00ff66", "IRE zone")],
        field_bg,
        needles,
        "Maximum field over all pairs (zone = field above threshold)",
    )
    if plan.probes:
        c1 = [p for p in plan.probes if p.cycle == 1]
        # Common (mean) direction: angled plans (--allow-angled) deviate by a few degrees.
        d = unit(np.sum([unit(np.asarray(p.direction_lps, float)) for p in c1], axis=0))
        tips = np.array([p.tip_lps_mm for p in c1], float)
        mids = np.array([0.5 * (a + b) for a, b in (active_segment(p) for p in c1)])
        rel = mids - mids.mean(axis=0)
        rel -= np.outer(rel @ d, d)
        if len(c1) >= 2 and np.linalg.norm(rel).max() > 1e-6:
            w, vecs = np.linalg.eigh(rel.T @ rel)
            across = vecs[:, int(np.argmax(w))]
        else:
            across = np.cross(d, [0, 0, 1.0]) if abs(d[2]) < 0.9 else np.cross(d, [1.0, 0, 0])
        across = unit(across - (across @ d) * d)
        # Pass through the two probes farthest apart along `across`.
        proj = rel @ across
        o = 0.5 * (mids[int(np.argmin(proj))] + mids[int(np.argmax(proj))])
        o = o + ((centre - o) @ d) * d
        half = max(35.0, float(np.ptp(proj)) / 2 + 25.0)
        figs["probe_plane"] = oblique_slice(
            grid,
            o,
            across,
            d,
            (half, half),
            overlays,
            bg,
            needles,
            "Plane along the probes (through the outermost pair)",
        )
        del tips
    figs["view3d"] = view_3d(
        grid,
        [
            Overlay(tumour, COLOURS["tumour"], "tumour", alpha=0.8),
            Overlay(zone, COLOURS["zone"], "IRE zone", alpha=0.18),
            Overlay(vessels, COLOURS["vessel"], "vessels", alpha=0.6),
            Overlay(ducts, COLOURS["duct"], "bile ducts", alpha=0.7),
        ],
        needles,
        "3D view (LPS)",
    )
    liver = structures.get("liver", np.zeros_like(zone)) & ~lumen_mask(structures)
    masks = {
        "tumour + margin": region,
        "tumour": tumour,
        "liver": liver,
        "vessels": vessels,
        "bile ducts": ducts,
    }
    top = max(3 * threshold_v_per_cm, 100.0)
    fvh = field_volume_histogram(field_v_per_cm, masks, np.linspace(0, top, 121))
    figs["fvh"] = histogram_plot(
        fvh.thresholds,
        fvh.fraction,
        {
            "tumour + margin": COLOURS["target"],
            "tumour": COLOURS["tumour"],
            "liver": COLOURS["liver"],
            "vessels": COLOURS["vessel"],
            "bile ducts": COLOURS["duct"],
        },
        # The search's threshold: the higher of the liver and tumour thresholds (each tissue's
        # zone uses its own; optimize.ire.options.search_threshold_v_per_cm).
        marks={
            f"IRE threshold {threshold_v_per_cm:g} V/cm (higher of liver, tumour)": (
                threshold_v_per_cm
            )
        },
        title="Field-volume histogram (maximum |E| over all pairs)",
    )
    figs["_fvh_rows"] = fvh  # type: ignore[assignment]
    return figs


def build_ire_document(
    case: Case,
    ev: Evaluation,
    figs: dict,
    summary,
    threshold_v_per_cm: float,
    pulses_per_group: int,
) -> ReportDocument:
    plan = ev.plan
    m = plan.metrics
    status = plan.status.upper()
    doc = ReportDocument(
        title=f"IRE treatment plan: {case.case_id}",
        # The reason is stated once, in the summary box below.
        subtitle=f"target {case.target_id}, margin {case.margin_mm:g} mm; status {status}",
        footer=f"hepablate {plan.provenance.hepablate_version if plan.provenance else ''}; "
        f"created {plan.provenance.created_utc if plan.provenance else ''}; a planning aid, "
        "to be checked by the treating physician",
    )
    # ---- summary box
    blocks: list = []
    if plan.status == "feasible":
        blocks.append(
            Paragraph(
                f"Plan covers {100 * (m.target_coverage or 0):.1f} % of tumour plus margin "
                f"(tumour {100 * (m.tumour_coverage or 0):.1f} %), minimum margin "
                f"{_fmt(m.min_margin_mm)} mm, with {len({p.id for p in plan.probes})} probes in "
                f"{len({p.cycle for p in plan.probes})} placement cycle(s) and {len(plan.pairs)} "
                "pulse trains.",
                "info",
            )
        )
    else:
        blocks.append(Paragraph(f"NOT FEASIBLE: {plan.status_reason}", "error"))
    # ---- case
    region_ml = float(np.count_nonzero(ev.region)) * ev.grid.voxel_volume_ml
    blocks.append(Table(["item", "value"], case_rows(case, summary, region_ml), col_widths=[1, 3]))
    doc.sections.append(Section("Case", blocks))
    doc.sections.append(unsegmented_section(case))
    # ---- probes: one table and one figure per cycle
    pull = pullbacks(plan.probes)
    cycles = sorted({p.cycle for p in plan.probes})
    pblocks: list = [
        Paragraph(
            "Coordinates in the patient frame LPS (x to the patient's left, y posterior, z "
            "superior). Depth = skin entry to tip along the needle. Pull-back: how far the tip "
            "is withdrawn along its needle from its position in the cycle before. * entry "
            "not stored in the plan: found by the path check along the probe's line. Entry "
            "window: rib space (ICS: intercostal space) and side; see the needle pages. "
            + parallel_note(plan.probes),
            "note",
        )
    ]
    if not cycles:
        pblocks.append(Paragraph("No probes: nothing to place.", "note"))
    entries = entry_cells(case, plan.probes)
    for c in cycles:
        rows = [
            [
                p.id,
                _vec(p.tip_lps_mm),
                *entries[(p.cycle, p.id)],
                _fmt(p.exposure_mm),
                pull[(c, p.id)],
                _vec(p.direction_lps),
            ]
            for p in plan.probes
            if p.cycle == c
        ]
        pblocks.append(
            Table(
                [
                    "probe",
                    "tip (LPS mm)",
                    "skin entry (LPS mm)",
                    "depth (mm)",
                    "entry window",
                    "exposure (mm)",
                    "pull-back (mm)",
                    "direction (LPS)",
                ],
                rows,
                title=f"Cycle {c} of {len(cycles)}",
                col_widths=[0.75, 1.8, 1.9, 0.8, 1.3, 0.9, 1.1, 1.6],
                keep_together=True,
            )
        )
        if f"cycle{c}" in figs:
            pblocks.append(
                Figure(figs[f"cycle{c}"], f"Cycle {c}: slices through its probes' active parts.")
            )
    doc.sections.append(Section("Probe placement", pblocks))
    # ---- protocol
    prow = []
    for i, pr in enumerate(plan.pairs, 1):
        vpc = pr.voltage_v / (pr.spacing_mm / 10) if pr.spacing_mm else None
        prow.append(
            [
                str(i),
                str(pr.cycle),
                f"{pr.anode} (+) -> {pr.cathode} (-)",
                _fmt(pr.spacing_mm),
                f"{pr.voltage_v:.0f}",
                _fmt(vpc, 0),
                str(pr.pulses),
                f"{pr.pulse_width_us:g}",
                _fmt(pr.predicted_current_a),
            ]
        )
    groups = max(
        1, int(np.ceil((plan.pairs[0].pulses if plan.pairs else 90) / max(pulses_per_group, 1)))
    )
    if not plan.pairs:
        doc.sections.append(
            Section("Protocol sheet", [Paragraph("No pulse trains: nothing to deliver.", "note")])
        )
    else:
        doc.sections.append(
            Section(
                "Protocol sheet",
                [
                    Table(
                        [
                            "#",
                            "cycle",
                            "pair",
                            "spacing (mm)",
                            "voltage (V)",
                            "V/cm",
                            "pulses",
                            "width (us)",
                            "predicted current (A)",
                        ],
                        prow,
                        "Deliver in this order. Predicted currents from the nonlinear forward solve "
                        "(generator limit: see assumptions).",
                        col_widths=[0.4, 0.6, 1.8, 0.9, 0.9, 0.7, 0.7, 0.8, 1.2],
                    ),
                    Paragraph(
                        f"ECG synchronisation: pulses are delivered synchronised to the ECG (absolute "
                        f"refractory period, about 50 ms after the R wave) under general anaesthesia with "
                        f"deep neuromuscular blockade. Each train of {plan.pairs[0].pulses if plan.pairs else 90}"
                        f" pulses is given in {groups} groups of {pulses_per_group} with generator "
                        "recharging between groups. Compare each pair's measured current with the "
                        "prediction during the first pulses; if it approaches the generator limit, "
                        "reduce that pair's voltage and re-evaluate the plan (hepablate simulate).",
                        "normal",
                    ),
                ],
            )
        )
    # ---- metrics
    mrows = [
        ["target coverage (tumour + margin in zone)", f"{100 * (m.target_coverage or 0):.2f} %"],
        ["tumour coverage", f"{100 * (m.tumour_coverage or 0):.2f} %"],
        ["minimum margin", f"{_fmt(m.min_margin_mm)} mm"],
        ["ablation (IRE zone) volume", f"{_fmt(m.ablation_volume_ml)} ml"],
        ["non-target liver in zone", f"{_fmt(m.non_target_liver_ml)} ml"],
        [
            "coverage probability (placement error)",
            "-" if m.coverage_probability is None else f"{100 * m.coverage_probability:.0f} %",
        ],
        [
            "vessel / bile-duct lumen in zone",
            f"{m.extra.get('vessel_in_zone_ml', 0):.2f} / {m.extra.get('duct_in_zone_ml', 0):.2f}"
            " ml (IRE spares the vessel wall and duct matrix)",
        ],
    ]
    if "confident_target_coverage" in m.extra:
        from hepablate.evaluation.defaults import load_planning_defaults

        p_conf = load_planning_defaults().confident_zone_fraction.value
        # The threshold band (modalities/ire/uncertainty.py): what the plan's zone is worth
        # when the lethal field is uncertain.
        mrows += [
            [
                f"confident zone: ablated in >= {100 * p_conf:.0f} % of threshold samples",
                f"{100 * m.extra['confident_target_coverage']:.1f} % of tumour + margin, "
                f"{100 * m.extra.get('confident_tumour_coverage', float('nan')):.1f} % of tumour "
                f"({m.extra.get('confident_zone_ml', float('nan')):.1f} ml)",
            ],
            [
                f"possible zone: ablated in >= {100 * (1 - p_conf):.0f} % of threshold samples",
                f"{100 * m.extra['possible_target_coverage']:.1f} % of tumour + margin "
                f"({m.extra.get('possible_zone_ml', float('nan')):.1f} ml)",
            ],
        ]
    if "temperature_max_c" in m.extra:
        mrows.append(
            ["maximum temperature (Joule heating)", f"{m.extra['temperature_max_c']:.1f} degC"]
        )
    fvh = figs.get("_fvh_rows")
    blocks = [Table(["metric", "value"], mrows, col_widths=[2, 2])]
    if fvh is not None and plan.probes:  # without probes there is no field to histogram
        hrows = []
        for name in fvh.fraction:
            hrows.append(
                [name]
                + [
                    f"{100 * fvh.fraction_at(name, t):.1f} %"
                    for t in (threshold_v_per_cm / 2, threshold_v_per_cm, 1.5 * threshold_v_per_cm)
                ]
            )
        blocks.append(
            Table(
                [
                    "structure",
                    f">= {threshold_v_per_cm / 2:g} V/cm",
                    f">= {threshold_v_per_cm:g} V/cm (IRE)",
                    f">= {1.5 * threshold_v_per_cm:g} V/cm",
                ],
                hrows,
                "Field-volume histogram values",
            )
        )
        blocks.append(
            Figure(
                figs["fvh"],
                "Cumulative field-volume histogram (the IRE analogue of a dose-volume histogram).",
                0.85,
            )
        )
    doc.sections.append(Section("Coverage", blocks))
    doc.sections.append(criteria_section(plan))
    # ---- warnings
    wblocks: list = []
    order = {"error": 0, "warning": 1, "info": 2}
    for w in sorted(plan.warnings, key=lambda w: order[w.level]):
        wblocks.append(Paragraph(f"{w.level.upper()} [{w.code}]: {w.message}", w.level))
    if not wblocks:
        wblocks.append(Paragraph("No warnings."))
    doc.sections.append(Section("Warnings", wblocks))
    record = planning_section(plan)
    if record is not None:
        doc.sections.append(record)
    tips = [
        (f"{p.id}" + (f" cycle {p.cycle}" if len(cycles) > 1 else ""), np.asarray(p.tip_lps_mm))
        for p in plan.probes
    ]
    doc.sections.append(thermal_damage_section(ev, _omega_threshold(), tips))
    # ---- images
    img: list = []
    if "slices" in figs:
        img.append(
            Figure(
                figs["slices"],
                "Orthogonal slices through the target centre on the CT (W400/L40): "
                "tumour (red), tumour + margin (orange dashed), predicted IRE zone "
                "(green), vessels (blue), bile ducts (olive), bone (white), lung (cyan), "
                "bowel (pink), other no-go organs (purple), probes (black, thick = active "
                "part; projected onto each plane).",
            )
        )
    if "probe_plane" in figs:
        img.append(
            Figure(
                figs["probe_plane"],
                "Plane containing the probe axis and the "
                "line through the outermost probes (probes out of the plane dotted).",
                0.7,
            )
        )
    if "field_slices" in figs and plan.probes:
        img.append(Figure(figs["field_slices"], "Maximum electric field over all pairs."))
    if "view3d" in figs:
        img.append(
            Figure(
                figs["view3d"],
                "3D view: tumour, predicted zone, vessels, ducts and probes (shafts shortened).",
                0.7,
            )
        )
    doc.sections.append(Section("Images", img, new_page=True))
    safety = float(plan.evaluation.path_safety_distance_mm or 0.0) if plan.evaluation else 0.0
    doc.sections.append(
        needle_section(
            case,
            [
                (
                    f"probe {p.id}" + (f" cycle {p.cycle}" if len(cycles) > 1 else ""),
                    np.asarray(p.tip_lps_mm, float),
                    np.asarray(p.direction_lps, float),
                    float(p.exposure_mm),
                )
                for p in plan.probes
            ],
            ev.refs.get("path_safety_distance_mm", safety),
            (ev.grid, np.asarray(ev.zone, bool)),
            "needle",
        )
    )
    # ---- assumptions
    doc.sections.append(
        Section(
            "Assumptions and sources",
            [
                Paragraph(
                    "Zone: tissue where the maximum field over all pulse trains reaches the IRE "
                    f"threshold ({threshold_v_per_cm:g} V/cm for liver/tumour, tissue table), from a "
                    "nonlinear (field-dependent conductivity) finite-volume solve on a "
                    f"{plan.ire_simulation.grid_spacing_mm if plan.ire_simulation else 1:g} mm grid. "
                    "Target region: tumour plus margin, clipped to the liver (tissue outside the "
                    "liver, e.g. beyond the capsule, is not a treatment target) and without vessel and "
                    "duct lumens. Coverage probability: Monte Carlo placement error, analytic "
                    "field surrogate calibrated on this plan's nonlinear zone. Needle paths keep the "
                    "stated safety distance from no-go structures."
                ),
                assumptions_table(plan),
            ],
            new_page=True,
        )
    )
    doc.sections.append(provenance_section(plan))
    return doc


def _omega_threshold() -> float:
    from hepablate.anatomy.tissues import load_tissue_table

    return float(load_tissue_table().damage.arrhenius_omega_threshold.value)


def write_ire_report(out: Path, case: Case, ev: Evaluation) -> list[Path]:
    """report.html and report.pdf of an evaluated IRE plan into `out` (an existing directory);
    the images are drawn for infeasible plans too (the anatomy without a zone)."""
    from hepablate.case.summary import summarise_case

    plan = ev.plan
    thr = ev.refs["search_threshold_v_per_cm"]
    field = ev.maps.get("field_max_v_per_cm")
    figs = build_ire_figures(
        case,
        plan,
        ev.grid,
        ev.structures,
        ev.region,
        np.asarray(ev.zone, bool),
        np.asarray(field if field is not None else np.zeros(ev.zone.shape, np.float32)),
        thr,
    )
    ppg = int(ev.refs["device_pulses_per_group"])
    doc = build_ire_document(case, ev, figs, summarise_case(case), thr, ppg)
    return list(write_report(doc, out))
