"""PostgreSQL row-level security: a second layer of site isolation under the service's
checks (migration 0002). Every statement here bypasses the service on purpose."""

from __future__ import annotations

import pytest
from registry_helpers import ADMIN, patient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hepablate.registry import db
from hepablate.registry.auth import Actor, PermissionDenied
from hepablate.registry.service import Registry


@pytest.fixture
def pg_engine(url: str, backend: str):  # type: ignore[no-untyped-def]
    if backend != "postgres":
        pytest.skip("row-level security is a PostgreSQL feature")
    engine = db.connect(url)
    reg = Registry(engine, ADMIN)
    reg.create("patients", patient(site="north", patient_code="N1"))
    reg.create("patients", patient(site="south", patient_code="S1"))
    return engine


def _count(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT COUNT(*) FROM patients")))


@pytest.mark.postgres
def test_raw_queries_see_only_the_scoped_site(pg_engine) -> None:  # type: ignore[no-untyped-def]
    assert _count(pg_engine) == 2  # outside a scope (CLI, administrator): every site
    with db.site_scope("north"):
        assert _count(pg_engine) == 1
        with pg_engine.begin() as conn:
            assert (
                conn.execute(text("UPDATE patients SET ecog = 3 WHERE site = 'south'")).rowcount
                == 0
            )
            assert conn.execute(text("DELETE FROM patients WHERE site = 'south'")).rowcount == 0
    with db.site_scope(None):
        assert _count(pg_engine) == 2
    with pg_engine.connect() as conn:
        assert conn.scalar(text("SELECT ecog FROM patients WHERE site = 'south'")) is None


@pytest.mark.postgres
def test_writing_another_sites_row_is_refused(pg_engine) -> None:  # type: ignore[no-untyped-def]
    with db.site_scope("north"), pytest.raises(DBAPIError, match="row-level security"):
        with pg_engine.begin() as conn:
            conn.execute(text("UPDATE patients SET site = 'south' WHERE site = 'north'"))


@pytest.mark.postgres
def test_service_reads_are_scoped(pg_engine) -> None:  # type: ignore[no-untyped-def]
    north = Registry(pg_engine, Actor("n", "clinician", "north"))
    assert {p["site"] for p in north.list("patients").items} == {"north"}
    south_id = Registry(pg_engine, ADMIN).list("patients", filters={"site": "south"}).items[0]["id"]
    with pytest.raises(PermissionDenied):  # 403 as on SQLite, though RLS hid the row
        north.get("patients", south_id)


@pytest.mark.postgres
def test_scope_does_not_leak_into_pooled_connections(pg_engine) -> None:  # type: ignore[no-untyped-def]
    with db.site_scope("north"):
        assert _count(pg_engine) == 1
    for _ in range(3):
        assert _count(pg_engine) == 2
