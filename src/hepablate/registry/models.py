"""SQLAlchemy 2 models of the outcomes registry (the shared data contract, docs/registry.md).

Clinical tables carry `id`, `site` (owning hospital / site group), `version` (optimistic
locking), `created_at`, `updated_at` and `deleted_at` (soft delete; NULL = live). Dates are
`date`; timestamps are naive UTC. Enumerations are lower-case strings; their allowed values,
ranges, units and descriptions live in each column's `info` so that validation, the CSV
templates and the REDCap-style data dictionary are generated from one place.

Definitions: technical success per Ahmed et al., Radiology 2014;273:241-260 (standardised
terminology); response per RECIST 1.1 (Eisenhauer 2009) and mRECIST (Lencioni 2010);
Child-Pugh per Pugh 1973; BCLC per Reig 2022; ECOG per Oken 1982; adverse-event facts are
those needed by Clavien-Dindo (Dindo 2004), CCI (Slankamenac 2013), SIR (Khalilzadeh 2017),
CIRSE (Filippiadis 2017) and CTCAE v5.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, get_args

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    FromClause,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hepablate.outcomes.grading import Therapy

#: adverse_events.therapy: the vocabulary of `hepablate.outcomes.grading.Therapy` (grade-I
#: therapies of Clavien-Dindo first, then grade II), defined once there.
THERAPY_CHOICES: tuple[str, ...] = get_args(Therapy)

DIAGNOSES = ("hcc", "cholangiocarcinoma", "colorectal_metastasis", "other_metastasis", "other")
SEXES = ("female", "male", "other", "unknown")
MODALITIES = ("ire", "laser", "microwave", "radiofrequency")
RESPONSES = ("cr", "pr", "sd", "pd", "ne")
ROLES = ("administrator", "clinician", "data_entry", "auditor")


def utcnow() -> datetime:
    """Naive UTC timestamp (stored identically by SQLite and PostgreSQL)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _f(
    type_: Any,
    *fk: Any,
    nullable: bool = True,
    choices: tuple[str, ...] | None = None,
    ge: float | None = None,
    le: float | None = None,
    doc: str = "",
    default: Any = None,
    index: bool = False,
) -> Any:
    info: dict[str, Any] = {"doc": doc}
    if choices is not None:
        info["choices"] = choices
    if ge is not None:
        info["ge"] = ge
    if le is not None:
        info["le"] = le
    kw: dict[str, Any] = {"nullable": nullable, "info": info, "index": index}
    if default is not None:
        kw["default"] = default
        info["default"] = default
    return mapped_column(type_, *fk, **kw)


def _mm() -> Numeric:
    return Numeric(8, 2, asdecimal=True)


class Base(DeclarativeBase):
    pass


class Clinical:
    """Columns shared by every clinical table."""

    if TYPE_CHECKING:  # set on the concrete (declarative) classes
        __table__: ClassVar[FromClause]

    id: Mapped[int] = mapped_column(Integer, primary_key=True, info={"doc": "record id"})
    # Indexed with deleted_at (see _live_site_indexes): per-site live counts are index-only.
    site: Mapped[str] = mapped_column(
        String(64), nullable=False, info={"doc": "owning hospital / site group code"}
    )
    version: Mapped[int] = mapped_column(
        Integer, nullable=False, default=1, info={"doc": "optimistic-locking version"}
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


SYSTEM_COLUMNS = ("id", "site", "version", "created_at", "updated_at", "deleted_at")


class Patient(Clinical, Base):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("site", "patient_code", name="uq_patients_site_code"),)

    patient_code: Mapped[str] = _f(
        String(64), nullable=False, doc="pseudonymous patient id, unique per site"
    )
    nhs_number_hash: Mapped[str | None] = _f(
        String(64), index=True, doc="HMAC-SHA256 (hex) of the NHS number; raw never stored"
    )
    year_of_birth: Mapped[int] = _f(Integer, nullable=False, ge=1900, le=2100, doc="year")
    sex: Mapped[str] = _f(String(16), nullable=False, choices=SEXES, doc="sex")
    diagnosis: Mapped[str] = _f(String(32), nullable=False, choices=DIAGNOSES, doc="diagnosis")
    child_pugh_class: Mapped[str | None] = _f(
        String(1), choices=("a", "b", "c"), doc="Child-Pugh class (Pugh 1973)"
    )
    child_pugh_score: Mapped[int | None] = _f(
        Integer, ge=5, le=15, doc="Child-Pugh score 5-15 (A 5-6, B 7-9, C 10-15)"
    )
    bclc_stage: Mapped[str | None] = _f(
        String(1), choices=("0", "a", "b", "c", "d"), doc="BCLC stage"
    )
    ecog: Mapped[int | None] = _f(Integer, ge=0, le=4, doc="ECOG performance status 0-4")
    cirrhosis: Mapped[bool] = _f(Boolean, nullable=False, doc="cirrhosis present")
    cirrhosis_cause: Mapped[str | None] = _f(String(128), doc="cause of cirrhosis (free text)")
    mdt_decision: Mapped[str] = _f(Text, nullable=False, doc="MDT decision (free text)")
    mdt_date: Mapped[date | None] = _f(Date, doc="date of the MDT decision")
    death_date: Mapped[date | None] = _f(Date, doc="date of death; empty if alive")
    death_cause: Mapped[str | None] = _f(String(256), doc="cause of death")
    death_procedure_related: Mapped[bool | None] = _f(Boolean, doc="death related to ablation")
    transplant_date: Mapped[date | None] = _f(Date, doc="date of liver transplant")
    last_contact_date: Mapped[date | None] = _f(Date, doc="date last known alive")


