"""Report sections every modality's plan report shares: the criteria table (criteria.yaml
evaluated on the plan) and the planner's record (what the search tried, its notes)."""

from __future__ import annotations

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
