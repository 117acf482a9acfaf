"""Record builders and users shared by the registry tests."""

from __future__ import annotations

from typing import Any

from hepablate.registry import db
from hepablate.registry.auth import Actor, add_user

PASSWORD = "correct horse battery staple"
ADMIN = Actor("admin", "administrator", None)


def make_users(engine) -> None:  # type: ignore[no-untyped-def]
    with db.write_transaction(engine) as conn:
        add_user(conn, "admin", PASSWORD, "administrator", None)
        add_user(conn, "north_clin", PASSWORD, "clinician", "north")
        add_user(conn, "north_entry", PASSWORD, "data_entry", "north")
        add_user(conn, "north_audit", PASSWORD, "auditor", "north")
        add_user(conn, "south_clin", PASSWORD, "clinician", "south")


def patient(**kw: Any) -> dict[str, Any]:
    base = dict(
        site="north",
        patient_code="P1",
        year_of_birth=1950,
        sex="male",
        diagnosis="hcc",
        cirrhosis=True,
        cirrhosis_cause="hcv",
        mdt_decision="ablate",
        child_pugh_class="a",
        child_pugh_score=5,
    )
    return base | kw


def session(patient_id: int, **kw: Any) -> dict[str, Any]:
    base = dict(
        patient_id=patient_id,
        procedure_date="2024-01-10",
        modality="ire",
        approach="percutaneous",
        anaesthesia="general",
        guidance="ct",
        device="NanoKnife",
        n_applicators=4,
        voltage_v_max=3000,
        pulses_total=270,
        pulse_width_us=90,
        operator="Dr A",
        length_of_stay_days=2,
        readmission_30d=False,
    )
    return base | kw


def followup(patient_id: int, **kw: Any) -> dict[str, Any]:
    base = dict(
        patient_id=patient_id,
        followup_date="2024-02-10",
        imaging_modality="ct",
        new_intrahepatic_disease=False,
        distant_disease=False,
    )
    return base | kw


def adverse(patient_id: int, session_id: int, **kw: Any) -> dict[str, Any]:
    base = dict(
        patient_id=patient_id,
        session_id=session_id,
        onset_date="2024-01-11",
        description="haematoma",
        category="bleeding",
        therapy="none",
        intervention="none",
        intervention_anaesthesia="none",
    )
    return base | kw
