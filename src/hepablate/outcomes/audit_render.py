"""Render the audit dict as figures (matplotlib PNG), self-contained HTML and a PDF (reportlab).

The report is laid out for an audit lead: key efficacy and safety outcomes per modality first,
then survival, complications by grade, subgroups, the comparison with the published series
(funnel plots), data completeness, and the definitions used.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from hepablate.core.output import atomic_output_dir
from hepablate.core.progress import NullProgress, Progress
from hepablate.outcomes.audit import (
    DAYS_PER_MONTH,
    AuditSettings,
    binomial_control_limits,
    build_audit,
    read_registry,
)
from hepablate.outcomes.survival import KaplanMeier

EFFICACY_ROWS = (
    ("technical_success", "Technical success (tumours)"),
    ("complete_ablation", "Complete ablation, primary efficacy (tumours)"),
    ("technique_efficacy", "Technique efficacy at day {at_days} +/- {tolerance_days} (tumours)"),
    ("secondary_efficacy", "Complete ablation after repeat ablation (tumours)"),
    ("residual_unablated", "Residual unablated tumour (tumours)"),
    ("ltp", "Local tumour progression (completely ablated tumours)"),
    ("local_recurrence", "Local recurrence (patients)"),
    ("distant_recurrence", "Distant recurrence, intra- or extrahepatic (patients)"),
)
SAFETY_ROWS = (
    ("mortality", "Procedure-related mortality"),
    ("mortality_30d_all_cause", "30-day mortality, all causes"),
    ("bleeding", "Bleeding"),
    ("infection", "Infection"),
    ("damage_surrounding_tissue", "Damage to surrounding tissue"),
    ("arrhythmia", "Arrhythmia"),
    ("needle_tract_seeding", "Needle-tract seeding"),
    ("complications_any", "Any complication"),
    ("major_complications_cd3plus", "Major complication (Clavien-Dindo >= III)"),
    ("readmission_30d", "Readmission within 30 days (sessions)"),
)
SURVIVAL_ROWS = (
    ("os", "Overall survival (patients)"),
    ("dfs", "Disease-free survival (patients)"),
    ("ltpfs", "Local tumour progression-free survival (tumours)"),
    ("ttp", "Time to progression (patients)"),
)
MEASURE_LABEL = dict(EFFICACY_ROWS + SAFETY_ROWS)
GROUP_COLOURS = {
    "overall": "#222222",
    "ire": "#1f77b4",
    "laser": "#d62728",
    "microwave": "#2ca02c",
    "radiofrequency": "#ff7f0e",
}


def fmt_prop(p: dict[str, Any] | None, ci: str = "wilson") -> str:
    if not p or not p.get("n"):
        return "no data"
    lo, hi = p[f"{ci}_ci"]
    return f"{p['events']}/{p['n']} = {100 * p['rate']:.1f}% ({100 * lo:.1f} to {100 * hi:.1f})"


def fmt_days(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.0f}"


def fmt_surv(d: dict[str, Any] | None) -> list[str]:
    if not d:
        return ["no data"] * 4
    med = fmt_days(d["median_days"])
    ci = f"({fmt_days(d['median_ci_lower_days'])} to {fmt_days(d['median_ci_upper_days'])})"
    cells = [f"{d['events']}/{d['n']}", f"{med} {ci}"]
    for k in ("365", "1095"):
        v = d["survival_at_days"].get(k)
        cells.append(
            "not observed"
            if v is None
            else f"{100 * v['survival']:.1f}% ({100 * (v['ci_lower'] or 0):.1f} to "
            f"{100 * (v['ci_upper'] or 0):.1f})"
        )
    return cells


# --- figures ---------------------------------------------------------------------------


def _png(fig: Any, tight: bool = True) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buf.getvalue()


def km_figure(curves: dict[str, KaplanMeier], title: str, labels: dict[str, str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for g, km in curves.items():
        t = np.concatenate([[0.0], km.times, [km.max_time]]) / DAYS_PER_MONTH
        s = np.concatenate([[1.0], km.survival, [km.survival[-1] if km.survival.size else 1.0]])
        c = GROUP_COLOURS.get(g, "#555555")
        ax.step(
            t,
            s,
            where="post",
            color=c,
            lw=2.2 if g == "overall" else 1.4,
            label=f"{labels.get(g, g)} (n={km.n}, events={km.n_events_total})",
        )
        if g == "overall" and km.times.size:
            lo = np.concatenate([[1.0], km.lower, [km.lower[-1]]])
            hi = np.concatenate([[1.0], km.upper, [km.upper[-1]]])
            ax.fill_between(
                t,
                np.nan_to_num(lo),
                np.nan_to_num(hi, nan=1.0),
                step="post",
                color=c,
                alpha=0.12,
                lw=0,
            )
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel("months after first ablation")
    ax.set_ylabel("probability")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return _png(fig)


def funnel_figure(rows: list[dict[str, Any]], modality_label: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    k = len(rows)
    ncol = 3 if k > 4 else k
    nrow = int(np.ceil(k / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 2.7 * nrow), squeeze=False)
    for ax in axes.flat[k:]:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows, strict=False):
        p0 = r["published"]["pooled_rate"]
        ns = [s["n"] for s in r["published"]["studies"]] + [r["unit"]["n"]]
        nmax = max(ns) * 1.3
        grid = np.unique(np.geomspace(5, max(nmax, 10), 40).astype(int))
        for cov, style in ((0.95, "--"), (0.998, ":")):
            if not 0.0 < p0 < 1.0:
                break  # degenerate: no limits around a pooled rate of 0 or 1
            lo, hi = binomial_control_limits(p0, grid, cov)
            ax.plot(grid, 100 * lo, "k" + style, lw=0.8)
            ax.plot(
                grid,
                100 * hi,
                "k" + style,
                lw=0.8,
                label=f"{100 * cov:g}% limits" if cov == 0.95 else "99.8% limits",
            )
        ax.axhline(100 * p0, color="grey", lw=0.8, label="pooled published rate")
        for s in r["published"]["studies"]:
            ax.plot(s["n"], 100 * s["events"] / s["n"], "o", color="#7f7f7f", ms=4)
        u = r["unit"]
        if u["n"]:
            ax.plot(u["n"], 100 * u["rate"], "D", color="#d62728", ms=7, label="this unit")
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())  # log minor ticks cost seconds to lay out
        ax.set_title(MEASURE_LABEL.get(r["measure"], r["measure"]).split(" (")[0], fontsize=9)
        ax.set_xlabel("denominator", fontsize=8)
        ax.set_ylabel("%", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=6, loc="best")
    fig.suptitle(f"{modality_label}: this unit (red) against published series (grey)", fontsize=10)
    fig.subplots_adjust(
        left=0.07, right=0.98, bottom=0.08, top=0.92 if nrow > 1 else 0.82, hspace=0.55, wspace=0.3
    )
    return _png(fig, tight=False)


def make_figures(
    report: dict[str, Any], kms: dict[str, dict[str, KaplanMeier]]
) -> dict[str, bytes]:
    labels = {g: v["label"] for g, v in report["groups"].items()}
    figs: dict[str, bytes] = {}
    for key, title in SURVIVAL_ROWS:
        if kms.get(key):
            figs[f"km_{key}"] = km_figure(kms[key], title, labels)
    by_mod: dict[str, list[dict[str, Any]]] = {}
    for r in report["published_comparison"]:
        by_mod.setdefault(r["modality"], []).append(r)
    for mod, rows in by_mod.items():
        figs[f"funnel_{mod}"] = funnel_figure(rows, labels.get(mod, mod))
    return figs


# --- HTML ------------------------------------------------------------------------------

_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Ablation audit{{ ' - ' + site if site else '' }}</title>
<style>
body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px;margin-bottom:2px} h2{font-size:17px;border-bottom:2px solid #345;
padding-bottom:3px;margin-top:28px} h3{font-size:14px}
table{border-collapse:collapse;margin:8px 0;font-size:12px}
th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#e8eef4} .muted{color:#666;font-size:12px} img{max-width:100%}
.flag{color:#b00;font-weight:bold}
</style></head><body>
<h1>Image-guided liver ablation: outcomes and safety audit</h1>
<p class="muted">Site: {{ site or 'all sites' }} &middot; data as of {{ r.as_of }} &middot;
database {{ r.database }} &middot; hepablate {{ r.hepablate_version }}<br>
Proportions: events/denominator = rate (95% Wilson interval); Clopper-Pearson intervals are in
audit.json. Survival: Kaplan-Meier, Greenwood variance, {{ r.survival_ci_method }} 95% CI,
times in days.</p>
<table><tr><th></th>{% for g in groups %}<th>{{ r.groups[g].label }}</th>{% endfor %}</tr>
<tr><td>Patients treated</td>{% for g in groups %}<td>{{ r.groups[g].n_patients }}</td>{% endfor %}</tr>
<tr><td>Tumours treated</td>{% for g in groups %}<td>{{ r.groups[g].n_tumours }}</td>{% endfor %}</tr>
<tr><td>Sessions</td>{% for g in groups %}<td>{{ r.groups[g].n_sessions }}</td>{% endfor %}</tr>
</table>
{% for sec in sections %}
<h2>{{ sec.title }}</h2>
{% if sec.note %}<p class="muted">{{ sec.note }}</p>{% endif %}
{% for t in sec.tables %}
{% if t.title %}<h3>{{ t.title }}</h3>{% endif %}
<table><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% endfor %}
{% for f in sec.figures %}<p><img alt="{{ f }}" src="data:image/png;base64,{{ figs[f] }}"></p>{% endfor %}
{% endfor %}
</body></html>
"""