class Tumour(Clinical, Base):
    __tablename__ = "tumours"

    patient_id: Mapped[int] = _f(
        Integer, ForeignKey("patients.id"), nullable=False, index=True, doc="patients.id"
    )
    tumour_code: Mapped[str] = _f(String(32), nullable=False, doc="tumour label, e.g. T1")
    couinaud_segment: Mapped[int] = _f(
        Integer, nullable=False, ge=1, le=8, doc="Couinaud segment 1-8"
    )
    size_mm: Mapped[Decimal] = _f(
        _mm(), nullable=False, ge=0.1, le=300, doc="longest diameter at baseline (mm)"
    )
    tumour_type: Mapped[str] = _f(String(32), nullable=False, choices=DIAGNOSES, doc="type")
    near_major_vessel: Mapped[bool] = _f(
        Boolean, nullable=False, doc="within 10 mm of a major vessel"
    )
    near_bile_duct: Mapped[bool] = _f(
        Boolean, nullable=False, doc="within 10 mm of a major bile duct"
    )
    previous_treatment: Mapped[str | None] = _f(String(256), doc="previous treatment (free text)")


class ProcedureSession(Clinical, Base):
    __tablename__ = "procedure_sessions"

    patient_id: Mapped[int] = _f(
        Integer, ForeignKey("patients.id"), nullable=False, index=True, doc="patients.id"
    )
    procedure_date: Mapped[date] = _f(Date, nullable=False, index=True, doc="procedure date")
    modality: Mapped[str] = _f(String(16), nullable=False, choices=MODALITIES, doc="modality")
    approach: Mapped[str] = _f(
        String(16), nullable=False, choices=("percutaneous", "laparoscopic", "open"), doc="approach"
    )
    anaesthesia: Mapped[str] = _f(
        String(16), nullable=False, choices=("general", "sedation", "local"), doc="anaesthesia"
    )
    guidance: Mapped[str] = _f(
        String(16),
        nullable=False,
        choices=("ct", "us", "mri", "cbct", "fusion", "other"),
        doc="image guidance",
    )
    device: Mapped[str] = _f(String(128), nullable=False, doc="device / generator")
    n_applicators: Mapped[int] = _f(
        Integer, nullable=False, ge=1, le=12, doc="number of probes or fibres"
    )
    voltage_v_max: Mapped[float | None] = _f(
        Numeric(8, 1, asdecimal=False), ge=0, le=5000, doc="IRE: maximum voltage (V)"
    )
    pulses_total: Mapped[int | None] = _f(Integer, ge=0, le=100000, doc="IRE: total pulses")
    pulse_width_us: Mapped[float | None] = _f(
        Numeric(8, 1, asdecimal=False), ge=0, le=1000, doc="IRE: pulse width (us)"
    )
    power_w: Mapped[float | None] = _f(
        Numeric(8, 1, asdecimal=False), ge=0, le=300, doc="thermal: power (W)"
    )
    duration_s: Mapped[float | None] = _f(
        Numeric(10, 1, asdecimal=False), ge=0, le=36000, doc="energy delivery time (s)"
    )
    energy_j: Mapped[float | None] = _f(
        Numeric(12, 1, asdecimal=False), ge=0, le=1e7, doc="delivered energy (J)"
    )
    plan_ref: Mapped[str | None] = _f(String(128), doc="hepablate plan id/hash used, if any")
    operator: Mapped[str] = _f(String(128), nullable=False, doc="operator")
    length_of_stay_days: Mapped[int] = _f(
        Integer, nullable=False, ge=0, le=365, doc="length of stay (days)"
    )
    readmission_30d: Mapped[bool] = _f(Boolean, nullable=False, doc="readmitted within 30 days")


