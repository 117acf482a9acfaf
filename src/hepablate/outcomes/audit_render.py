"""The audit dict as a `ReportDocument` with its figures (`audit_figures`), written as
self-contained HTML and an A4 landscape PDF by `hepablate.report.document`.

The report is laid out for an audit lead: key efficacy and safety outcomes per modality first,
then survival, complications by grade, subgroups, the comparison with the published series
(funnel plots), data completeness, and the definitions used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hepablate.core.output import atomic_output_dir
from hepablate.core.progress import NullProgress, Progress
from hepablate.outcomes.audit import AuditSettings, build_audit, read_registry
from hepablate.outcomes.audit_figures import funnel_figure, km_figure
from hepablate.outcomes.responses_render import response_section
from hepablate.outcomes.survival import KaplanMeier
from hepablate.report.document import (
    Align,
    Block,
    Figure,
    FigureGrid,
    PageBreak,
    Paragraph,
    ReportDocument,
    Section,
    Table,
    write_report,
)

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
        figs[f"funnel_{mod}"] = funnel_figure(rows, labels.get(mod, mod), MEASURE_LABEL)
    return figs


# --- the document ----------------------------------------------------------------------

GRADE_SCHEMES = (
    ("clavien_dindo", "Clavien-Dindo (Dindo 2004)"),
    ("sir_2003", "SIR 2003 (Sacks)"),
    ("sir_2017", "SIR 2017 (Khalilzadeh)"),
    ("cirse", "CIRSE (Filippiadis 2017)"),
    ("ctcae", "CTCAE v5"),
    ("timing", "Timing (Ahmed 2014)"),
)


def _table(
    header: list[str],
    rows: list[list[Any]],
    title: str = "",
    right: tuple[int, ...] = (),
    keep: bool | None = None,
) -> Table:
    """A striped table: a wider first (label) column, count columns `right`-aligned, kept on
    one page when it has at most 20 rows (unless `keep` says otherwise)."""
    n = len(header)
    first = min(0.28, 1.6 / n) if n > 2 else 0.35
    align: list[Align] = ["right" if i in right else "left" for i in range(n)]
    return Table(
        header,
        [[_s(c) for c in r] for r in rows],
        col_widths=[first] + [(1 - first) / (n - 1)] * (n - 1),
        title=title,
        align=align,
        striped=True,
        keep_together=len(rows) <= 20 if keep is None else keep,
    )


def _s(v: Any) -> str:
    return "-" if v is None else str(v)


def _note(text: str) -> Paragraph:
    return Paragraph(text, "note")


def _intro(r: dict[str, Any], groups: list[str]) -> Section:
    g = r["groups"]
    return Section(
        "",
        [
            _note(
                "Proportions: events/denominator = rate (95% Wilson interval); Clopper-Pearson "
                "intervals are in audit.json. Survival: Kaplan-Meier, Greenwood variance, "
                f"{r['survival_ci_method']} 95% CI, times in days."
            ),
            _table(
                ["", *[g[k]["label"] for k in groups]],
                [
                    ["Patients treated", *[g[k]["n_patients"] for k in groups]],
                    ["Tumours treated", *[g[k]["n_tumours"] for k in groups]],
                    ["Sessions", *[g[k]["n_sessions"] for k in groups]],
                ],
                right=tuple(range(1, len(groups) + 1)),
            ),
        ],
    )


def _summary(r: dict[str, Any]) -> Section:
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
    return Section(
        "Summary",
        [
            _note(
                "Funnel flags compare the unit with the pooled published series (section 6); "
                "read them as prompts to look at the cases, not as verdicts."
            ),
            _table(["Item", "Value"], rows),
        ],
    )


def _efficacy(r: dict[str, Any], groups: list[str], head: list[str]) -> Section:
    rows = [
        [label.format(**r["groups"]["overall"]["efficacy"][k])]
        + [fmt_prop(r["groups"][g]["efficacy"][k]) for g in groups]
        for k, label in EFFICACY_ROWS
    ]
    return Section(
        "1. Key efficacy outcomes",
        [
            _note(
                "NICE key efficacy outcomes (HTG722 section 3.2). Tumour end points are grouped "
                "by the modality of the tumour's first ablation, patient end points by the "
                "patient's first session. Terminology: Ahmed et al., Radiology 2014."
            ),
            _table(head, rows),
        ],
        new_page=True,
    )


def _survival(r: dict[str, Any], groups: list[str], figs: dict[str, bytes]) -> Section:
    srows = [
        [label, r["groups"][g]["label"], *fmt_surv(r["groups"][g]["survival"][k])]
        for k, label in SURVIVAL_ROWS
        for g in groups
    ]
    tests = r.get("tests", {})
    test_rows = [
        [k.replace("_", " "), f"chi2 = {v['chi2']:.2f}, df = {v['df']}, p = {v['p_value']:.3g}"]
        for k, v in tests.items()
        if k.startswith("logrank") and "chi2" in v
    ]
    for t in tests.get("cox_os", {}).get("terms", []):
        test_rows.append(
            [
                f"Cox OS: {t['covariate']}",
                f"HR {t['hazard_ratio']:.2f} ({t['hr_lower']:.2f} to "
                f"{t['hr_upper']:.2f}), p = {t['p_value']:.3g}",
            ]
        )
    km = [
        Figure(
            figs[f"km_{k}"],
            f"{title}: Kaplan-Meier estimates by modality; shaded: {r['survival_ci_method']} "
            "95% CI of all modalities.",
        )
        for k, title in SURVIVAL_ROWS
        if f"km_{k}" in figs
    ]
    return Section(
        "2. Survival and time to progression",
        [
            _note(
                "Puijk et al., Radiology 2021: time zero is the first ablation; OS, DFS and time "
                "to progression per patient, LTP-free survival per completely ablated tumour. "
                f"Median and 1-/3-year estimates with {r['survival_ci_method']} 95% CI; times "
                "in days."
            ),
            _table(
                [
                    "End point",
                    "Group",
                    "Events/n",
                    "Median days (95% CI)",
                    "1 year (365 d)",
                    "3 years (1095 d)",
                ],
                srows,
            ),
            _table(
                ["Test", "Result"],
                test_rows or [["none", tests.get("note", "")]],
                title="Comparisons between modalities (not randomised: indication bias)",
            ),
            FigureGrid(km, columns=2),
        ],
        new_page=True,
    )


def _safety(r: dict[str, Any], groups: list[str], head: list[str]) -> Section:
    rows = [
        [label] + [fmt_prop(r["groups"][g]["safety"][k]) for g in groups]
        for k, label in SAFETY_ROWS
    ]
    return Section(
        "3. Key safety outcomes",
        [
            _note(
                "NICE key safety outcomes (HTG722 section 3.3, IPG overview): patients with at "
                "least one event, among patients who had a session of that modality."
            ),
            _table(head, rows),
        ],
    )


def _complications(r: dict[str, Any], groups: list[str]) -> Section:
    blocks: list[Block] = [
        _note(
            "Grades are derived from the recorded facts of each event by hepablate's "
            "rules (docs/outcomes.md), never entered by hand."
        )
    ]
    for scheme, title in GRADE_SCHEMES:
        keys = list(r["groups"]["overall"]["complications"][scheme])
        rows = [
            [r["groups"][g]["label"], *[r["groups"][g]["complications"][scheme][k] for k in keys]]
            for g in groups
        ]
        blocks.append(
            _table(["Group", *keys], rows, title=title, right=tuple(range(1, len(keys) + 1)))
        )
    cci = [
        [r["groups"][g]["label"], *r["groups"][g]["complications"]["cci_per_session"].values()]
        for g in groups
    ]
    blocks.append(
        _table(
            [
                "Group",
                "Sessions",
                "Mean CCI",
                "Sessions with a complication",
                "Median CCI of those",
            ],
            cci,
            title="Comprehensive Complication Index per session (Slankamenac 2013)",
            right=(1, 2, 3, 4),
        )
    )
    return Section("4. Complications by grade (adverse events)", blocks, new_page=True)


def _subgroups(r: dict[str, Any], groups: list[str]) -> Section:
    blocks: list[Block] = [
        _note("Size bands as the published series report them (<= 3 cm, 3-5 cm, > 5 cm).")
    ]
    for by, title in (
        ("tumour_size", "By tumour size (longest diameter at baseline)"),
        ("tumour_type", "By tumour type"),
    ):
        rows = [
            [
                r["groups"][g]["label"],
                k,
                v["n_tumours"],
                fmt_prop(v["complete_ablation"]),
                fmt_prop(v["ltp"]),
            ]
            for g in groups
            for k, v in r["groups"][g]["subgroups"][by].items()
        ]
        blocks.append(
            _table(
                ["Group", "Subgroup", "Tumours", "Complete ablation", "LTP"],
                rows,
                title=title,
                right=(2,),
            )
        )
    return Section("5. Subgroups", blocks)


def _comparison(r: dict[str, Any], figs: dict[str, bytes]) -> Section:
    rows = []
    for c in r["published_comparison"]:
        pub = c["published"]
        studies = "; ".join(
            f"{s['citation']} {s['events']}/{s['n']} {s['unit']}"
            + (" (derived)" if s["derived"] else "")
            for s in pub["studies"]
        )
        rows.append(
            [
                r["groups"][c["modality"]]["label"],
                MEASURE_LABEL.get(c["measure"], c["measure"]),
                fmt_prop(c["unit"]),
                f"{pub['events']}/{pub['n']} = {100 * pub['pooled_rate']:.1f}%",
                c.get("funnel", {}).get("position", "no data"),
                studies,
            ]
        )
    blocks: list[Block] = [
        _note(
            "Published figures from the NICE IRE overview (IP 1019/2, 2019, Table 2), copied "
            "into src/hepablate/data/published_series.yaml with their sources. Series differ "
            "in denominators (patients, tumours, procedures), definitions and case mix; read "
            "a flag as a prompt to look, not a verdict. Laser: " + r["published_laser_note"]
        ),
        # tall rows: let the table start under the note and run on
        _table(
            ["Modality", "Measure", "This unit", "Pooled published", "Funnel position", "Studies"],
            rows or [["-", "no published comparator", "", "", "", ""]],
            keep=False,
        ),
    ]
    for k in (k for k in figs if k.startswith("funnel_")):
        caption = (
            "Funnel plots: exact binomial 95% (dashed) and 99.8% (dotted) control limits "
            "around the pooled published rate (Spiegelhalter 2005); grey points: published "
            "series; red diamond: this unit."
        )
        blocks += [PageBreak(), Figure(figs[k], caption, 0.8)]
    return Section("6. Comparison with the published series", blocks, new_page=True)


def _completeness(r: dict[str, Any]) -> Section:
    c = r["completeness"]
    overdue = [
        [o["patient_code"], o["visit_month"], o["due_date"], o["days_overdue"]]
        for o in c["overdue"][:40]
    ]
    items = [
        ["Patients treated", c["patients_treated"]],
        ["Visits due / missed", f"{c['visits_due']} / {c['visits_missed']}"],
        ["Patients with a missed visit", fmt_prop(c["patients_with_missed_visit"])],
        ["Patients without any follow-up imaging", fmt_prop(c["patients_without_any_followup"])],
        ["Patients overdue now (no imaging since a missed visit)", c["patients_overdue_now"]],
        *[[f"Missing: {k}", fmt_prop(v)] for k, v in c["missing_fields"].items()],
    ]
    return Section(
        "7. Data completeness",
        [
            _note(
                f"Schedule: imaging at {', '.join(map(str, c['schedule']['months']))} months "
                f"after the first ablation, +/- {c['schedule']['tolerance_days']} days; a visit "
                f"is due once its window has closed by {c['as_of']} and the patient was alive "
                "and not transplanted."
            ),
            _table(["Item", "Value"], items),
            _table(
                ["Patient code", "Visit (month)", "Due", "Days overdue"],
                overdue or [["none", "", "", ""]],
                title=f"Overdue follow-up ({len(c['overdue'])} patients; first 40 shown)",
                right=(1, 3),
            ),
        ],
        new_page=True,
    )


def build_document(report: dict[str, Any], figs: dict[str, bytes]) -> ReportDocument:
    """The audit report as a `ReportDocument` (A4 landscape; hepablate.report.document)."""
    groups = list(report["groups"])
    head = ["Outcome"] + [report["groups"][g]["label"] for g in groups]
    site = report.get("site") or "all sites"
    return ReportDocument(
        title="Image-guided liver ablation: outcomes and safety audit",
        subtitle=f"Site: {site} · data as of {report['as_of']} · database "
        f"{report['database']} · hepablate {report['hepablate_version']}",
        sections=[
            _intro(report, groups),
            _summary(report),
            _efficacy(report, groups, head),
            _survival(report, groups, figs),
            _safety(report, groups, head),
            _complications(report, groups),
            _subgroups(report, groups),
            _comparison(report, figs),
            _completeness(report),
            *[x for x in [response_section(report, "8. Tumour response")] if x is not None],
        ],
        footer=f"hepablate audit - {site} - as of {report['as_of']}",
        landscape=True,
    )


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
    doc = build_document(report, make_figures(report, kms))
    with atomic_output_dir(out) as tmp:
        (tmp / "audit.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        write_report(doc, tmp, stem="audit")
    return report