def _sections(r: dict[str, Any], figs: dict[str, bytes]) -> list[dict[str, Any]]:
    groups = list(r["groups"])
    head = ["Outcome"] + [r["groups"][g]["label"] for g in groups]
    secs: list[dict[str, Any]] = [_summary(r)]
    secs.append(
        {
            "title": "1. Key efficacy outcomes",
            "note": "NICE key efficacy outcomes (HTG722 section 3.2). Tumour end points are grouped by "
            "the modality of the tumour's first ablation, patient end points by the "
            "patient's first session. Terminology: Ahmed et al., Radiology 2014.",
            "tables": [
                {
                    "title": None,
                    "header": head,
                    "rows": [
                        [label.format(**r["groups"]["overall"]["efficacy"][k])]
                        + [fmt_prop(r["groups"][g]["efficacy"][k]) for g in groups]
                        for k, label in EFFICACY_ROWS
                    ],
                }
            ],
            "figures": [],
        }
    )
    srows = []
    for k, label in SURVIVAL_ROWS:
        for g in groups:
            srows.append([label, r["groups"][g]["label"], *fmt_surv(r["groups"][g]["survival"][k])])
    tests = r.get("tests", {})
    test_rows = []
    for k, v in tests.items():
        if k.startswith("logrank") and "chi2" in v:
            test_rows.append(
                [
                    k.replace("_", " "),
                    f"chi2 = {v['chi2']:.2f}, df = {v['df']}, p = {v['p_value']:.3g}",
                ]
            )
    cox = tests.get("cox_os", {})
    for t in cox.get("terms", []):
        test_rows.append(
            [
                f"Cox OS: {t['covariate']}",
                f"HR {t['hazard_ratio']:.2f} ({t['hr_lower']:.2f} to "
                f"{t['hr_upper']:.2f}), p = {t['p_value']:.3g}",
            ]
        )
    secs.append(
        {
            "title": "2. Survival and time to progression",
            "note": "Puijk et al., Radiology 2021: time zero is the first ablation; OS, DFS and time "
            "to progression per patient, LTP-free survival per completely ablated tumour. "
            f"Median and 1-/3-year estimates with {r['survival_ci_method']} 95% CI; times in "
            "days.",
            "tables": [
                {
                    "title": None,
                    "header": [
                        "End point",
                        "Group",
                        "Events/n",
                        "Median days (95% CI)",
                        "1 year (365 d)",
                        "3 years (1095 d)",
                    ],
                    "rows": srows,
                },
                {
                    "title": "Comparisons between modalities (not randomised: indication bias)",
                    "header": ["Test", "Result"],
                    "rows": test_rows or [["none", tests.get("note", "")]],
                },
            ],
            "figures": [f"km_{k}" for k, _ in SURVIVAL_ROWS if f"km_{k}" in figs],
        }
    )
    secs.append(
        {
            "title": "3. Key safety outcomes",
            "note": "NICE key safety outcomes (HTG722 section 3.3, IPG overview): patients with at "
            "least one event, among patients who had a session of that modality.",
            "tables": [
                {
                    "title": None,
                    "header": head,
                    "rows": [
                        [label] + [fmt_prop(r["groups"][g]["safety"][k]) for g in groups]
                        for k, label in SAFETY_ROWS
                    ],
                }
            ],
            "figures": [],
        }
    )
    grade_tables = []
    for scheme, title in (
        ("clavien_dindo", "Clavien-Dindo (Dindo 2004)"),
        ("sir_2003", "SIR 2003 (Sacks)"),
        ("sir_2017", "SIR 2017 (Khalilzadeh)"),
        ("cirse", "CIRSE (Filippiadis 2017)"),
        ("ctcae", "CTCAE v5"),
        ("timing", "Timing (Ahmed 2014)"),
    ):
        keys = list(r["groups"]["overall"]["complications"][scheme])
        grade_tables.append(
            {
                "title": title,
                "header": ["Group", *keys],
                "rows": [
                    [
                        r["groups"][g]["label"],
                        *[r["groups"][g]["complications"][scheme][k] for k in keys],
                    ]
                    for g in groups
                ],
            }
        )
    grade_tables.append(
        {
            "title": "Comprehensive Complication Index per session (Slankamenac 2013)",
            "header": [
                "Group",
                "Sessions",
                "Mean CCI",
                "Sessions with a complication",
                "Median CCI of those",
            ],
            "rows": [
                [
                    r["groups"][g]["label"],
                    *[_s(v) for v in r["groups"][g]["complications"]["cci_per_session"].values()],
                ]
                for g in groups
            ],
        }
    )
    secs.append(
        {
            "title": "4. Complications by grade (adverse events)",
            "note": "Grades are derived from the recorded facts of each event by hepablate's "
            "rules (docs/outcomes.md), never entered by hand.",
            "tables": grade_tables,
            "figures": [],
        }
    )
    sub_tables = []
    for by, title in (
        ("tumour_size", "By tumour size (longest diameter at baseline)"),
        ("tumour_type", "By tumour type"),
    ):
        rows = []
        for g in groups:
            for k, v in r["groups"][g]["subgroups"][by].items():
                rows.append(
                    [
                        r["groups"][g]["label"],
                        k,
                        v["n_tumours"],
                        fmt_prop(v["complete_ablation"]),
                        fmt_prop(v["ltp"]),
                    ]
                )
        sub_tables.append(
            {
                "title": title,
                "header": ["Group", "Subgroup", "Tumours", "Complete ablation", "LTP"],
                "rows": rows,
            }
        )
    secs.append(
        {
            "title": "5. Subgroups",
            "note": "Size bands as the published series report them (<= 3 cm, 3-5 cm, > 5 cm).",
            "tables": sub_tables,
            "figures": [],
        }
    )
    comp_rows = []
    for c in r["published_comparison"]:
        pub = c["published"]
        studies = "; ".join(
            f"{s['citation']} {s['events']}/{s['n']} {s['unit']}"
            + (" (derived)" if s["derived"] else "")
            for s in pub["studies"]
        )
        comp_rows.append(
            [
                r["groups"][c["modality"]]["label"],
                MEASURE_LABEL.get(c["measure"], c["measure"]),
                fmt_prop(c["unit"]),
                f"{pub['events']}/{pub['n']} = {100 * pub['pooled_rate']:.1f}%",
                c.get("funnel", {}).get("position", "no data"),
                studies,
            ]
        )
    secs.append(
        {
            "title": "6. Comparison with the published series",
            "note": "Published figures from the NICE IRE overview (IP 1019/2, 2019, Table 2), copied "
            "into src/hepablate/data/published_series.yaml with their sources. Series differ "
            "in denominators (patients, tumours, procedures), definitions and case mix; read "
            "a flag as a prompt to look, not a verdict. Laser: " + r["published_laser_note"],
            "tables": [
                {
                    "title": None,
                    "header": [
                        "Modality",
                        "Measure",
                        "This unit",
                        "Pooled published",
                        "Funnel position",
                        "Studies",
                    ],
                    "rows": comp_rows or [["-", "no published comparator", "", "", "", ""]],
                }
            ],
            "figures": [k for k in figs if k.startswith("funnel_")],
        }
    )
    c = r["completeness"]
    od = [
        [o["patient_code"], o["visit_month"], o["due_date"], o["days_overdue"]]
        for o in c["overdue"][:40]
    ]
    secs.append(
        {
            "title": "7. Data completeness",
            "note": f"Schedule: imaging at {', '.join(map(str, c['schedule']['months']))} months after "
            f"the first ablation, +/- {c['schedule']['tolerance_days']} days; a visit is due "
            f"once its window has closed by {c['as_of']} and the patient was alive and not "
            "transplanted.",
            "tables": [
                {
                    "title": None,
                    "header": ["Item", "Value"],
                    "rows": [
                        ["Patients treated", c["patients_treated"]],
                        ["Visits due / missed", f"{c['visits_due']} / {c['visits_missed']}"],
                        ["Patients with a missed visit", fmt_prop(c["patients_with_missed_visit"])],
                        [
                            "Patients without any follow-up imaging",
                            fmt_prop(c["patients_without_any_followup"]),
                        ],
                        [
                            "Patients overdue now (no imaging since a missed visit)",
                            c["patients_overdue_now"],
                        ],
                        *[[f"Missing: {k}", fmt_prop(v)] for k, v in c["missing_fields"].items()],
                    ],
                },
                {
                    "title": f"Overdue follow-up ({len(c['overdue'])} patients; first 40 shown)",
                    "header": ["Patient code", "Visit (month)", "Due", "Days overdue"],
                    "rows": od or [["none", "", "", ""]],
                },
            ],
            "figures": [],
        }
    )
    return secs


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    """The first things an audit lead looks for: flags against the published series, deaths,
    major complications and follow-up that is owed."""
    o = r["groups"]["overall"]
    c = r["completeness"]
    rows: list[list[Any]] = [
        ["Procedure-related deaths (all modalities)", fmt_prop(o["safety"]["mortality"])],
        [
            "Major complications, Clavien-Dindo >= III (patients)",
            fmt_prop(o["safety"]["major_complications_cd3plus"]),
        ],
        [
            "Complete ablation, primary efficacy (tumours)",
            fmt_prop(o["efficacy"]["complete_ablation"]),
        ],
        ["Local tumour progression (tumours)", fmt_prop(o["efficacy"]["ltp"])],
        ["Patients overdue for follow-up imaging now", c["patients_overdue_now"]],
        ["Patients with a missed follow-up visit", fmt_prop(c["patients_with_missed_visit"])],
    ]
    flags = [
        x
        for x in r["published_comparison"]
        if x.get("funnel") and x["funnel"]["position"].startswith(("between", "outside"))
    ]
    for x in flags:
        rows.append(
            [
                f"Funnel flag: {r['groups'][x['modality']]['label']}, "
                f"{MEASURE_LABEL.get(x['measure'], x['measure'])}",
                f"{fmt_prop(x['unit'])}; published {100 * x['published']['pooled_rate']:.1f}%: "
                f"{x['funnel']['position']}",
            ]
        )
    if not flags:
        rows.append(["Funnel flags", "none: every compared rate is within the 95% limits"])
    return {
        "title": "Summary",
        "note": "Funnel flags compare the unit with the pooled published series (section 6); "
        "read them as prompts to look at the cases, not as verdicts.",
        "tables": [{"title": None, "header": ["Item", "Value"], "rows": rows}],
        "figures": [],
    }


