"""Synthetic registry: deterministic, valid, and with the documented mix of cases."""

from __future__ import annotations

from collections import Counter

from hepablate.registry.synthetic import FOLLOWUP_MONTHS, synthetic_records


def test_deterministic_and_varied() -> None:
    a = synthetic_records(400, 11)
    assert a == synthetic_records(400, 11)
    assert a != synthetic_records(400, 12)
    diag = Counter(p["diagnosis"] for p in a["patients"])
    assert diag["hcc"] + diag["colorectal_metastasis"] > 0.75 * 400
    assert set(diag) == {
        "hcc",
        "colorectal_metastasis",
        "cholangiocarcinoma",
        "other_metastasis",
        "other",
    }
    assert {s["modality"] for s in a["procedure_sessions"]} == {
        "ire",
        "laser",
        "microwave",
        "radiofrequency",
    }
    assert sum(p["death_date"] is not None for p in a["patients"]) > 40
    assert 1.3 < len(a["tumours"]) / 400 < 1.7
    big = synthetic_records(2000, 1)
    assert {e["category"] for e in big["adverse_events"]} == {
        "bleeding",
        "infection",
        "damage_surrounding_tissue",
        "arrhythmia",
        "needle_tract_seeding",
        "biliary",
        "thrombosis",
        "pain",
        "other",
    }
    assert any(e["death"] for e in big["adverse_events"])
    assert any(le["local_progression"] for le in big["followup_lesions"])


def test_followups_follow_the_schedule() -> None:
    recs = synthetic_records(50, 3)
    first = {s["patient_id"]: s["procedure_date"] for s in recs["procedure_sessions"]}
    for f in recs["followups"]:
        days = (f["followup_date"] - first[f["patient_id"]]).days
        assert any(abs(days - m * 30.44) <= 8 for m in FOLLOWUP_MONTHS)


def test_generate_writes_valid_audited_registry(url: str, engine) -> None:  # type: ignore[no-untyped-def]
    from hepablate.registry import synthetic
    from hepablate.registry.audit import verify

    res = synthetic.generate(15, 4, url)
    assert res.counts["patients"] == 15
    assert res.audit_rows == sum(res.counts.values()) == verify(engine).rows_checked
