"""Validation: clear errors naming entity, record and field; impossible dates, follow-up
before the procedure, death before a procedure, inconsistent facts, enumerations."""

from __future__ import annotations

import pytest
from registry_helpers import adverse, followup, patient, session
from sqlalchemy import func, select

from hepablate.registry.models import Patient
from hepablate.registry.validation import ValidationError


def _err(fn, *a, **kw) -> ValidationError:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as exc:
        fn(*a, **kw)
    return exc.value


def test_field_errors_name_entity_and_field(reg) -> None:  # type: ignore[no-untyped-def]
    e = _err(reg.create, "patients", patient(sex="M"))
    assert e.field == "sex" and "patients (new record)" in str(e) and "female|male" in str(e)
    e = _err(reg.create, "patients", patient(year_of_birth="nineteen"))
    assert e.field == "year_of_birth" and "integer" in str(e)
    e = _err(reg.create, "patients", patient(mdt_date="2023-02-30"))
    assert e.field == "mdt_date" and "YYYY-MM-DD" in str(e)
    e = _err(reg.create, "patients", patient(ecog=5))
    assert e.field == "ecog" and "outside" in str(e)
    e = _err(reg.create, "patients", {k: v for k, v in patient().items() if k != "sex"})
    assert e.field == "sex" and "required" in str(e)
    e = _err(reg.create, "patients", patient(favourite_colour="blue"))
    assert e.field == "favourite_colour"


def test_child_pugh_and_death_fields(reg) -> None:  # type: ignore[no-untyped-def]
    # Pugh 1973 bands: A 5-6, B 7-9, C 10-15; the edges are accepted, one beyond is not.
    for cls, ok, bad in (("a", 6, 7), ("b", 7, 6), ("b", 9, 10), ("c", 10, 9)):
        p = reg.create(
            "patients",
            patient(patient_code=f"{cls}{ok}", child_pugh_class=cls, child_pugh_score=ok),
        )
        assert p["child_pugh_score"] == ok
        e = _err(
            reg.create,
            "patients",
            patient(patient_code=f"x{cls}{bad}", child_pugh_class=cls, child_pugh_score=bad),
        )
        assert e.field == "child_pugh_score"
    assert (
        _err(reg.create, "patients", patient(patient_code="d", death_cause="x")).field
        == "death_cause"
    )
    assert (
        _err(reg.create, "patients", patient(patient_code="c", cirrhosis=False)).field
        == "cirrhosis_cause"
    )
    e = _err(reg.create, "patients", patient(patient_code="f", mdt_date="2999-01-01"))
    assert "future" in str(e)
    e = _err(reg.create, "patients", patient(patient_code="b", mdt_date="1949-12-31"))
    assert "year of birth" in str(e)
    e = _err(
        reg.create,
        "patients",
        patient(patient_code="t", death_date="2020-01-01", last_contact_date="2020-01-02"),
    )
    assert e.field == "last_contact_date"


def test_followup_before_procedure_and_death_before_procedure(reg) -> None:  # type: ignore[no-untyped-def]
    p = reg.create("patients", patient())
    e = _err(reg.create, "followups", followup(p["id"]))
    assert "no procedure session" in str(e)
    s = reg.create("procedure_sessions", session(p["id"]))
    e = _err(reg.create, "followups", followup(p["id"], followup_date="2024-01-09"))
    assert e.field == "followup_date" and "before the first procedure on 2024-01-10" in str(e)
    f = reg.create("followups", followup(p["id"], followup_date="2024-01-10"))
    assert f["days_after_first_ablation"] == 0
    e = _err(reg.update, "patients", p["id"], {"death_date": "2024-01-05"}, 1)
    assert e.field == "death_date" and "before a recorded procedure" in str(e)
    e = _err(reg.update, "procedure_sessions", s["id"], {"procedure_date": "2024-01-11"}, 1)
    assert "would precede" in str(e)
    # A session moved earlier re-derives the follow-up's day count (and audits it).
    reg.update("procedure_sessions", s["id"], {"procedure_date": "2024-01-03"}, 1)
    assert reg.get("followups", f["id"])["days_after_first_ablation"] == 7


