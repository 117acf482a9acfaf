"""Laser plan report: protocol sheet, metrics, warnings, sensitivity, temperature and damage
views, built as a generic `ReportDocument` and written by `hepablate.report.document` as
report.html (self-contained) and report.pdf (content: docs/report.md). The case, unsegmented
structures, thermal damage, slices on the CT, a page per fibre, assumptions and provenance are
the sections it shares with the IRE report (`report.common`, `report.needles`).

Figures are drawn on the planning grid of the forward run (LPS mm, slices through the target
centre): maximum temperature (degC) and Arrhenius damage (log10 Omega) with the zone (Omega
threshold) and the target region outlined, fibre tip positions marked; tip temperature
histories per illumination.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from hepablate.case.model import Case
from hepablate.evaluation.evaluation import Evaluation
from hepablate.plans.model import Plan


def _mmss(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def protocol_rows(plan: Plan) -> list[list[str]]:
    """Rows of the laser protocol sheet (in delivery order)."""
    fib = {f.id: f for f in plan.fibres}
    rows = [
        [
            "Step",
            "Fibre",
            "Power (W)",
            "Duration (min:s)",
            "Energy (J)",
            "Pull-back (mm)",
            "Tip (LPS mm)",
        ]
    ]
    for il in sorted(plan.illuminations, key=lambda i: (i.step, i.fibre)):
        f = fib[il.fibre]
        d = np.asarray(f.direction_lps, float)
        d /= np.linalg.norm(d)
        tip = np.asarray(f.tip_lps_mm, float) - il.pullback_mm * d
        energy = il.energy_j if il.energy_j is not None else il.power_w * il.duration_s
        rows.append(
            [
                str(il.step),
                il.fibre,
                f"{il.power_w:g}",
                _mmss(il.duration_s),
                f"{energy:.0f}",
                f"{il.pullback_mm:.1f}",
                ", ".join(f"{x:.1f}" for x in tip),
            ]
        )
    return rows


def fibre_rows(plan: Plan, case: Case | None = None) -> list[list[str]]:
    """The fibre table; with `case`: skin entry, depth and entry window from
    `report.probe_tables.entry_cells` (found by the path check where the plan has none)."""
    rows = [["Fibre", "First tip (LPS mm)", "Direction (LPS)", "Skin entry (LPS mm)", "Depth (mm)"]]
    cells = {}
    if case is not None:
        from hepablate.report.probe_tables import entry_cells

        cells = entry_cells(case, plan.fibres)
        rows[0].append("Entry window")
    for f in plan.fibres:
        row = [
            f.id,
            ", ".join(f"{x:.1f}" for x in f.tip_lps_mm),
            ", ".join(f"{x:.3f}" for x in f.direction_lps),
            "-" if f.entry_lps_mm is None else ", ".join(f"{x:.1f}" for x in f.entry_lps_mm),
            "-" if f.depth_mm is None else f"{f.depth_mm:.1f}",
        ]
        rows.append(row if case is None else [*row[:3], *cells[(1, f.id)]])
    return rows


def metric_rows(plan: Plan) -> list[list[str]]:
    m = plan.metrics

    def fmt(v, pct=False, unit=""):
        if v is None:
            return "-"
        return f"{100 * v:.1f} %" if pct else f"{v:.2f}{unit}"

    return [
        ["Metric", "Value"],
        ["Target (tumour + margin) coverage", fmt(m.target_coverage, pct=True)],
        ["Tumour coverage", fmt(m.tumour_coverage, pct=True)],
        ["Minimum margin", fmt(m.min_margin_mm, unit=" mm")],
        ["Ablation zone volume", fmt(m.ablation_volume_ml, unit=" ml")],
        ["Non-target liver ablated", fmt(m.non_target_liver_ml, unit=" ml")],
        ["Coverage probability (placement error)", fmt(m.coverage_probability, pct=True)],
        ["Total energy", fmt(m.extra.get("total_energy_j"), unit=" J")],
        ["Maximum temperature (model)", fmt(m.extra.get("temperature_max_c"), unit=" degC")],
    ]


def sensitivity_rows(plan: Plan) -> list[list[str]]:
    ex = plan.metrics.extra
    names = [
        ("nominal", "Tissue-table values"),
        ("mu_a_low", "mu_a low end"),
        ("mu_a_high", "mu_a high end"),
        ("mu_s_low", "mu_s' low end"),
        ("mu_s_high", "mu_s' high end"),
        ("perfusion_low", "perfusion low end"),
        ("perfusion_high", "perfusion high end"),
    ]
    rows = [["Tissue properties", "Zone volume (ml)", "Target coverage"]]
    for key, label in names:
        v = ex.get(f"sensitivity.{key}.ablation_volume_ml")
        c = ex.get(f"sensitivity.{key}.target_coverage")
        if v is None or c is None:
            continue
        rows.append([label, f"{v:.2f}", f"{100 * c:.1f} %"])
    if "confident_target_coverage" in ex:
        from hepablate.evaluation.defaults import load_planning_defaults

        p_conf = load_planning_defaults().confident_zone_fraction.value
        rows.append(
            [
                f"Confident zone (ablated in >= {100 * p_conf:.0f} % of these runs)",
                f"{ex['confident_zone_ml']:.2f}",
                f"{100 * ex['confident_target_coverage']:.1f} % "
                f"(tumour {100 * ex['confident_tumour_coverage']:.1f} %)",
            ]
        )
        rows.append(
            [
                "Possible zone (ablated in any run)",
                f"{ex['possible_zone_ml']:.2f}",
                f"{100 * ex['possible_target_coverage']:.1f} %",
            ]
        )
    return rows if len(rows) > 1 else []


def figures(case: Case, ev: Evaluation) -> dict[str, bytes]:
    """PNG figures: temperature and damage slices, tip temperature histories."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hepablate.report.figures import VIEW_AXES, draw_orientation, lps_aligned

    r = ev.details
    log_omega = np.log10(np.maximum(r.omega, 1e-3))
    # Index order drawn as LPS order: flip a grid stored with reversed axes (lps_aligned).
    from hepablate.anatomy.vocabulary import VESSELS, base_name

    vessels = np.zeros(r.zone.shape, bool)
    for k, m in r.structures.items():
        if base_name(k) in VESSELS:
            vessels |= m
    g, (tgt, tmax_c, log_omega, zone, region, vessels) = lps_aligned(
        r.grid, [r.structures[case.target_key], r.tmax_c, log_omega, r.zone, ev.region, vessels]
    )
    cen = (
        np.argwhere(tgt).mean(axis=0).round().astype(int)
        if tgt.any()
        else (np.array(tgt.shape) // 2)
    )
    k0, j0 = int(cen[0]), int(cen[1])
    h = g.spacing_mm
    ext_axial = [
        g.origin_lps_mm[0],
        g.origin_lps_mm[0] + h[0] * (tgt.shape[2] - 1),
        g.origin_lps_mm[1] + h[1] * (tgt.shape[1] - 1),
        g.origin_lps_mm[1],
    ]
    ext_cor = [
        g.origin_lps_mm[0],
        g.origin_lps_mm[0] + h[0] * (tgt.shape[2] - 1),
        g.origin_lps_mm[2],
        g.origin_lps_mm[2] + h[2] * (tgt.shape[0] - 1),
    ]
    tips = np.array([s.tip_lps_mm for s in r.shots])
    out: dict[str, bytes] = {}
    for name, arr, cmap, label, vmin, vmax in (
        (
            "temperature",
            tmax_c,
            "inferno",
            "maximum temperature (degC)",
            37.0,
            max(100.0, float(np.percentile(tmax_c, 99.9))),
        ),
        ("damage", log_omega, "viridis", "log10 Arrhenius Omega", -3.0, 3.0),
    ):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
        for ax, sl, ext, title, ylab, pts in (
            (
                axes[0],
                (k0, slice(None), slice(None)),
                ext_axial,
                "axial (through target)",
                "y (LPS, mm)",
                tips[:, [0, 1]],
            ),
            (
                axes[1],
                (slice(None), j0, slice(None)),
                ext_cor,
                "coronal (through target)",
                "z (LPS, mm)",
                tips[:, [0, 2]],
            ),
        ):
            im = ax.imshow(
                arr[sl],
                cmap=cmap,
                extent=ext,
                vmin=vmin,
                vmax=vmax,
                origin="upper" if ylab.startswith("y") else "lower",
                interpolation="nearest",
                aspect="equal",
            )
            origin = "upper" if ylab.startswith("y") else "lower"
            for mask, colour, width, style in (
                (zone, "cyan", 1.2, "solid"),
                (region, "white", 1.0, "dashed"),
                (tgt, "lime", 1.0, "solid"),
                (vessels, "#4fa3ff", 1.0, "solid"),
            ):
                if mask[sl].any():
                    ax.contour(
                        mask[sl].astype(float),
                        levels=[0.5],
                        colors=colour,
                        linewidths=width,
                        linestyles=style,
                        extent=ext,
                        origin=origin,
                    )
            ax.plot(pts[:, 0], pts[:, 1], "w+", markersize=8)
            draw_orientation(ax, *VIEW_AXES["axial" if ylab.startswith("y") else "coronal"])
            ax.set_title(title)
            ax.set_xlabel("x (LPS, mm)")
            ax.set_ylabel(ylab)
        fig.colorbar(im, ax=axes, label=label, shrink=0.85)
        fig.suptitle(
            "zone (cyan), tumour (green), tumour + margin (white dashed), vessels (blue), tips (+)"
        )
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        out[name] = buf.getvalue()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for s in r.shots:
        t, temp = r.tip_history[s.index]
        ax.plot(t / 60.0, temp, label=f"{s.fibre_id} step {s.step}")
    ax.axhline(100.0, color="red", linestyle="--", linewidth=1, label="100 degC (charring)")
    ax.set_xlabel("time (min)")
    ax.set_ylabel("tip temperature (degC)")
    if len(r.shots) <= 8:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    out["tip_history"] = buf.getvalue()
    return out


_MODEL_TEXT = (
    "Light: steady diffusion approximation at 1064 nm, isotropic point source at each bare "
    "fibre tip, optical properties from the tissue table (coagulated tissue scatters more; "
    "re-solved during each illumination). Heat: transient Pennes bioheat equation; perfusion "
    "stops where Omega >= 1; large vessels are heat sinks held at blood temperature. Damage: "
    "Arrhenius integral (zone: Omega >= threshold) with CEM43 as a second criterion. Tip "
    "temperatures are model values at the grid scale; the model has no vaporisation or "
    "charring, so above 100 degC it is outside its validity."
)


def _table(rows: list[list[str]], caption: str = "", widths: list[float] | None = None):
    from hepablate.report.document import Paragraph, Table

    if not rows:
        return Paragraph("-", style="note")
    return Table(header=rows[0], rows=rows[1:], caption=caption, col_widths=widths)


def fibre_needles(plan: Plan) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(label, first tip LPS mm, direction, illuminated span mm) of each fibre: the span runs
    from the first tip back over its largest pull-back."""
    out = []
    for f in plan.fibres:
        pulls = [il.pullback_mm for il in plan.illuminations if il.fibre == f.id]
        out.append(
            (
                f"fibre {f.id}",
                np.asarray(f.tip_lps_mm, float),
                np.asarray(f.direction_lps, float),
                max(pulls, default=0.0) + 2.0,  # 2 mm: the emitting end of a bare fibre
            )
        )
    return out


def _shot_tips(plan: Plan) -> list[tuple[str, np.ndarray]]:
    """(fibre and step, tip LPS mm) of every illumination (the first tip less its pull-back)."""
    fib = {f.id: f for f in plan.fibres}
    out = []
    for il in plan.illuminations:
        f = fib[il.fibre]
        d = np.asarray(f.direction_lps, float)
        d = d / np.linalg.norm(d)
        out.append((f"{f.id} step {il.step}", np.asarray(f.tip_lps_mm, float) - il.pullback_mm * d))
    return out


def anatomy_figure(case: Case, ev: Evaluation) -> bytes:
    """Orthogonal slices through the target on the CT with the zone, target, vessels and the
    other no-go structures, and the fibres (drawn for infeasible plans too)."""
    from hepablate.report.figures import Needle, Overlay, orthogonal_slices
    from hepablate.report.needles import GROUP_COLOURS, anatomy_overlays, ct_background

    tumour = ev.structures[case.target_key]
    overlays = [
        Overlay(np.asarray(ev.zone, bool), GROUP_COLOURS["zone"], "zone", True, alpha=0.25),
        Overlay(tumour, GROUP_COLOURS["tumour"], "tumour"),
        Overlay(ev.region, GROUP_COLOURS["target"], "tumour + margin", linestyle="--"),
        *anatomy_overlays(ev.structures, case.target_key),
    ]
    needles = []
    for label, tip, d, span in fibre_needles(ev.plan):
        f = next(x for x in ev.plan.fibres if f"fibre {x.id}" == label)
        start = np.asarray(f.entry_lps_mm, float) if f.entry_lps_mm is not None else tip - 80 * d
        needles.append(Needle(start, tip, tip - span * d, f.id, "black"))
    return orthogonal_slices(
        ev.grid,
        ev.grid.with_array(tumour).centroid_lps_mm(),
        overlays,
        ct_background(case, ev.grid),
        needles,
        "Slices through the target centre",
    )


def build_document(case: Case, ev: Evaluation, figs: dict[str, bytes]):
    """The laser report as a generic `ReportDocument` (hepablate.report.document)."""
    from hepablate.case.summary import summarise_case
    from hepablate.report.common import (
        assumptions_table,
        case_rows,
        criteria_section,
        planning_section,
        provenance_section,
        thermal_damage_section,
        unsegmented_section,
    )
    from hepablate.report.document import Block, Figure, Paragraph, ReportDocument, Section
    from hepablate.report.needles import needle_section

    plan = ev.plan
    status = plan.status + (f": {plan.status_reason}" if plan.status_reason else "")
    warn_blocks: list[Block] = [
        Paragraph(f"[{w.code}] {w.message}", style=w.level) for w in plan.warnings
    ]
    captions = {
        "anatomy": "Slices through the target centre on the CT (W400/L40): zone (green), tumour "
        "(red), tumour + margin (orange dashed), vessels (blue), bile ducts (olive), bone "
        "(white), lung (cyan), bowel (pink), other no-go organs (purple); fibres black (thick: "
        "the illuminated span).",
        "temperature": "Maximum temperature (degC) through the target centre: zone (cyan), "
        "tumour (green), tumour + margin (white dashed), vessels (blue: heat sinks), tip "
        "positions (+).",
        "damage": "Arrhenius damage log10(Omega); the zone is Omega >= 1 (cyan).",
        "tip_history": "Tip temperature during each illumination: the mean temperature 2 mm "
        "from the emitter (the model does not resolve the tip itself; above 100 degC the tissue "
        "at the tip boils and a bare tip chars).",
    }
    region_ml = float(np.count_nonzero(ev.region)) * ev.grid.voxel_volume_ml
    head: list[Block] = [
        Paragraph(f"Status: {status}", "info" if plan.status == "feasible" else "error"),
        _table([["item", "value"], *case_rows(case, summarise_case(case), region_ml)], "", [1, 3]),
    ]
    from hepablate.anatomy.tissues import load_tissue_table

    omega_thr = float(load_tissue_table().damage.arrhenius_omega_threshold.value)
    safety = float(plan.evaluation.path_safety_distance_mm or 0.0) if plan.evaluation else 0.0
    sections = [
        Section("Case", head),
        unsegmented_section(case),
        Section(
            "Laser protocol sheet",
            [
                Paragraph(
                    _alignment_text(plan)
                    + "; illuminations with the same step run simultaneously; a pull-back "
                    "moves the tip back along its fibre from its first position."
                ),
                _table(
                    fibre_rows(plan, case),
                    "Fibres (LPS mm). * entry not stored in the plan: found by the path check "
                    "along the fibre's line. Entry window: rib space (ICS: intercostal space) "
                    "and side; see the fibre pages.",
                    [0.6, 1.8, 1.8, 2, 0.8, 1.4],
                ),
                _table(
                    protocol_rows(plan),
                    "Illuminations in delivery order",
                    [0.5, 0.6, 0.8, 1.1, 0.9, 1.0, 2.0],
                ),
            ],
        ),
        Section("Predicted result", [_table(metric_rows(plan), "", [3, 1.5])]),
        criteria_section(plan),
        Section("Warnings", warn_blocks or [Paragraph("none")]),
        thermal_damage_section(ev, omega_thr, _shot_tips(plan)),
        Section(
            "Sensitivity to tissue properties",
            [
                Paragraph(
                    "The zone recomputed with each end of the tissue table's range of "
                    "absorption (mu_a), reduced scattering (mu_s') and, in vivo, perfusion, one "
                    "at a time, on a grid of at least 2.5 mm; the confident zone is what "
                    "survives every one of these runs."
                ),
                _table(sensitivity_rows(plan))
                if sensitivity_rows(plan)
                else Paragraph(
                    "Not computed for this plan (laser_simulation.optical_sensitivity is off).",
                    style="note",
                ),
            ],
        ),
        Section(
            "Images",
            [Figure(v, captions.get(k, k)) for k, v in figs.items()]
            or [Paragraph("no forward run", style="note")],
            new_page=True,
        ),
        needle_section(
            case, fibre_needles(plan), safety, (ev.grid, np.asarray(ev.zone, bool)), "fibre"
        ),
        Section(
            "Model, assumptions and sources",
            [Paragraph(_MODEL_TEXT, style="note"), assumptions_table(plan)],
            new_page=True,
        ),
        provenance_section(plan),
    ]
    record = planning_section(plan)
    if record is not None:
        sections.insert(6, record)
    prov = plan.provenance
    footer = f"hepablate {prov.hepablate_version}, {prov.created_utc}. " if prov else ""
    return ReportDocument(
        title="Laser ablation plan",
        subtitle=f"Case {case.case_id}, target {case.target_id}, margin {case.margin_mm:g} mm. "
        f"Status: {plan.status}.",
        sections=sections,
        footer=footer + "A planning aid: the clinician decides.",
    )


def write_laser_report(out_dir: Path, case: Case, ev: Evaluation) -> list[Path]:
    """report.html and report.pdf into `out_dir` (the anatomy always; temperature and damage
    figures when a forward run exists)."""
    from hepablate.report.document import write_report

    figs = {"anatomy": anatomy_figure(case, ev)}
    if ev.details is not None:
        figs.update(figures(case, ev))
    return list(write_report(build_document(case, ev, figs), out_dir))


def _alignment_text(plan: Plan) -> str:
    """Whether the fibres are parallel, and if not the largest angle between two of them."""
    from hepablate.placement.geometry import angle_deg

    dirs = [np.asarray(f.direction_lps, float) for f in plan.fibres]
    worst = max((angle_deg(a, b) for i, a in enumerate(dirs) for b in dirs[:i]), default=0.0)
    if worst < 0.5:
        return "Fibres are parallel"
    return (
        f"Fibres are not all parallel: up to {worst:.1f} deg between two of them (a fibre "
        "turned off a blocked parallel path; see the directions below and the fibre pages)"
    )