def _s(v: Any) -> str:
    return "-" if v is None else str(v)


def render_html(report: dict[str, Any], figs: dict[str, bytes]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True)
    b64 = {k: base64.b64encode(v).decode("ascii") for k, v in figs.items()}
    return env.from_string(_HTML).render(
        r=report,
        site=report.get("site"),
        groups=list(report["groups"]),
        sections=_sections(report, figs),
        figs=b64,
    )


# --- PDF -------------------------------------------------------------------------------


def render_pdf(report: dict[str, Any], figs: dict[str, bytes], path: Path) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    ss = getSampleStyleSheet()
    cell = ss["BodyText"].clone("cell", fontSize=7, leading=8.5)
    head = cell.clone("head", fontName="Helvetica-Bold")
    note = ss["BodyText"].clone("note", fontSize=8, leading=10, textColor=colors.HexColor("#555"))
    page_w = landscape(A4)[0] - 30 * mm

    def esc(x: Any) -> str:
        return str(x).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def table(header: list[Any], rows: list[list[Any]]) -> Table:
        data = [[Paragraph(esc(h), head) for h in header]]
        data += [[Paragraph(esc(c), cell) for c in row] for row in rows]
        n = len(header)
        first = min(0.28, 1.6 / n) * page_w if n > 2 else 0.35 * page_w
        widths = [first] + [(page_w - first) / (n - 1)] * (n - 1)
        t = Table(data, colWidths=widths, repeatRows=1)
        t.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#999999")),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    (
                        "ROWBACKGROUNDS",
                        (0, 1),
                        (-1, -1),
                        [colors.white, colors.HexColor("#f6f6f6")],
                    ),
                ]
            )
        )
        return t

    def image(key: str, width: float) -> Image:
        from reportlab.lib.utils import ImageReader

        data = figs[key]
        iw, ih = ImageReader(io.BytesIO(data)).getSize()
        h = width * ih / iw
        max_h = 175 * mm
        if h > max_h:
            width, h = width * max_h / h, max_h
        return Image(io.BytesIO(data), width=width, height=h)

    site = report.get("site") or "all sites"
    story: list[Any] = [
        Paragraph("Image-guided liver ablation: outcomes and safety audit", ss["Title"]),
        Paragraph(
            esc(
                f"Site: {site}. Data as of {report['as_of']}. Database "
                f"{report['database']}. hepablate {report['hepablate_version']}."
            ),
            note,
        ),
        Paragraph(
            esc(
                "Proportions: events/denominator = rate (95% Wilson interval; "
                "Clopper-Pearson in audit.json). Survival: Kaplan-Meier, Greenwood "
                f"variance, {report['survival_ci_method']} 95% CI, times in days."
            ),
            note,
        ),
        Spacer(1, 4 * mm),
    ]
    groups = list(report["groups"])
    story.append(
        table(
            ["", *[report["groups"][g]["label"] for g in groups]],
            [
                ["Patients treated", *[report["groups"][g]["n_patients"] for g in groups]],
                ["Tumours treated", *[report["groups"][g]["n_tumours"] for g in groups]],
                ["Sessions", *[report["groups"][g]["n_sessions"] for g in groups]],
            ],
        )
    )
    for i, sec in enumerate(_sections(report, figs)):
        if i in (1, 2, 4, 6, 7):
            story.append(PageBreak())
        block: list[Any] = [Spacer(1, 3 * mm), Paragraph(esc(sec["title"]), ss["Heading2"])]
        if sec.get("note"):
            block.append(Paragraph(esc(sec["note"]), note))
        story.append(KeepTogether(block))
        for t in sec["tables"]:
            part: list[Any] = []
            if t["title"]:
                part.append(Paragraph(esc(t["title"]), ss["Heading4"]))
            part += [table(t["header"], t["rows"]), Spacer(1, 2 * mm)]
            # keep short tables whole (with their title) rather than split across pages
            story.extend([KeepTogether(part)] if len(t["rows"]) <= 20 else part)
        kms = [f for f in sec["figures"] if f.startswith("km_")]
        for a, b in zip(kms[::2], kms[1::2] + [None] * (len(kms) % 2), strict=True):
            cells = [image(a, page_w / 2 - 4 * mm)] + ([image(b, page_w / 2 - 4 * mm)] if b else [])
            story.append(Table([cells], colWidths=[page_w / 2] * len(cells)))
        for f in sec["figures"]:
            if f.startswith("funnel_"):
                story.append(PageBreak())
                story.append(image(f, page_w * 0.8))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 8 * mm, f"hepablate audit - {site} - as of {report['as_of']}")
        canvas.drawRightString(landscape(A4)[0] - 15 * mm, 8 * mm, f"page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        str(path),
        pagesize=landscape(A4),
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title="hepablate audit report",
        author="hepablate",
    )
    from reportlab import rl_config

    a85 = rl_config.useA85
    rl_config.useA85 = 0  # binary image streams: ASCII85-encoding the PNGs costs ~0.5 s
    try:
        doc.build(story, onFirstPage=footer, onLaterPages=footer)
    finally:
        rl_config.useA85 = a85


def write_audit_report(
    url: str,
    out: str | Path,
    settings: AuditSettings | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Read the registry at `url` and write audit.json, audit.html and audit.pdf into `out`
    (atomically: on any error nothing is written). Returns the audit dict."""
    s = settings or AuditSettings()
    prog = progress or NullProgress()
    data = read_registry(url, s.site)
    report, kms = build_audit(data, s, prog)
    figs = make_figures(report, kms)
    with atomic_output_dir(out) as tmp:
        (tmp / "audit.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        (tmp / "audit.html").write_text(render_html(report, figs))
        render_pdf(report, figs, tmp / "audit.pdf")
    return report
