"""Responses derived from the registry's lesion measurements (hepablate.outcomes.responses):
hand-computed cases, and a CSV import whose stored response contradicts its measurements."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import pandas as pd

from hepablate.outcomes.audit import AuditSettings, build_audit, read_registry
from hepablate.outcomes.audit_render import build_document
from hepablate.outcomes.responses import NO_BASELINE, agrees, derive_responses
from hepablate.registry import csvio, db

TEMPLATES = Path(__file__).resolve().parents[2] / "docs" / "registry-csv"
D = date


def _frames(tumours, followups, lesions, diagnosis="hcc"):
    fu_cols = ["id", "patient_id", "followup_date", "overall_response_recist"]
    fu = pd.DataFrame(
        [dict(zip(fu_cols, f, strict=True)) | {"overall_response_mrecist": None} for f in followups]
    )
    le_cols = ["id", "followup_id", "tumour_id", "role", "longest_diameter_mm"]
    fl = pd.DataFrame([dict(zip(le_cols, x[:5], strict=True)) | x[5] for x in lesions]).reindex(
        columns=[
            *le_cols,
            "is_lymph_node",
            "short_axis_mm",
            "viable_longest_diameter_mm",
            "non_target_status",
        ]
    )
    return {
        "patients": pd.DataFrame({"id": [1], "diagnosis": [diagnosis]}),
        "tumours": pd.DataFrame(
            {"id": [t for t, _ in tumours], "size_mm": [s for _, s in tumours]},
        ),
        "followups": fu,
        "followup_lesions": fl,
    }


def _by(derived, crit):
    return [(d.followup_id, d.derived) for d in derived if d.criteria == crit]


def test_exact_pr_then_increase_below_5_mm():
    # baseline 20 + 10 = 30 mm; 14 + 7 = 21 mm is exactly -30 % (PR); 16.8 + 8.4 = 25.2 mm is
    # +20 % from the nadir 21 but only +4.2 mm: RECIST 1.1 SD, mRECIST (no 5 mm rule) PD.
    fr = _frames(
        [(1, "20.0"), (2, "10.0")],
        [(1, 1, D(2024, 2, 1), "pr"), (2, 1, D(2024, 4, 1), "pd")],
        [
            (1, 1, 1, "target", "14.0", {"viable_longest_diameter_mm": "14.0"}),
            (2, 1, 2, "target", "7.0", {"viable_longest_diameter_mm": "7.0"}),
            (3, 2, 1, "target", "16.8", {"viable_longest_diameter_mm": "16.8"}),
            (4, 2, 2, "target", "8.4", {"viable_longest_diameter_mm": "8.4"}),
        ],
    )
    d = derive_responses(fr)
    assert _by(d, "recist1.1") == [(1, "pr"), (2, "sd")]
    assert _by(d, "mrecist") == [(1, "pr"), (2, "pd")]
    # stored RECIST 'pd' at follow-up 2 disagrees with the derived SD
    assert [(x.followup_id, x.criteria) for x in d if x.discrepant] == [(2, "recist1.1")]


def test_new_lesion_is_pd_and_viable_zero_is_mrecist_cr():
    fr = _frames(
        [(1, "30.0")],
        [(1, 1, D(2024, 2, 1), "cr")],
        [
            (1, 1, 1, "target", "0", {"viable_longest_diameter_mm": "0"}),
            (2, 1, None, "new", "12.0", {}),
        ],
    )
    d = derive_responses(fr)
    assert _by(d, "recist1.1") == [(1, "pd")] and _by(d, "mrecist") == [(1, "pd")]
    assert all(x.discrepant and "new lesion" in x.reasons for x in d if x.criteria == "recist1.1")
    fr = _frames(
        [(1, "30.0")],
        [(1, 1, D(2024, 2, 1), "cr")],
        [(1, 1, 1, "target", "0", {"viable_longest_diameter_mm": "0"})],
    )
    d = derive_responses(fr)
    assert _by(d, "recist1.1") == [(1, "cr")] and not any(x.discrepant for x in d)


def test_no_baseline_is_ne_and_bad_baseline_is_ne():
    fr = _frames([(1, "30.0")], [(1, 1, D(2024, 2, 1), "cr")], [])
    d = derive_responses(fr, {1: D(2024, 1, 1)})
    assert {x.derived for x in d} == {"ne"} and all(NO_BASELINE in x.reasons for x in d)
    # three liver targets break "at most 2 per organ": NE with the rule as the reason
    fr = _frames(
        [(1, "30.0"), (2, "20.0"), (3, "15.0")],
        [(1, 1, D(2024, 2, 1), None)],
        [(i, 1, i, "target", "10.0", {}) for i in (1, 2, 3)],
    )
    d = derive_responses(fr)
    assert {x.derived for x in d} == {"ne"}
    assert "baseline not evaluable" in d[0].reasons[0] and not any(x.discrepant for x in d)


def test_non_target_only_and_mrecist_only_for_hcc():
    fr = _frames(
        [(1, "30.0")],
        [(1, 1, D(2024, 2, 1), "sd")],
        [(1, 1, 1, "non_target", None, {"non_target_status": "present"})],
        diagnosis="colorectal_metastasis",
    )
    d = derive_responses(fr)
    assert _by(d, "recist1.1") == [(1, "non_cr_non_pd")] and _by(d, "mrecist") == []
    assert agrees("sd", "non_cr_non_pd") is True and agrees(None, "pd") is None
    assert not d[0].discrepant


def _set(path: Path, row_id: str, **values: str) -> None:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        if r["id"] == row_id:
            r.update(values)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_imported_contradicting_response_is_flagged_in_audit(tmp_path):
    src = tmp_path / "csv"
    shutil.copytree(TEMPLATES, src)
    _set(src / "patients.csv", "1", nhs_number="")
    # follow-up 4 has a new 14 mm lesion but is stored as CR; follow-up 1 is stored (rightly)
    # as RECIST PD (38 mm against 24.5 mm) and mRECIST CR (no viable tumour)
    _set(src / "followups.csv", "4", overall_response_recist="cr")
    _set(src / "followups.csv", "1", overall_response_recist="pd", overall_response_mrecist="cr")
    url = "sqlite:///" + str(tmp_path / "r.db")
    db.migrate(url)
    csvio.import_dir(db.connect(url), src, "tester")
    report, _ = build_audit(read_registry(url), AuditSettings(as_of=D(2025, 1, 1)))
    r = report["responses"]
    assert r["discrepancies"]["count"] == 1
    (x,) = r["discrepancies"]["followups"]
    assert (x["followup_id"], x["criteria"], x["stored"], x["derived"]) == (
        4,
        "recist1.1",
        "cr",
        "pd",
    )
    assert x["patient_code"] == "N-0002" and "new lesion" in x["reasons"]
    # month 1: P1 (IRE) RECIST PD (+55 %), P2 (laser) PD (45 vs 30.2 mm); P1 mRECIST CR
    m1 = r["by_group"]["overall"]["recist1.1"]["1"]
    assert m1["n"] == 2 and m1["pd"]["events"] == 2 and m1["pd"]["wilson_ci"][1] == 1.0
    assert r["by_group"]["ire"]["mrecist"]["1"]["cr"]["events"] == 1
    assert r["by_group"]["laser"]["mrecist"]["1"]["n"] == 0  # not HCC
    assert r["by_group"]["ire"]["mrecist"]["6"]["cr"]["events"] == 1
    assert r["by_group"]["overall"]["recist1.1"]["12"]["n"] == 0  # day 279 is in no window
    doc = build_document(report, {})
    sec = doc.sections[-1]
    assert sec.heading == "8. Tumour response"
    assert any("disagree" in getattr(b, "title", "") for b in sec.blocks)
