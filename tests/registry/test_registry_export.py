"""read_tables: live rows of every clinical table as DataFrames with every model column."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import func, select, update

from hepablate.errors import InputError
from hepablate.registry import db
from hepablate.registry.export import read_tables
from hepablate.registry.models import ENTITIES, Base
from hepablate.registry.synthetic import generate


@pytest.fixture
def filled(url: str) -> str:
    generate(12, 5, url)
    engine = db.connect(url)
    with engine.begin() as conn:  # soft-delete one row of every table
        for name in ENTITIES:
            t = Base.metadata.tables[name]
            first = conn.execute(select(func.min(t.c.id))).scalar_one()
            conn.execute(update(t).where(t.c.id == first).values(deleted_at=datetime(2025, 1, 2)))
    return url


def _live(url: str, table: str, site: str | None = None) -> set[int]:
    t = Base.metadata.tables[table]
    q = select(t.c.id).where(t.c.deleted_at.is_(None))
    if site is not None:
        q = q.where(t.c.site == site)
    with db.connect(url).connect() as conn:
        return set(conn.execute(q).scalars())


def test_every_model_column_and_only_live_rows(filled: str) -> None:
    frames = read_tables(filled)
    assert list(frames) == list(ENTITIES)
    for name, df in frames.items():
        model_cols = [c.name for c in Base.metadata.tables[name].c]
        assert list(df.columns) == model_cols, name
        assert set(df["id"]) == _live(filled, name) and len(df) > 0, name
        assert df["id"].is_monotonic_increasing and df["deleted_at"].isna().all(), name
    p = frames["patients"]
    assert all(isinstance(v, date) for v in frames["procedure_sessions"]["procedure_date"])
    assert all(v is None or isinstance(v, date) for v in p["death_date"])
    assert p["death_date"].isna().any() and p["death_date"].notna().any()
    assert pd.api.types.is_datetime64_any_dtype(p["created_at"])


def test_site_filter(filled: str) -> None:
    every = read_tables(filled)
    parts = {s: read_tables(filled, site=s) for s in ("north", "south")}
    for name in ENTITIES:
        for s, frames in parts.items():
            df = frames[name]
            assert set(df["site"]) <= {s}, (name, s)
            assert set(df["id"]) == _live(filled, name, s), (name, s)
        assert sorted([*parts["north"][name]["id"], *parts["south"][name]["id"]]) == list(
            every[name]["id"]
        )
    assert len(parts["north"]["patients"]) and len(parts["south"]["patients"])
    none = read_tables(filled, site="nowhere", tables=["patients", "adverse_events"])
    assert list(none) == ["patients", "adverse_events"]
    assert none["patients"].empty
    assert list(none["patients"].columns) == [c.name for c in Base.metadata.tables["patients"].c]


def test_not_a_clinical_table(url: str) -> None:
    with pytest.raises(KeyError, match="users"):
        read_tables(url, tables=["patients", "users"])


def test_no_schema(db_url: str) -> None:
    with pytest.raises(InputError, match="no registry schema"):
        read_tables(db.connect(db_url))
