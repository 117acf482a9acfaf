"""Migrations create the schema; connect() creates nothing; SQLite runs in WAL mode."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text

from hepablate.errors import InputError
from hepablate.registry import db
from hepablate.registry.models import ENTITIES, Base, Role


def test_connect_creates_nothing_and_init_creates_schema(db_url: str) -> None:
    engine = db.connect(db_url)
    assert not inspect(engine).has_table("patients")
    with pytest.raises(InputError, match="registry init"):
        db.require_schema(engine)
    rev = db.migrate(db_url)
    assert rev == "0002_row_level_security"
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    for name in ENTITIES:
        cols = {c["name"] for c in inspect(engine).get_columns(name)}
        assert {"id", "site", "version", "created_at", "updated_at", "deleted_at"} <= cols
    with engine.connect() as conn:
        assert set(conn.scalars(select(Role.name))) == {
            "administrator",
            "clinician",
            "data_entry",
            "auditor",
        }
    assert db.migrate(db_url) == "0002_row_level_security"  # idempotent


def test_migration_matches_models(url: str) -> None:
    """The shipped migration builds exactly the tables and columns of models.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.connect(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_uses_wal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with db.connect(url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose(url)


def test_default_url_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HEPABLATE_DB", str(tmp_path / "x.db"))
    assert db.default_url() == f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.delenv("HEPABLATE_DB")
    assert db.default_url().endswith(".local/share/hepablate/registry.db")


def test_bad_url_is_input_error() -> None:
    with pytest.raises(InputError, match="database URL"):
        db.connect("mysql://x/y")
