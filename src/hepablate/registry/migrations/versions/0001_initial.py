"""initial registry schema

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_trail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=True),
        sa.Column("old_values", sa.Text(), nullable=True),
        sa.Column("new_values", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("row_hash"),
    )
    with op.batch_alter_table("audit_trail", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_trail_record_id"), ["record_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_trail_site"), ["site"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_trail_table_name"), ["table_name"], unique=False)

    op.create_table(
        "patients",
        sa.Column("patient_code", sa.String(length=64), nullable=False),
        sa.Column("nhs_number_hash", sa.String(length=64), nullable=True),
        sa.Column("year_of_birth", sa.Integer(), nullable=False),
        sa.Column("sex", sa.String(length=16), nullable=False),
        sa.Column("diagnosis", sa.String(length=32), nullable=False),
        sa.Column("child_pugh_class", sa.String(length=1), nullable=True),
        sa.Column("child_pugh_score", sa.Integer(), nullable=True),
        sa.Column("bclc_stage", sa.String(length=1), nullable=True),
        sa.Column("ecog", sa.Integer(), nullable=True),
        sa.Column("cirrhosis", sa.Boolean(), nullable=False),
        sa.Column("cirrhosis_cause", sa.String(length=128), nullable=True),
        sa.Column("mdt_decision", sa.Text(), nullable=False),
        sa.Column("mdt_date", sa.Date(), nullable=True),
        sa.Column("death_date", sa.Date(), nullable=True),
        sa.Column("death_cause", sa.String(length=256), nullable=True),
        sa.Column("death_procedure_related", sa.Boolean(), nullable=True),
        sa.Column("transplant_date", sa.Date(), nullable=True),
        sa.Column("last_contact_date", sa.Date(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site", "patient_code", name="uq_patients_site_code"),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_patients_nhs_number_hash"), ["nhs_number_hash"], unique=False
        )
        batch_op.create_index("ix_patients_site_live", ["site", "deleted_at"], unique=False)

    op.create_table(
        "roles",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "sites",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "followups",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("followup_date", sa.Date(), nullable=False),
        sa.Column("imaging_modality", sa.String(length=16), nullable=False),
        sa.Column("days_after_first_ablation", sa.Integer(), nullable=True),
        sa.Column("new_intrahepatic_disease", sa.Boolean(), nullable=False),
        sa.Column("distant_disease", sa.Boolean(), nullable=False),
        sa.Column("overall_response_recist", sa.String(length=2), nullable=True),
        sa.Column("overall_response_mrecist", sa.String(length=2), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("followups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_followups_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_followups_site_live", ["site", "deleted_at"], unique=False)

    op.create_table(
        "procedure_sessions",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("procedure_date", sa.Date(), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("approach", sa.String(length=16), nullable=False),
        sa.Column("anaesthesia", sa.String(length=16), nullable=False),
        sa.Column("guidance", sa.String(length=16), nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.Column("n_applicators", sa.Integer(), nullable=False),
        sa.Column(
            "voltage_v_max", sa.Numeric(precision=8, scale=1, asdecimal=False), nullable=True
        ),
        sa.Column("pulses_total", sa.Integer(), nullable=True),
        sa.Column(
            "pulse_width_us", sa.Numeric(precision=8, scale=1, asdecimal=False), nullable=True
        ),
        sa.Column("power_w", sa.Numeric(precision=8, scale=1, asdecimal=False), nullable=True),
        sa.Column("duration_s", sa.Numeric(precision=10, scale=1, asdecimal=False), nullable=True),
        sa.Column("energy_j", sa.Numeric(precision=12, scale=1, asdecimal=False), nullable=True),
        sa.Column("plan_ref", sa.String(length=128), nullable=True),
        sa.Column("operator", sa.String(length=128), nullable=False),
        sa.Column("length_of_stay_days", sa.Integer(), nullable=False),
        sa.Column("readmission_30d", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("procedure_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_procedure_sessions_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_procedure_sessions_procedure_date"), ["procedure_date"], unique=False
        )
        batch_op.create_index(
            "ix_procedure_sessions_site_live", ["site", "deleted_at"], unique=False
        )
        batch_op.create_index(
            "ix_procedure_sessions_site_modality", ["site", "modality", "deleted_at"], unique=False
        )

    op.create_table(
        "tumours",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("tumour_code", sa.String(length=32), nullable=False),
        sa.Column("couinaud_segment", sa.Integer(), nullable=False),
        sa.Column("size_mm", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("tumour_type", sa.String(length=32), nullable=False),
        sa.Column("near_major_vessel", sa.Boolean(), nullable=False),
        sa.Column("near_bile_duct", sa.Boolean(), nullable=False),
        sa.Column("previous_treatment", sa.String(length=256), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tumours", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tumours_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_tumours_site_live", ["site", "deleted_at"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["role"],
            ["roles.name"],
        ),
        sa.ForeignKeyConstraint(
            ["site"],
            ["sites.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "adverse_events",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("onset_date", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("therapy", sa.String(length=32), nullable=False),
        sa.Column("intervention", sa.String(length=16), nullable=False),
        sa.Column("intervention_anaesthesia", sa.String(length=16), nullable=False),
        sa.Column("transfusion_units", sa.Integer(), nullable=False),
        sa.Column("icu_admission", sa.Boolean(), nullable=False),
        sa.Column("organ_failure", sa.String(length=8), nullable=False),
        sa.Column("extra_stay_days", sa.Integer(), nullable=False),
        sa.Column("prolonged_hospitalisation", sa.Boolean(), nullable=False),
        sa.Column("permanent_sequelae", sa.Boolean(), nullable=False),
        sa.Column("ongoing_at_discharge", sa.Boolean(), nullable=False),
        sa.Column("death", sa.Boolean(), nullable=False),
        sa.Column("life_threatening", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["procedure_sessions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_adverse_events_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_adverse_events_session_id"), ["session_id"], unique=False
        )
        batch_op.create_index("ix_adverse_events_site_live", ["site", "deleted_at"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "followup_lesions",
        sa.Column("followup_id", sa.Integer(), nullable=False),
        sa.Column("tumour_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("is_lymph_node", sa.Boolean(), nullable=False),
        sa.Column("longest_diameter_mm", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("short_axis_mm", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("viable_longest_diameter_mm", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("non_target_status", sa.String(length=32), nullable=True),
        sa.Column("ablation_zone_mm", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("minimal_margin_mm", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("margin_method", sa.String(length=64), nullable=True),
        sa.Column("residual_tumour", sa.Boolean(), nullable=True),
        sa.Column("local_progression", sa.Boolean(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["followup_id"],
            ["followups.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tumour_id"],
            ["tumours.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("followup_lesions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_followup_lesions_followup_id"), ["followup_id"], unique=False
        )
        batch_op.create_index("ix_followup_lesions_site_live", ["site", "deleted_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_followup_lesions_tumour_id"), ["tumour_id"], unique=False
        )

    op.create_table(
        "treated_tumours",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("tumour_id", sa.Integer(), nullable=False),
        sa.Column("technical_success", sa.Boolean(), nullable=False),
        sa.Column("intent", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["procedure_sessions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tumour_id"],
            ["tumours.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("treated_tumours", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_treated_tumours_session_id"), ["session_id"], unique=False
        )
        batch_op.create_index("ix_treated_tumours_site_live", ["site", "deleted_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_treated_tumours_tumour_id"), ["tumour_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("treated_tumours", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_treated_tumours_tumour_id"))
        batch_op.drop_index("ix_treated_tumours_site_live")
        batch_op.drop_index(batch_op.f("ix_treated_tumours_session_id"))

    op.drop_table("treated_tumours")
    with op.batch_alter_table("followup_lesions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_followup_lesions_tumour_id"))
        batch_op.drop_index("ix_followup_lesions_site_live")
        batch_op.drop_index(batch_op.f("ix_followup_lesions_followup_id"))

    op.drop_table("followup_lesions")
    op.drop_table("api_tokens")
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.drop_index("ix_adverse_events_site_live")
        batch_op.drop_index(batch_op.f("ix_adverse_events_session_id"))
        batch_op.drop_index(batch_op.f("ix_adverse_events_patient_id"))

    op.drop_table("adverse_events")
    op.drop_table("users")
    with op.batch_alter_table("tumours", schema=None) as batch_op:
        batch_op.drop_index("ix_tumours_site_live")
        batch_op.drop_index(batch_op.f("ix_tumours_patient_id"))

    op.drop_table("tumours")
    with op.batch_alter_table("procedure_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_procedure_sessions_site_modality")
        batch_op.drop_index("ix_procedure_sessions_site_live")
        batch_op.drop_index(batch_op.f("ix_procedure_sessions_procedure_date"))
        batch_op.drop_index(batch_op.f("ix_procedure_sessions_patient_id"))

    op.drop_table("procedure_sessions")
    with op.batch_alter_table("followups", schema=None) as batch_op:
        batch_op.drop_index("ix_followups_site_live")
        batch_op.drop_index(batch_op.f("ix_followups_patient_id"))

    op.drop_table("followups")
    op.drop_table("sites")
    op.drop_table("roles")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index("ix_patients_site_live")
        batch_op.drop_index(batch_op.f("ix_patients_nhs_number_hash"))

    op.drop_table("patients")
    with op.batch_alter_table("audit_trail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_trail_table_name"))
        batch_op.drop_index(batch_op.f("ix_audit_trail_site"))
        batch_op.drop_index(batch_op.f("ix_audit_trail_record_id"))

    op.drop_table("audit_trail")
