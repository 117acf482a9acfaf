"""Report sections every modality's plan report shares: the criteria table (criteria.yaml
evaluated on the plan), the planner's record (what the search tried, its notes), the case
table, the structures the case does not segment, where predicted thermal damage lies, the
assumptions with their sources and the provenance. The needle paths are in `needles`."""

from __future__ import annotations

import numpy as np

from hepablate.anatomy.vocabulary import BOWEL, base_name
from hepablate.case.model import Case
from hepablate.plans.model import CriterionResult, Plan
from hepablate.report.document import Block, Paragraph, Section, Table


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "" and 0.0 <= v <= 1.0 and not float(v).is_integer():
        return f"{100 * v:.1f} %"
    return f"{v:.2f} {unit}".strip()


def criterion_row(r: CriterionResult) -> list[str]:
    pct = r.metric in {"target_coverage", "tumour_coverage", "coverage_probability"}
    val = "-" if r.value is None else (f"{100 * r.value:.1f} %" if pct else _fmt(r.value, r.unit))
    lim = f"{100 * r.limit:.0f} %" if pct else _fmt(r.limit, r.unit)
    op = ">=" if r.direction == "min" else "<="
    return [
        r.code,
        r.metric,
        val,
        f"{op} {lim}",
        r.level,
        "pass" if r.passed else "FAIL",
    ]


def criteria_section(plan: Plan) -> Section:
    """The acceptance criteria as a table (one row each; a failed error makes the plan
    infeasible)."""
    if not plan.criteria:
        return Section("Acceptance criteria", [Paragraph("not evaluated", style="note")])
    return Section(
        "Acceptance criteria",
        [
            Table(
                header=["criterion", "metric", "value", "limit", "level", "result"],
                rows=[criterion_row(r) for r in plan.criteria],
                caption="From hepablate's criteria table (src/hepablate/data/criteria.yaml); "
                "the plan is feasible only when no error-level criterion fails.",
                col_widths=[2.2, 2.2, 1.2, 1.4, 0.9, 0.8],
            )
        ],
    )


def planning_section(plan: Plan) -> Section | None:
    """What the planner did (statistics and notes), if the plan still is the planner's."""
    rec = plan.planning
    if rec is None:
        return None
    blocks: list[Block] = [Paragraph(f"Planned by the {rec.planner}.", style="note")]
    for w in rec.notes:
        blocks.append(Paragraph(f"[{w.code}] {w.message}", style=w.level))
    if rec.stats:
        blocks.append(
            Table(
                header=["search statistic", "value"],
                rows=[[k, f"{v:g}"] for k, v in sorted(rec.stats.items())],
                col_widths=[3, 1],
            )
        )
    return Section("Planning record", blocks)


# ---- sections shared by the IRE and laser reports --------------------------------------------

#: What the plan could not check when a structure is not segmented, by structure name.
_CHECK_NEEDS: dict[str, str] = {
    "body": "skin entries and path depths (the image edge would be taken as skin)",
    "liver": "margins clipped to the liver, depth to the capsule",
    "portal_vein": "path clearance; heat sink and thermal damage at the wall",
    "hepatic_vein": "path clearance; heat sink and thermal damage at the wall",
    "hepatic_artery": "path clearance; thermal damage at the wall",
    "ivc": "path clearance; heat sink",
    "bile_duct": "path clearance; thermal injury to ducts (biliary stricture)",
    "gallbladder": "path clearance; thermal injury",
    "stomach": "path clearance; thermal injury (perforation)",
    "duodenum": "path clearance; thermal injury (perforation)",
    "colon": "path clearance; thermal injury (perforation)",
    "bowel": "path clearance; thermal injury (perforation)",
    "kidney": "path clearance",
    "lung": "path clearance (pneumothorax)",
    "pleura": "path clearance (transpleural path, pneumothorax)",
    "heart": "path clearance; distance of the field from the heart",
    "pericardium": "path clearance",
    "bone": "path clearance; rib numbering of the entry",
    "cartilage": "path clearance at the costal margin",
    "diaphragm": "structures passed by the path",
}


def unsegmented_section(case: Case) -> Section:
    """The structures a check needs that the case does not segment (or segments empty)."""
    present = {base_name(k) for k, m in case.structures.items() if m.any()}
    if present & BOWEL:
        present.add("bowel")  # "bowel" is the generic label; its named parts stand for it
    missing = [[name, why] for name, why in _CHECK_NEEDS.items() if name not in present]
    if not missing:
        return Section(
            "Structures not segmented",
            [Paragraph("Every structure the checks use is segmented in this case.", "note")],
        )
    return Section(
        "Structures not segmented",
        [
            Paragraph(
                "The case does not segment these structures, so the plan could not check "
                "what they need: look for them on the images before treatment.",
                "warning",
            ),
            Table(["structure", "unchecked"], missing, col_widths=[1.2, 4]),
        ],
    )


