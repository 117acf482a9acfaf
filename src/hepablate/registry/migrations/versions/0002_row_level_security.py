"""row-level security by site on the clinical tables (PostgreSQL only)

A second layer of site isolation under the service's checks: every transaction sets
`hepablate.site` (`hepablate.registry.db.site_scope`; empty = all sites) and each clinical
table admits only rows of that site, for reading and writing (FORCE: the owning role too).
SQLite has no row-level security; there the service's checks are the only layer.

Revision ID: 0002_row_level_security
Revises: 0001_initial
Create Date: 2026-12-01
"""

from alembic import op

revision = "0002_row_level_security"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

TABLES = (
    "patients",
    "tumours",
    "procedure_sessions",
    "treated_tumours",
    "followups",
    "followup_lesions",
    "adverse_events",
)
_RULE = (
    "coalesce(current_setting('hepablate.site', true), '') = '' "
    "OR site = current_setting('hepablate.site', true)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for t in TABLES:
        op.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY site_isolation ON {t} USING ({_RULE}) WITH CHECK ({_RULE})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for t in TABLES:
        op.execute(f"DROP POLICY IF EXISTS site_isolation ON {t}")
        op.execute(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY")
