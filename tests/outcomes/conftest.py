"""Registry fixtures for the audit tests: a hand-built registry with known answers and a small
synthetic one (hepablate.registry.synthetic)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from hepablate.registry import models as m
from hepablate.registry.db import connect, dispose, migrate

D = date


def _patient(
    pid, site="north", diagnosis="hcc", death=None, related=None, last=None, deleted=False
):
    return dict(
        id=pid,
        site=site,
        patient_code=f"P{pid}",
        year_of_birth=1950,
        sex="male",
        diagnosis=diagnosis,
        cirrhosis=diagnosis == "hcc",
        mdt_decision="ablation",
        death_date=death,
        death_procedure_related=related,
        last_contact_date=last,
        child_pugh_class="a" if diagnosis == "hcc" else None,
        ecog=0,
        deleted_at=datetime(2025, 1, 1) if deleted else None,
    )


def _tumour(tid, pid, size, ttype="hcc", site="north"):
    return dict(
        id=tid,
        site=site,
        patient_id=pid,
        tumour_code=f"T{tid}",
        couinaud_segment=5,
        size_mm=size,
        tumour_type=ttype,
        near_major_vessel=False,
        near_bile_duct=False,
    )


def _session(sid, pid, when, modality, site="north"):
    return dict(
        id=sid,
        site=site,
        patient_id=pid,
        procedure_date=when,
        modality=modality,
        approach="percutaneous",
        anaesthesia="general",
        guidance="ct",
        device="x",
        n_applicators=2,
        operator="OP1",
        length_of_stay_days=1,
        readmission_30d=False,
    )


def _followup(fid, pid, when, nih=False, dd=False, site="north", deleted=False):
    return dict(
        id=fid,
        site=site,
        patient_id=pid,
        followup_date=when,
        imaging_modality="ct",
        new_intrahepatic_disease=nih,
        distant_disease=dd,
        deleted_at=datetime(2025, 1, 1) if deleted else None,
    )


def _lesion(lid, fid, tid, residual=None, ltp=None, site="north", margin=None):
    return dict(
        id=lid,
        site=site,
        followup_id=fid,
        tumour_id=tid,
        role="target",
        is_lymph_node=False,
        longest_diameter_mm="30.0",
        residual_tumour=residual,
        local_progression=ltp,
        minimal_margin_mm=margin,
    )


def _ae(aid, pid, sid, onset, category, site="north", **facts):
    base = dict(
        therapy="none",
        intervention="none",
        intervention_anaesthesia="none",
        transfusion_units=0,
        icu_admission=False,
        organ_failure="none",
        extra_stay_days=0,
        prolonged_hospitalisation=False,
        permanent_sequelae=False,
        ongoing_at_discharge=False,
        death=False,
        life_threatening=False,
    )
    base.update(facts)
    return dict(
        id=aid,
        site=site,
        patient_id=pid,
        session_id=sid,
        onset_date=onset,
        description=category,
        category=category,
        **base,
    )


def build_known_registry(url: str) -> None:
    """P1 IRE: complete then LTP, bleeding (CD II). P2 IRE: residual, repeat ablation, complete,
    infection drained (IIIa), died (unrelated). P3 laser: complete, new intrahepatic disease,
    procedure-related death (CD V). P4 laser, site south: never imaged. P5: soft-deleted."""
    migrate(url)
    e = connect(url)
    rows = {
        m.Patient: [
            _patient(1, last=D(2025, 1, 10)),
            _patient(
                2,
                diagnosis="colorectal_metastasis",
                death=D(2024, 12, 1),
                related=False,
                last=D(2024, 12, 1),
            ),
            _patient(3, death=D(2024, 1, 25), related=True, last=D(2024, 1, 25)),
            _patient(4, site="south", last=D(2025, 6, 1)),
            _patient(5, last=D(2025, 6, 1), deleted=True),
        ],
        m.Tumour: [
            _tumour(1, 1, "30.00"),
            _tumour(2, 2, "45.50", "colorectal_metastasis"),
            _tumour(3, 3, "55.00"),
            _tumour(4, 4, "20.00", site="south"),
            _tumour(5, 5, "20.00"),
        ],
        m.ProcedureSession: [
            _session(1, 1, D(2024, 1, 10), "ire"),
            _session(2, 2, D(2024, 1, 10), "ire"),
            _session(3, 2, D(2024, 3, 1), "ire"),
            _session(4, 3, D(2024, 1, 10), "laser"),
            _session(5, 4, D(2024, 1, 10), "laser", site="south"),
            _session(6, 5, D(2024, 1, 10), "ire"),
        ],
        m.TreatedTumour: [
            dict(
                id=i, site=s, session_id=sid, tumour_id=tid, technical_success=ok, intent="curative"
            )
            for i, (sid, tid, ok, s) in enumerate(
                [
                    (1, 1, True, "north"),
                    (2, 2, False, "north"),
                    (3, 2, True, "north"),
                    (4, 3, True, "north"),
                    (5, 4, True, "south"),
                    (6, 5, True, "north"),
                ],
                1,
            )
        ],
        m.Followup: [
            _followup(1, 1, D(2024, 2, 10)),
            _followup(2, 1, D(2024, 4, 10)),
            _followup(3, 1, D(2024, 7, 10)),
            _followup(4, 2, D(2024, 2, 12)),
            _followup(5, 2, D(2024, 4, 15)),
            _followup(6, 3, D(2024, 2, 10)),
            _followup(7, 3, D(2024, 7, 10), nih=True),
            _followup(8, 1, D(2024, 3, 10), deleted=True),
            _followup(9, 5, D(2024, 2, 10)),
        ],
        m.FollowupLesion: [
            _lesion(1, 1, 1, False, False, margin="5.0"),
            _lesion(2, 2, 1, None, False),
            _lesion(3, 3, 1, None, True),
            _lesion(4, 4, 2, True, None),
            _lesion(5, 5, 2, False, False),
            _lesion(6, 6, 3, False, False),
            _lesion(7, 8, 1, None, True),
            _lesion(8, 9, 5, True, None),
        ],
        m.AdverseEvent: [
            _ae(1, 1, 1, D(2024, 1, 10), "bleeding", therapy="transfusion", transfusion_units=2),
            _ae(
                2,
                2,
                2,
                D(2024, 1, 15),
                "infection",
                therapy="pharmacological",
                intervention="radiological",
                intervention_anaesthesia="local",
            ),
            _ae(
                3,
                3,
                4,
                D(2024, 1, 20),
                "damage_surrounding_tissue",
                death=True,
                icu_admission=True,
                organ_failure="multi",
                life_threatening=True,
            ),
            _ae(4, 5, 6, D(2024, 1, 10), "bleeding", death=True),
        ],
    }
    with e.begin() as conn:
        for model, recs in rows.items():
            conn.execute(insert(model.__table__), recs)


@pytest.fixture(scope="session")
def known_db(tmp_path_factory) -> str:
    url = "sqlite:///" + str(Path(tmp_path_factory.mktemp("known")) / "known.db")
    build_known_registry(url)
    yield url
    dispose(url)


@pytest.fixture(scope="session")
def synthetic_db(tmp_path_factory) -> str:
    from hepablate.registry.synthetic import generate

    url = "sqlite:///" + str(Path(tmp_path_factory.mktemp("syn")) / "syn.db")
    migrate(url)
    generate(120, 7, url)
    yield url
    dispose(url)


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> str:
    url = "sqlite:///" + str(Path(tmp_path_factory.mktemp("empty")) / "empty.db")
    migrate(url)
    yield url
    dispose(url)


@pytest.fixture(scope="session")
def known_pg_db() -> str:
    """The known registry on PostgreSQL (HEPABLATE_TEST_PG_URL; a database made and dropped)."""
    import os
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = os.environ.get("HEPABLATE_TEST_PG_URL")
    if not base:
        pytest.skip("HEPABLATE_TEST_PG_URL not set")
    name = f"hb_outcomes_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        build_known_registry(url)
        yield url
    finally:
        dispose(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