class TreatedTumour(Clinical, Base):
    __tablename__ = "treated_tumours"

    session_id: Mapped[int] = _f(
        Integer,
        ForeignKey("procedure_sessions.id"),
        nullable=False,
        index=True,
        doc="procedure_sessions.id",
    )
    tumour_id: Mapped[int] = _f(
        Integer, ForeignKey("tumours.id"), nullable=False, index=True, doc="tumours.id"
    )
    technical_success: Mapped[bool] = _f(
        Boolean,
        nullable=False,
        doc="treated per protocol and covered by the ablation zone on immediate imaging (Ahmed 2014)",
    )
    intent: Mapped[str] = _f(
        String(16), nullable=False, choices=("curative", "palliative", "bridge"), doc="intent"
    )


class Followup(Clinical, Base):
    __tablename__ = "followups"

    patient_id: Mapped[int] = _f(
        Integer, ForeignKey("patients.id"), nullable=False, index=True, doc="patients.id"
    )
    followup_date: Mapped[date] = _f(Date, nullable=False, doc="imaging date")
    imaging_modality: Mapped[str] = _f(
        String(16), nullable=False, choices=("ct", "mri", "us", "pet_ct"), doc="imaging modality"
    )
    days_after_first_ablation: Mapped[int | None] = _f(
        Integer, doc="derived: days from the patient's first procedure session"
    )
    new_intrahepatic_disease: Mapped[bool] = _f(Boolean, nullable=False, doc="new liver disease")
    distant_disease: Mapped[bool] = _f(Boolean, nullable=False, doc="extrahepatic disease")
    overall_response_recist: Mapped[str | None] = _f(
        String(2), choices=RESPONSES, doc="cache of the engine's RECIST 1.1 response"
    )
    overall_response_mrecist: Mapped[str | None] = _f(
        String(2), choices=RESPONSES, doc="cache of the engine's mRECIST response"
    )


class FollowupLesion(Clinical, Base):
    __tablename__ = "followup_lesions"

    followup_id: Mapped[int] = _f(
        Integer, ForeignKey("followups.id"), nullable=False, index=True, doc="followups.id"
    )
    tumour_id: Mapped[int | None] = _f(
        Integer, ForeignKey("tumours.id"), index=True, doc="tumours.id; empty for a new lesion"
    )
    role: Mapped[str] = _f(
        String(16), nullable=False, choices=("target", "non_target", "new"), doc="RECIST role"
    )
    is_lymph_node: Mapped[bool] = _f(Boolean, nullable=False, default=False, doc="lymph node")
    longest_diameter_mm: Mapped[Decimal | None] = _f(
        _mm(), ge=0, le=500, doc="longest diameter (mm)"
    )
    short_axis_mm: Mapped[Decimal | None] = _f(_mm(), ge=0, le=300, doc="node short axis (mm)")
    viable_longest_diameter_mm: Mapped[Decimal | None] = _f(
        _mm(), ge=0, le=500, doc="mRECIST: longest diameter of enhancing tumour (mm)"
    )
    non_target_status: Mapped[str | None] = _f(
        String(32),
        choices=("present", "absent", "unequivocal_progression"),
        doc="non-target lesion status",
    )
    ablation_zone_mm: Mapped[Decimal | None] = _f(
        _mm(), ge=0, le=500, doc="ablation zone longest diameter (mm)"
    )
    minimal_margin_mm: Mapped[Decimal | None] = _f(
        _mm(), ge=-100, le=100, doc="minimal ablative margin (mm; negative = not covered)"
    )
    margin_method: Mapped[str | None] = _f(String(64), doc="how the margin was measured")
    residual_tumour: Mapped[bool | None] = _f(Boolean, doc="residual unablated tumour")
    local_progression: Mapped[bool | None] = _f(Boolean, doc="local tumour progression")