def test_session_modality_fields(reg) -> None:  # type: ignore[no-untyped-def]
    p = reg.create("patients", patient())
    e = _err(reg.create, "procedure_sessions", session(p["id"], modality="laser"))
    assert e.field == "voltage_v_max"
    e = _err(reg.create, "procedure_sessions", session(p["id"], power_w=30))
    assert e.field == "power_w"
    e = _err(reg.create, "procedure_sessions", session(p["id"], modality="cryo"))
    assert e.field == "modality"


def test_adverse_event_facts(reg) -> None:  # type: ignore[no-untyped-def]
    p = reg.create("patients", patient())
    s = reg.create("procedure_sessions", session(p["id"]))
    ok = reg.create(
        "adverse_events", adverse(p["id"], s["id"], therapy="transfusion", transfusion_units=2)
    )
    assert ok["transfusion_units"] == 2
    cases = [
        (dict(onset_date="2024-01-09"), "onset_date"),
        (dict(transfusion_units=1), "therapy"),
        (dict(therapy="transfusion"), "transfusion_units"),
        (dict(icu_admission=True), "icu_admission"),
        (dict(intervention_anaesthesia="general"), "intervention_anaesthesia"),
        (dict(prolonged_hospitalisation=True), "extra_stay_days"),
        (dict(extra_stay_days=-1), "extra_stay_days"),
        (dict(death=True), "death"),
        (dict(category="explosion"), "category"),
    ]
    for kw, field in cases:
        assert _err(reg.create, "adverse_events", adverse(p["id"], s["id"], **kw)).field == field


def test_cross_patient_links_rejected(reg) -> None:  # type: ignore[no-untyped-def]
    p1 = reg.create("patients", patient())
    p2 = reg.create("patients", patient(patient_code="P2"))
    s1 = reg.create("procedure_sessions", session(p1["id"]))
    t2 = reg.create(
        "tumours",
        dict(
            patient_id=p2["id"],
            tumour_code="T1",
            couinaud_segment=4,
            size_mm="21.5",
            tumour_type="hcc",
            near_major_vessel=False,
            near_bile_duct=False,
        ),
    )
    e = _err(
        reg.create,
        "treated_tumours",
        dict(session_id=s1["id"], tumour_id=t2["id"], technical_success=True, intent="curative"),
    )
    assert e.field == "tumour_id"
    e = _err(reg.create, "adverse_events", adverse(p2["id"], s1["id"]))
    assert e.field == "session_id"
    e = _err(
        reg.create,
        "tumours",
        dict(
            patient_id=999,
            tumour_code="T1",
            couinaud_segment=4,
            size_mm=20,
            tumour_type="hcc",
            near_major_vessel=False,
            near_bile_duct=False,
        ),
    )
    assert e.field == "patient_id"
    e = _err(
        reg.create,
        "tumours",
        dict(
            patient_id=p1["id"],
            tumour_code="T1",
            couinaud_segment=9,
            size_mm="20.123",
            tumour_type="hcc",
            near_major_vessel=False,
            near_bile_duct=False,
        ),
    )
    assert e.field == "couinaud_segment"


def test_rejected_write_changes_nothing(reg, engine) -> None:  # type: ignore[no-untyped-def]
    reg.create("patients", patient())
    _err(reg.create, "patients", patient(patient_code="P2", ecog=9))
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Patient)) == 1


def test_patient_code_unique_per_site(reg) -> None:  # type: ignore[no-untyped-def]
    reg.create("patients", patient())
    e = _err(reg.create, "patients", patient())
    assert e.field == "patient_code" and "already exists at site north" in str(e)
    other = reg.create("patients", patient(site="south"))  # same code, another site
    p2 = reg.create("patients", patient(patient_code="P2"))
    assert other["site"] == "south"
    e = _err(reg.update, "patients", p2["id"], {"patient_code": "P1"}, 1)
    assert e.field == "patient_code"
