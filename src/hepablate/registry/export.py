"""The live clinical tables as pandas DataFrames, for analysis code (the audit report).

Columns come from the models (`registry.models.ENTITIES`), so a column added there is read
here too. Only live rows (`deleted_at IS NULL`), optionally of one site, in `id` order, all
tables read in one transaction. `Date` columns hold `datetime.date` (None when empty) and
`DateTime` columns pandas timestamps on both backends; other values are as the driver gives
them (SQLite: booleans 0/1, numerics float; PostgreSQL: bool, Decimal).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Date, DateTime, Engine, Select, Table, select

from hepablate.registry.db import connect, require_schema
from hepablate.registry.models import ENTITIES, Base


def _table(name: str) -> Table:
    if name not in ENTITIES:
        raise KeyError(f"not a clinical table: {name}")
    return Base.metadata.tables[name]


def live_rows(table: str, site: str | None = None) -> Select[tuple[object, ...]]:
    """SELECT of every column of the live rows of `table` (of `site` when given), by id."""
    t = _table(table)
    q = select(*t.c).where(t.c.deleted_at.is_(None))
    if site is not None:
        q = q.where(t.c.site == site)
    return q.order_by(t.c.id)


def _typed(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Date -> datetime.date or None, DateTime -> pandas timestamps (SQLite stores text)."""
    for col in _table(table).c:
        if isinstance(col.type, DateTime):
            df[col.name] = pd.to_datetime(df[col.name], format="ISO8601")
        elif isinstance(col.type, Date):
            v = pd.to_datetime(df[col.name], errors="coerce", format="ISO8601")
            dates = v.dt.date.to_numpy(dtype=object)
            dates[v.isna().to_numpy()] = None
            df[col.name] = dates
    return df


def read_tables(
    url_or_engine: str | Engine,
    site: str | None = None,
    tables: Iterable[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Live rows of the clinical `tables` (default: all, in dependency order) as DataFrames
    with every model column. Raises InputError when the registry schema is missing; driver
    and SQLAlchemy errors propagate."""
    names = list(ENTITIES if tables is None else tables)
    for n in names:
        _table(n)  # KeyError for anything but a clinical table
    engine = connect(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    require_schema(engine)
    frames: dict[str, pd.DataFrame] = {}
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():  # one snapshot for all tables
            for name in names:
                q = live_rows(name, site)
                if engine.dialect.name == "sqlite":
                    # the raw sqlite3 cursor is ~3x faster than SQLAlchemy's result rows
                    c = q.compile(dialect=engine.dialect)
                    params = tuple(c.params[k] for k in c.positiontup or ())
                    raw = conn.connection.dbapi_connection
                    df = pd.read_sql_query(str(c), raw, params=params)  # type: ignore[call-overload]
                else:
                    df = pd.read_sql_query(q, conn)
                frames[name] = _typed(name, df)
    return frames
