"""The audit report's tumour-response section (RECIST 1.1 / mRECIST by time point)."""

from __future__ import annotations

from typing import Any

from hepablate.report.document import Block, Paragraph, Section, Table

LABEL = {
    "cr": "CR",
    "pr": "PR",
    "sd": "SD",
    "non_cr_non_pd": "Non-CR/non-PD",
    "pd": "PD",
    "ne": "NE",
    "objective_response": "Objective response (CR+PR)",
}
CRITERIA_LABEL = {"recist1.1": "RECIST 1.1", "mrecist": "mRECIST (HCC only)"}


def _fmt(p: dict[str, Any]) -> str:
    if not p.get("n"):
        return "-"
    lo, hi = p["wilson_ci"]
    return f"{p['events']}/{p['n']} = {100 * p['rate']:.1f}% ({100 * lo:.1f} to {100 * hi:.1f})"


def response_section(report: dict[str, Any], title: str) -> Section | None:
    r = report.get("responses")
    if not r:
        return None
    months = [str(m) for m in r["time_points_months"]]
    blocks: list[Block] = [
        Paragraph(
            f"Responses derived by the engine from the lesion measurements ({r['baseline']}); "
            f"time points at {', '.join(months)} months +/- {r['tolerance_days']} days, one "
            f"follow-up per patient per time point. Rule: {r['rule']}. Proportions with "
            "Wilson 95 % intervals.",
            "note",
        )
    ]
    for g, block in r["by_group"].items():
        for crit, tps in block.items():
            rows = [
                [LABEL[k]] + [_fmt(tps[m][k]) for m in months]
                for k in ("cr", "pr", "sd", "non_cr_non_pd", "pd", "ne", "objective_response")
            ]
            rows.insert(0, ["Patients assessed"] + [str(tps[m]["n"]) for m in months])
            n = len(months) + 1
            blocks.append(
                Table(
                    ["Response"] + [f"Month {m}" for m in months],
                    rows,
                    col_widths=[0.22] + [0.78 / (n - 1)] * (n - 1),
                    title=f"{report['groups'].get(g, {}).get('label', g)}: {CRITERIA_LABEL[crit]}",
                    striped=True,
                    keep_together=True,
                )
            )
    d = r["discrepancies"]
    rows = [
        [
            str(x["followup_id"]),
            str(x["patient_code"]),
            x["followup_date"],
            CRITERIA_LABEL[x["criteria"]],
            x["stored"],
            x["derived"],
            "; ".join(x["reasons"]) or "-",
        ]
        for x in d["followups"][:40]
    ]
    blocks.append(
        Table(
            ["Follow-up", "Patient", "Date", "Criteria", "Stored", "Derived", "Why"],
            rows or [["none", "", "", "", "", "", ""]],
            title=f"Stored responses that disagree with the derived ones: {d['count']} "
            "(first 40 shown)",
            striped=True,
        )
    )
    return Section(title, blocks, new_page=True)
