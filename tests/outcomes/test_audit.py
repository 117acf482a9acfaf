"""The audit report: known answers on a hand-built registry, the files, and bad inputs."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pypdfium2 as pdfium
import pytest
from scipy import stats

from hepablate.cli import main
from hepablate.errors import InputError
from hepablate.outcomes.audit import (
    AuditSettings,
    FollowupSchedule,
    binomial_control_limits,
    build_audit,
    load_schedule,
    read_registry,
)

AS_OF = date(2025, 12, 31)


def ev(p):
    return (p["events"], p["n"])


@pytest.fixture(scope="module")
def known(known_db):
    report, _ = build_audit(read_registry(known_db), AuditSettings(as_of=AS_OF))
    return report


def test_efficacy_known_answers(known):
    o = known["groups"]["overall"]["efficacy"]
    assert o["technical_success"]["events"] == 3 and o["technical_success"]["n"] == 4
    assert ev(o["complete_ablation"]) == (2, 3)  # P4 never imaged; P2 residual
    assert ev(o["secondary_efficacy"]) == (3, 3)  # P2 complete after the repeat session
    # technique efficacy at 30 +/- 30 days: P1 (day 31) and P3 complete, P2 residual (day 33)
    assert ev(o["technique_efficacy"]) == (2, 3) and o["technique_efficacy"]["at_days"] == 30
    assert ev(o["residual_unablated"]) == (1, 3)
    assert ev(o["ltp"]) == (1, 3)  # the soft-deleted earlier LTP of P1 is ignored
    assert ev(o["local_recurrence"]) == (1, 3)
    assert ev(o["distant_recurrence"]) == (1, 3)
    ire = known["groups"]["ire"]["efficacy"]
    assert ev(ire["complete_ablation"]) == (1, 2) and ev(ire["ltp"]) == (1, 2)
    assert known["groups"]["ire"]["n_patients"] == 2  # deleted P5 excluded


def test_safety_and_grades_known_answers(known):
    s = known["groups"]["overall"]["safety"]
    assert ev(s["mortality"]) == (1, 4)
    assert ev(s["bleeding"]) == (1, 4) and ev(s["infection"]) == (1, 4)
    assert ev(s["major_complications_cd3plus"]) == (2, 4)
    assert ev(known["groups"]["laser"]["safety"]["mortality"]) == (1, 2)
    cd = known["groups"]["overall"]["complications"]["clavien_dindo"]
    assert (cd["II"], cd["IIIa"], cd["V"], sum(cd.values())) == (1, 1, 1, 3)
    assert known["groups"]["overall"]["complications"]["timing"]["immediate"] == 1


def test_subgroups_by_size_use_exact_bounds(known):
    sz = known["groups"]["overall"]["subgroups"]["tumour_size"]
    assert sz["<=30 mm"]["n_tumours"] == 2  # 30.00 mm belongs to <= 30 mm
    assert sz["30-50 mm"]["n_tumours"] == 1 and sz[">50 mm"]["n_tumours"] == 1


def test_survival_in_days_with_named_ci(known):
    os_ = known["groups"]["overall"]["survival"]["os"]
    assert os_["time_unit"] == "days" and os_["ci_method"] == "log-log"
    assert os_["n"] == 4 and os_["events"] == 2
    assert known["survival_ci_method"] == "log-log"


def test_completeness_known_answers(known):
    c = known["completeness"]
    assert (c["visits_due"], c["visits_missed"]) == (11, 6)
    assert ev(c["patients_with_missed_visit"]) == (3, 4)
    assert ev(c["patients_without_any_followup"]) == (1, 4)
    assert [(o["patient_code"], o["visit_month"]) for o in c["overdue"]] == [("P4", 1), ("P1", 12)]


def test_site_filter(known_db):
    r, _ = build_audit(read_registry(known_db, site="south"), AuditSettings(as_of=AS_OF))
    assert r["groups"]["overall"]["n_patients"] == 1 and list(r["groups"]) == ["overall", "laser"]


def test_schedule_changes_completeness(known_db):
    s = AuditSettings(as_of=AS_OF, schedule=FollowupSchedule(months=[1], tolerance_days=5))
    r, _ = build_audit(read_registry(known_db), s)
    assert r["completeness"]["visits_due"] == 3  # P1, P2, P4 (P3 died before day 30)


def test_funnel_limits_exact_and_near_normal():
    lo, hi = binomial_control_limits(0.2, 1000, 0.95)
    half = 1.959964 * np.sqrt(0.2 * 0.8 / 1000)
    assert abs(lo - (0.2 - half)) < 2e-3 and abs(hi - (0.2 + half)) < 2e-3
    lo, hi = binomial_control_limits(0.1, 30, 0.998)
    # the limits bracket the exact binomial quantiles
    assert stats.binom.ppf(0.001, 30, 0.1) - 1 <= lo * 30 <= stats.binom.ppf(0.001, 30, 0.1)
    assert stats.binom.ppf(0.999, 30, 0.1) - 1 <= hi * 30 <= stats.binom.ppf(0.999, 30, 0.1)


def test_comparison_with_published_series(known):
    rows = {(r["modality"], r["measure"]): r for r in known["published_comparison"]}
    ca = rows[("ire", "complete_ablation")]
    assert ca["published"]["events"] == 357 and ca["published"]["n"] == 413
    assert "position" in ca["funnel"]
    assert ("laser", "complete_ablation") not in rows  # HTG722 gives no per-study figures


def test_cli_writes_three_files(synthetic_db, tmp_path, capsys):
    out = tmp_path / "audit"
    rc = main(
        [
            "audit",
            "report",
            "--db",
            synthetic_db,
            "--out",
            str(out),
            "--as-of",
            "2025-12-31",
            "--ci-method",
            "log",
            "--json",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["audit.html", "audit.json", "audit.pdf"]
    js = json.loads((out / "audit.json").read_text())
    assert js["survival_ci_method"] == "log" and js["time_unit"] == "days"
    assert js["groups"]["overall"]["survival"]["os"]["ci_method"] == "log"
    assert {"ire", "laser", "microwave", "radiofrequency"} <= set(js["groups"])
    html = (out / "audit.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html
    assert 'src="http' not in html and 'href="http' not in html  # offline
    pdf = pdfium.PdfDocument(str(out / "audit.pdf"))
    assert len(pdf) >= 5
    for i in range(len(pdf)):
        img = np.asarray(pdf[i].render(scale=0.5).to_pil().convert("L"))
        assert (img < 200).mean() > 0.005, f"page {i + 1} is blank"
    summary = json.loads(capsys.readouterr().out)
    assert summary["patients"] == 120


def _bad(args, capsys, tmp_path):
    out = tmp_path / "never"
    rc = main(["audit", "report", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    return err


def test_bad_inputs(tmp_path, capsys, empty_db, known_db):
    assert "no such database file" in _bad(
        ["--db", f"sqlite:///{tmp_path}/missing.db"], capsys, tmp_path
    )
    assert not (tmp_path / "missing.db").exists()
    assert "cannot read the registry database" in _bad(
        ["--db", "postgresql://nobody:pw@127.0.0.1:1/none"], capsys, tmp_path
    )
    assert "no live procedure sessions" in _bad(["--db", empty_db], capsys, tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database" * 100)
    assert "cannot read the registry database" in _bad(
        ["--db", f"sqlite:///{junk}"], capsys, tmp_path
    )
    assert "site 'nowhere'" in _bad(["--db", known_db, "--site", "nowhere"], capsys, tmp_path)
    assert "--ci-method" in _bad(["--db", known_db, "--ci-method", "plain"], capsys, tmp_path)
    assert "--as-of" in _bad(["--db", known_db, "--as-of", "31/12/2025"], capsys, tmp_path)
    sched = tmp_path / "s.yaml"
    sched.write_text("months: [1, 6, 3]\n")
    err = _bad(["--db", known_db, "--schedule", str(sched)], capsys, tmp_path)
    assert "s.yaml" in err and "months" in err and "increasing" in err
    sched.write_text("months: [1, 3\n")
    assert "YAML" in _bad(["--db", known_db, "--schedule", str(sched)], capsys, tmp_path)
    sched.write_text("months: [1]\ntolerance: 3\n")
    assert "tolerance" in _bad(["--db", known_db, "--schedule", str(sched)], capsys, tmp_path)
    assert "file not found" in _bad(
        ["--db", known_db, "--schedule", str(tmp_path / "x.yaml")], capsys, tmp_path
    )


def test_schedule_file_loads(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("months: [1, 3, 6, 12, 24]\ntolerance_days: 21\n")
    s = load_schedule(p)
    assert s.months == [1, 3, 6, 12, 24] and s.tolerance_days == 21
    p.write_text("- 1\n- 3\n")
    with pytest.raises(InputError, match="mapping"):
        load_schedule(p)


@pytest.mark.postgres
def test_postgres_gives_the_same_audit(known_pg_db, known):
    pg, _ = build_audit(read_registry(known_pg_db), AuditSettings(as_of=AS_OF))
    for key in ("groups", "completeness", "published_comparison", "counts"):
        assert pg[key] == known[key], key