class AdverseEvent(Clinical, Base):
    __tablename__ = "adverse_events"

    patient_id: Mapped[int] = _f(
        Integer, ForeignKey("patients.id"), nullable=False, index=True, doc="patients.id"
    )
    session_id: Mapped[int] = _f(
        Integer,
        ForeignKey("procedure_sessions.id"),
        nullable=False,
        index=True,
        doc="procedure_sessions.id",
    )
    onset_date: Mapped[date] = _f(Date, nullable=False, doc="onset date")
    description: Mapped[str] = _f(Text, nullable=False, doc="what happened")
    category: Mapped[str] = _f(
        String(32),
        nullable=False,
        choices=(
            "bleeding",
            "infection",
            "damage_surrounding_tissue",
            "arrhythmia",
            "needle_tract_seeding",
            "biliary",
            "thrombosis",
            "pain",
            "other",
        ),
        doc="category",
    )
    therapy: Mapped[str] = _f(
        String(32),
        nullable=False,
        choices=THERAPY_CHOICES,
        doc="highest therapy given: grade-I drugs (analgesic, antiemetic, antipyretic, "
        "diuretic, electrolyte) or physiotherapy; pharmacological = any other drug "
        "(Clavien-Dindo II); transfusion; parenteral_nutrition",
    )
    intervention: Mapped[str] = _f(
        String(16),
        nullable=False,
        choices=("none", "radiological", "endoscopic", "surgical"),
        doc="intervention",
    )
    intervention_anaesthesia: Mapped[str] = _f(
        String(16), nullable=False, choices=("none", "local", "general"), doc="its anaesthesia"
    )
    transfusion_units: Mapped[int] = _f(
        Integer, nullable=False, ge=0, le=200, default=0, doc="blood units transfused"
    )
    icu_admission: Mapped[bool] = _f(Boolean, nullable=False, default=False, doc="ICU admission")
    organ_failure: Mapped[str] = _f(
        String(8),
        nullable=False,
        choices=("none", "single", "multi"),
        default="none",
        doc="organ failure",
    )
    extra_stay_days: Mapped[int] = _f(
        Integer, nullable=False, ge=0, le=365, default=0, doc="extra length of stay (days)"
    )
    prolonged_hospitalisation: Mapped[bool] = _f(
        Boolean, nullable=False, default=False, doc="hospitalisation prolonged"
    )
    permanent_sequelae: Mapped[bool] = _f(
        Boolean, nullable=False, default=False, doc="permanent sequelae"
    )
    ongoing_at_discharge: Mapped[bool] = _f(
        Boolean, nullable=False, default=False, doc="ongoing at discharge (Clavien-Dindo 'd')"
    )
    death: Mapped[bool] = _f(Boolean, nullable=False, default=False, doc="led to death")
    life_threatening: Mapped[bool] = _f(
        Boolean, nullable=False, default=False, doc="life-threatening"
    )


# --- access control and audit (registry only) -------------------------------------------


class Site(Base):
    __tablename__ = "sites"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False)


class Role(Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(256), nullable=False)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(256), nullable=False)
    role: Mapped[str] = mapped_column(String(32), ForeignKey("roles.name"), nullable=False)
    # NULL site: sees every site (a registry-wide administrator or auditor).
    site: Mapped[str | None] = mapped_column(String(64), ForeignKey("sites.code"), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class AuditEntry(Base):
    """Append-only, hash-chained: row_hash = SHA-256(prev_hash + canonical JSON of the row)."""

    __tablename__ = "audit_trail"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # create|update|delete
    table_name: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    record_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    site: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # Canonical JSON text, kept verbatim so the hash can be recomputed byte for byte.
    old_values: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_values: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)


ENTITIES: dict[str, type[Clinical]] = {
    "patients": Patient,
    "tumours": Tumour,
    "procedure_sessions": ProcedureSession,
    "treated_tumours": TreatedTumour,
    "followups": Followup,
    "followup_lesions": FollowupLesion,
    "adverse_events": AdverseEvent,
}
"""Clinical tables in dependency order (a table's parents come before it)."""


def _live_site_indexes() -> None:
    """Covering indexes for the API's per-site lists and counts of live rows."""
    for name, model in ENTITIES.items():
        t = model.__table__
        Index(f"ix_{name}_site_live", t.c.site, t.c.deleted_at)
    t = ProcedureSession.__table__
    Index("ix_procedure_sessions_site_modality", t.c.site, t.c.modality, t.c.deleted_at)


_live_site_indexes()

# Foreign keys between clinical tables: table -> {column: parent table}.
PARENTS: dict[str, dict[str, str]] = {
    "patients": {},
    "tumours": {"patient_id": "patients"},
    "procedure_sessions": {"patient_id": "patients"},
    "treated_tumours": {"session_id": "procedure_sessions", "tumour_id": "tumours"},
    "followups": {"patient_id": "patients"},
    "followup_lesions": {"followup_id": "followups", "tumour_id": "tumours"},
    "adverse_events": {"patient_id": "patients", "session_id": "procedure_sessions"},
}

ROLE_DESCRIPTIONS = {
    "administrator": "manages users and may create, change and delete every record",
    "clinician": "creates, changes and deletes clinical records of their site",
    "data_entry": "creates and changes clinical records of their site; cannot delete",
    "auditor": "read-only access to records and the audit trail",
}
