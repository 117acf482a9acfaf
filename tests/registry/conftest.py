"""Registry fixtures: every test runs on SQLite and, when HEPABLATE_TEST_PG_URL is set, on a
fresh PostgreSQL database created for that test and dropped afterwards."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_helpers import ADMIN
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hepablate.registry import db
from hepablate.registry.service import Registry

PG_ENV = "HEPABLATE_TEST_PG_URL"


@pytest.fixture(autouse=True)
def _nhs_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEPABLATE_NHS_KEY", "test-key-0123456789abcdef")


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap Argon2id parameters in tests (the production ones take ~0.4 s per hash here)."""
    from argon2 import PasswordHasher

    from hepablate.registry import auth

    monkeypatch.setattr(
        auth, "_HASHER", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1)
    )


def _drop(admin, name: str) -> None:  # type: ignore[no-untyped-def]
    # An autovacuum worker may briefly hold the database; retry rather than FORCE
    # (terminating another role's backend needs privileges the test role lacks).
    for attempt in range(50):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            return
        except Exception:
            if attempt == 49:
                raise
            time.sleep(0.1)


def _pg_database(template: str | None = None) -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set")
    name = f"hb_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        tmpl = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{tmpl}'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        db.dispose(url)
        _drop(admin, name)
        admin.dispose()


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str]:
    """A migrated database that each PostgreSQL test copies (CREATE DATABASE ... TEMPLATE)."""
    gen = _pg_database()
    url = next(gen)
    db.migrate(url)
    db.dispose(url)
    yield make_url(url).database  # type: ignore[misc]
    gen.close()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "registry.db"
    url = f"sqlite:///{path}"
    db.migrate(url)
    db.dispose(url)
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not os.environ.get(PG_ENV):
        pytest.skip(f"{PG_ENV} not set")
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
        yield url
        db.dispose(url)
    else:
        yield from _pg_database()


@pytest.fixture(scope="module")
def _pg_module_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """One migrated PostgreSQL database per test module, dropped afterwards."""
    yield from _pg_database(request.getfixturevalue("_pg_template"))


_KEEP = {"roles", "alembic_version"}


def _truncate(url: str) -> None:
    from hepablate.registry.models import Base

    names = ", ".join(f'"{t}"' for t in Base.metadata.tables if t not in _KEEP)
    with db.connect(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated, empty registry: a copy of a migrated SQLite file, or the module's
    PostgreSQL database emptied (TRUNCATE ... RESTART IDENTITY) before the test."""
    if backend == "sqlite":
        path = tmp_path / "registry.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        url = f"sqlite:///{path}"
        yield url
        db.dispose(url)
    else:
        url = request.getfixturevalue("_pg_module_db")
        _truncate(url)
        yield url


@pytest.fixture
def engine(url: str):  # type: ignore[no-untyped-def]
    return db.connect(url)


@pytest.fixture
def reg(engine) -> Registry:  # type: ignore[no-untyped-def]
    return Registry(engine, ADMIN)
