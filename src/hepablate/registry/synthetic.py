"""Deterministic synthetic registry for tests, demonstrations and benchmarks.

The distributions are illustrative, loosely shaped like published ablation series (mostly HCC
and colorectal metastases, 1-3 tumours of 10-50 mm, IRE/laser/microwave/RF sessions, imaging
at 1, 3, 6, 12, 18, 24 (and 30, 36) months, deaths, local progression and adverse events of
every category). They are not clinical data and no result should be read from them. Every
record passes the registry's validation and is written with its audit rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from hepablate.errors import InputError
from hepablate.registry.db import connect, require_schema

FOLLOWUP_MONTHS = (1, 3, 6, 12, 18, 24, 30, 36)
TODAY = date(2025, 12, 31)  # fixed so the output does not depend on the day it is run

_DIAG = (
    ("hcc", 0.55),
    ("colorectal_metastasis", 0.30),
    ("cholangiocarcinoma", 0.07),
    ("other_metastasis", 0.06),
    ("other", 0.02),
)
_MODALITY = (("ire", 0.30), ("laser", 0.15), ("microwave", 0.35), ("radiofrequency", 0.20))
_AE_CATEGORY = (
    ("bleeding", 0.2),
    ("infection", 0.15),
    ("damage_surrounding_tissue", 0.1),
    ("arrhythmia", 0.1),
    ("needle_tract_seeding", 0.03),
    ("biliary", 0.1),
    ("thrombosis", 0.07),
    ("pain", 0.2),
    ("other", 0.05),
)


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


@dataclass(frozen=True)
class SyntheticSummary:
    counts: dict[str, int]
    audit_rows: int


def synthetic_records(
    n_patients: int, seed: int, sites: tuple[str, ...] = ("north", "south")
) -> dict[str, list[dict[str, Any]]]:
    """Records keyed by table, with import-local `id`s and foreign keys (see csvio)."""
    if n_patients < 1:
        raise InputError("must be at least 1", field="n_patients")
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {
        t: []
        for t in (
            "patients",
            "tumours",
            "procedure_sessions",
            "treated_tumours",
            "followups",
            "followup_lesions",
            "adverse_events",
        )
    }
    ids = dict.fromkeys(out, 0)

    def new(table: str, rec: dict[str, Any]) -> int:
        ids[table] += 1
        rec["id"] = ids[table]
        out[table].append(rec)
        return ids[table]

    for i in range(n_patients):
        site = sites[i % len(sites)]
        diag = _pick(rng, _DIAG)
        yob = max(1925, min(1995, round(rng.gauss(1956, 10))))
        cirrhosis = diag == "hcc" and rng.random() < 0.8
        first = date(2018, 1, 1) + timedelta(days=rng.randrange(0, 5 * 365))
        cp_class = rng.choice("aab") if cirrhosis else None
        cp_score = {"a": rng.choice((5, 6)), "b": rng.choice((7, 8, 9))}.get(cp_class or "")
        # Exponential survival with a median of ~5 years (HCC) or ~3.5 years (metastases).
        median_days = 1825 if diag == "hcc" else 1280
        death_after = int(rng.expovariate(0.6931 / median_days)) + 5
        periop_death = rng.random() < 0.005  # ~0.5% 30-day procedure-related mortality
        if periop_death:
            death_after = rng.randint(2, 29)
        death = first + timedelta(days=death_after)
        death_date = death if death <= TODAY else None
        lost = rng.random() < 0.05
        last_contact = death_date or (TODAY - timedelta(days=rng.randrange(0, 60)))
        if lost:
            last_contact = min(last_contact, first + timedelta(days=rng.randrange(40, 500)))
        pid = new(
            "patients",
            {
                "site": site,
                "patient_code": f"SYN{seed}-{i + 1:06d}",
                "year_of_birth": yob,
                "sex": "male" if rng.random() < 0.68 else "female",
                "diagnosis": diag,
                "child_pugh_class": cp_class,
                "child_pugh_score": cp_score,
                "bclc_stage": rng.choice("0aab") if diag == "hcc" else None,
                "ecog": rng.choice((0, 0, 0, 1, 1, 2)),
                "cirrhosis": cirrhosis,
                "cirrhosis_cause": rng.choice(("alcohol", "hbv", "hcv", "masld"))
                if cirrhosis
                else None,
                "mdt_decision": "ablation",
                "mdt_date": first - timedelta(days=rng.randrange(7, 40)),
                "death_date": death_date,
                "death_cause": (
                    "procedure complication"
                    if periop_death
                    else rng.choice(("disease progression", "liver failure", "other"))
                    if death_date
                    else None
                ),
                "death_procedure_related": False if death_date else None,
                "transplant_date": None,
                "last_contact_date": last_contact,
            },
        )
        n_t = rng.choices((1, 2, 3), (0.62, 0.26, 0.12))[0]
        tumours = []
        for k in range(n_t):
            size = round(min(60.0, max(5.0, rng.lognormvariate(3.0, 0.4))), 1)
            tumours.append(
                (
                    new(
                        "tumours",
                        {
                            "patient_id": pid,
                            "tumour_code": f"T{k + 1}",
                            "couinaud_segment": rng.randint(1, 8),
                            "size_mm": size,
                            "tumour_type": diag if diag != "other" else "other",
                            "near_major_vessel": rng.random() < 0.35,
                            "near_bile_duct": rng.random() < 0.15,
                            "previous_treatment": rng.choice(
                                (None, None, None, "tace", "resection")
                            ),
                        },
                    ),
                    size,
                )
            )
        modality = _pick(rng, _MODALITY)
        ire = modality == "ire"
        sid = new(
            "procedure_sessions",
            {
                "patient_id": pid,
                "procedure_date": first,
                "modality": modality,
                "approach": rng.choices(
                    ("percutaneous", "laparoscopic", "open"), (0.9, 0.07, 0.03)
                )[0],
                "anaesthesia": "general" if ire else rng.choice(("general", "sedation")),
                "guidance": rng.choice(("ct", "us", "cbct", "fusion")),
                "device": {
                    "ire": "NanoKnife",
                    "laser": "Nd:YAG 1064 nm",
                    "microwave": "Emprint",
                    "radiofrequency": "Cool-tip",
                }[modality],
                "n_applicators": rng.randint(2, 6) if ire else rng.randint(1, 3),
                "voltage_v_max": rng.choice((1500, 2000, 2500, 3000)) if ire else None,
                "pulses_total": 90 * rng.randint(2, 6) if ire else None,
                "pulse_width_us": rng.choice((70, 90, 100)) if ire else None,
                "power_w": None if ire else rng.choice((15, 30, 60, 100)),
                "duration_s": rng.randint(300, 1200),
                "energy_j": None,
                "plan_ref": None,
                "operator": f"OP{rng.randint(1, 6)}",
                "length_of_stay_days": rng.choice((1, 1, 2, 3)),
                "readmission_30d": rng.random() < 0.05,
            },
        )
        success = {}
        for tid, size in tumours:
            ok = rng.random() < (0.97 if size < 30 else 0.9)
            success[tid] = ok
            new(
                "treated_tumours",
                {
                    "session_id": sid,
                    "tumour_id": tid,
                    "technical_success": ok,
                    "intent": rng.choices(("curative", "palliative", "bridge"), (0.85, 0.1, 0.05))[
                        0
                    ],
                },
            )
        if periop_death or rng.random() < 0.18:
            cat = _pick(rng, _AE_CATEGORY)
            major = periop_death or rng.random() < 0.25
            therapy = (
                "transfusion"
                if cat == "bleeding" and major
                else (
                    "pharmacological"
                    if cat in ("infection", "pain", "arrhythmia")
                    else rng.choice(("none", "pharmacological", "other"))
                )
            )
            intervention = (
                rng.choice(("radiological", "endoscopic", "surgical")) if major else "none"
            )
            fatal = periop_death
            extra = rng.randint(1, 10) if major else rng.choice((0, 0, 1))
            new(
                "adverse_events",
                {
                    "patient_id": pid,
                    "session_id": sid,
                    "onset_date": first
                    + timedelta(days=0 if fatal else rng.choice((0, 0, 1, 3, 10))),
                    "description": f"synthetic {cat} event",
                    "category": cat,
                    "therapy": therapy,
                    "intervention": intervention,
                    "intervention_anaesthesia": "none"
                    if intervention == "none"
                    else rng.choice(("local", "general")),
                    "transfusion_units": rng.randint(1, 4) if therapy == "transfusion" else 0,
                    "icu_admission": major and rng.random() < 0.3,
                    "organ_failure": rng.choice(("none", "none", "single")) if major else "none",
                    "extra_stay_days": extra,
                    "prolonged_hospitalisation": extra > 2,
                    "permanent_sequelae": major and rng.random() < 0.1,
                    "ongoing_at_discharge": not fatal and rng.random() < 0.1,
                    "death": fatal,
                    "life_threatening": major and rng.random() < 0.2,
                },
            )
            if fatal:
                out["patients"][-1]["death_procedure_related"] = True
        if (
            out["adverse_events"]
            and out["adverse_events"][-1]["patient_id"] == pid
            and out["adverse_events"][-1]["onset_date"] > last_contact
        ):
            out["adverse_events"].pop()
            ids["adverse_events"] -= 1
        progressed: set[int] = set()
        for m in FOLLOWUP_MONTHS:
            d = first + timedelta(days=round(m * 30.44) + rng.randint(-7, 7))
            if d > last_contact:
                break
            fid = new(
                "followups",
                {
                    "patient_id": pid,
                    "followup_date": d,
                    "imaging_modality": rng.choice(("ct", "ct", "mri", "us")),
                    "new_intrahepatic_disease": rng.random() < 0.04 * min(m, 12) / 3,
                    "distant_disease": rng.random() < 0.02 * min(m, 12) / 3,
                    "overall_response_recist": None,
                    "overall_response_mrecist": None,
                },
            )
            for tid, size in tumours:
                if m > 1 and tid not in progressed and rng.random() < 0.03:
                    progressed.add(tid)
                ltp = tid in progressed
                residual = m == 1 and not success[tid]
                zone = round(size + rng.uniform(5, 20), 1)
                new(
                    "followup_lesions",
                    {
                        "followup_id": fid,
                        "tumour_id": tid,
                        "role": "target",
                        "is_lymph_node": False,
                        "longest_diameter_mm": round(
                            zone * (1.2 if ltp else max(0.3, 1 - m / 40)), 1
                        ),
                        "viable_longest_diameter_mm": round(size * 0.5, 1)
                        if (ltp or residual)
                        else 0,
                        "ablation_zone_mm": zone if m == 1 else None,
                        "minimal_margin_mm": round(rng.uniform(-2, 8), 1) if m == 1 else None,
                        "margin_method": rng.choice(
                            ("visual side-by-side", "registration-based 3D")
                        )
                        if m == 1
                        else None,
                        "residual_tumour": residual if m == 1 else None,
                        "local_progression": ltp and not residual,
                    },
                )
    return out


def refuse_real_records(engine: Engine, actor: str = "synthetic") -> None:
    """`InputError` unless every clinical record was written by the synthetic generator
    (audit actor `actor`): fake patients must never mix with real ones."""
    from sqlalchemy import func, select

    from hepablate.registry.models import ENTITIES, AuditEntry

    with engine.connect() as conn:
        foreign = conn.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.table_name.in_(list(ENTITIES)), AuditEntry.actor != actor)
        )
        patients_t = ENTITIES["patients"].__table__
        audited = conn.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.table_name == "patients", AuditEntry.action == "create")
        )
        patients = conn.scalar(select(func.count()).select_from(patients_t))
    if foreign or (patients or 0) > (audited or 0):
        raise InputError(
            "the registry holds records that the synthetic generator did not write; "
            "synthetic data go only into an empty or all-synthetic registry",
            field="--db",
        )


def generate(
    n_patients: int,
    seed: int,
    url: str,
    *,
    sites: tuple[str, ...] = ("north", "south"),
    actor: str = "synthetic",
) -> SyntheticSummary:
    """Validate and write a synthetic registry of `n_patients` into the database at `url`
    (schema must exist: `hepablate registry init`). Same arguments, same records."""
    from hepablate.registry.csvio import ImportFailed, insert_records, validate_records

    engine = connect(url)
    require_schema(engine)
    refuse_real_records(engine, actor)
    recs = synthetic_records(n_patients, seed, sites)
    raw = {t: [(i + 2, r) for i, r in enumerate(rows)] for t, rows in recs.items()}
    parsed, errors = validate_records(raw, engine, None, None)
    if errors:
        raise ImportFailed(errors)
    res = insert_records(engine, parsed, actor)
    return SyntheticSummary(res.counts, res.audit_rows)