def case_rows(case: Case, summary, region_ml: float) -> list[list[str]]:
    """Rows of the case table: target size, centre, margin, nearest vessel and duct."""
    c = summary.target_centre_lps_mm
    rows = [
        [
            "case",
            f"{case.case_id} ({'CT' if case.ct is not None else 'no CT'}; grid "
            f"{' x '.join(str(n) for n in summary.grid_size_ijk)} at "
            f"{' x '.join(f'{s:g}' for s in summary.spacing_mm)} mm)",
        ],
        [
            "target",
            f"{case.target_id}: equivalent diameter {summary.target_equivalent_diameter_mm:.1f} "
            f"mm, longest {summary.target_longest_diameter_mm:.1f} mm, "
            f"{case.volume_ml(case.target_key):.1f} ml",
        ],
        ["target centre (LPS mm)", "(" + ", ".join(f"{v:.1f}" for v in c) + ")"],
        ["required margin", f"{case.margin_mm:g} mm (measured in liver)"],
        ["tumour + margin volume", f"{region_ml:.1f} ml"],
        [
            "nearest vessel",
            "none segmented"
            if summary.nearest_vessel is None
            else f"{summary.nearest_vessel}: {summary.nearest_vessel_gap_mm:.1f} mm from the "
            "tumour",
        ],
        [
            "nearest bile duct",
            "none segmented"
            if summary.nearest_bile_duct_gap_mm is None
            else f"{summary.nearest_bile_duct_gap_mm:.1f} mm from the tumour",
        ],
    ]
    rows += [["note", n] for n in case.notes]
    return rows


def thermal_damage_section(
    ev, omega_threshold: float, tips: list[tuple[str, np.ndarray]] | None = None
) -> Section:
    """Where predicted thermal damage (Arrhenius Omega >= threshold) lies: per structure,
    its volume and where (centroid, LPS mm, its distance from the target centre and the
    nearest of `tips` (label, LPS mm): the needle positions that heat it)."""
    from hepablate.anatomy.vocabulary import base_name

    omega = ev.maps.get("thermal_omega")
    title = "Predicted thermal damage"
    if omega is None:
        return Section(
            title,
            [Paragraph("Not computed for this plan (no thermal model run).", "note")],
        )
    dmg = np.asarray(omega) >= omega_threshold
    ml = ev.grid.voxel_volume_ml
    if not dmg.any():
        return Section(
            title,
            [Paragraph(f"No tissue reaches Omega >= {omega_threshold:g} anywhere.", "note")],
        )
    centre = ev.grid.with_array(ev.structures[ev.case.target_key]).centroid_lps_mm()
    rows = []
    for key, m in ev.structures.items():
        if base_name(key) == "body":
            continue
        hit = dmg & m
        n = int(np.count_nonzero(hit))
        if not n:
            continue
        where = ev.grid.with_array(hit).centroid_lps_mm()
        near = "-"
        if tips:
            dist = [float(np.linalg.norm(where - np.asarray(t, float))) for _, t in tips]
            k = int(np.argmin(dist))
            near = f"{tips[k][0]}: {dist[k]:.1f} mm"
        rows.append(
            [
                "target tumour" if key == ev.case.target_key else key,
                f"{n * ml:.2f}",
                "(" + ", ".join(f"{v:.1f}" for v in where) + ")",
                f"{float(np.linalg.norm(where - centre)):.1f}",
                near,
            ]
        )
    rows.sort(key=lambda r: -float(r[1]))
    # The critical_thermal_damage criterion counts each vessel's, duct's or organ's wall too.
    extra = ev.plan.metrics.extra
    walls = [
        f"{k.split('.', 1)[1]} {v:.2f} ml"
        for k, v in sorted(extra.items())
        if k.startswith(("critical_damage_ml.", "thermal_damage_ml.")) and v > 0
    ]
    wall_note: list[Block] = (
        [
            Paragraph(
                "With the one-voxel wall around each structure, as the critical_thermal_damage "
                "criterion counts it: " + "; ".join(walls) + ".",
                "note",
            )
        ]
        if walls
        else []
    )
    return Section(
        title,
        [
            Paragraph(
                f"Tissue with Arrhenius Omega >= {omega_threshold:g} (thermal coagulation) "
                f"from the thermal model: {int(dmg.sum()) * ml:.2f} ml in all.",
                "normal",
            ),
            Table(
                [
                    "structure",
                    "damaged (ml)",
                    "centre of the damage (LPS mm)",
                    "from target centre (mm)",
                    "nearest tip",
                ],
                rows,
                col_widths=[1.5, 0.9, 2, 1.2, 1.6],
            ),
            *wall_note,
        ],
    )


def assumptions_table(plan: Plan) -> Table:
    """The plan's parameters with their values and sources (from its provenance)."""
    prov = plan.provenance
    rows = [
        [p.name, f"{p.value} {p.unit}".strip(), p.source]
        for p in (prov.parameters if prov else [])
        if not p.name.startswith("option.")
    ]
    return Table(["parameter", "value", "source"], rows, col_widths=[2.2, 1.3, 4])


def provenance_section(plan: Plan) -> Section:
    prov = plan.provenance
    pv = [
        ["hepablate version", prov.hepablate_version if prov else "-"],
        ["created (UTC)", prov.created_utc if prov else "-"],
        ["command", (prov.command if prov else "") or "-"],
        ["runtime", f"{plan.runtime_s:.1f} s" if plan.runtime_s is not None else "-"],
    ]
    for k, h in prov.input_hashes.items() if prov else []:
        pv.append([f"sha256 {k}", h])
    return Section("Provenance", [Table(["item", "value"], pv, col_widths=[1, 3])])
