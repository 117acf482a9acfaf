"""Database access: URLs, engines (SQLite in WAL mode or PostgreSQL) and write transactions.

The default database is SQLite at `$HEPABLATE_DB` or `~/.local/share/hepablate/registry.db`.
`connect(url)` creates nothing; `hepablate registry init` (`migrate(url)`) creates or upgrades
the schema with the Alembic migrations shipped in `hepablate/registry/migrations`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError

from hepablate.errors import InputError

# Serialises appends to the hash chain on PostgreSQL (pg_advisory_xact_lock key).
_AUDIT_LOCK_KEY = 0x48455041  # "HEPA"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: The site whose clinical rows a PostgreSQL transaction may see and write (row-level
#: security, migration 0002): None outside `site_scope` and "" for all sites.
_SITE_SCOPE: ContextVar[str | None] = ContextVar("hepablate_site_scope", default=None)


@contextmanager
def site_scope(site: str | None) -> Iterator[None]:
    """Transactions begun inside see only `site`'s clinical rows on PostgreSQL (None: all
    sites). A second layer under the service's own site checks."""
    token = _SITE_SCOPE.set(site or "")
    try:
        yield
    finally:
        _SITE_SCOPE.reset(token)


def default_url() -> str:
    """`sqlite:///$HEPABLATE_DB`, else `sqlite:///~/.local/share/hepablate/registry.db`."""
    path = os.environ.get("HEPABLATE_DB") or str(
        Path.home() / ".local" / "share" / "hepablate" / "registry.db"
    )
    return "sqlite:///" + path


def _normalise(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


_ENGINES: dict[str, Engine] = {}


def connect(url: str | None = None) -> Engine:
    """Engine for `url` (default `default_url()`); creates no table. Cached per URL."""
    url = _normalise(url or default_url())
    if url in _ENGINES:
        return _ENGINES[url]
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            _configure_sqlite(engine)
        elif url.startswith("postgresql"):
            engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            _configure_postgres(engine)
        else:
            raise InputError(
                "expected a sqlite:/// or postgresql:// database URL", field="db", source=url
            )
    except ArgumentError as exc:
        raise InputError(f"not a database URL ({exc})", field="db") from exc
    _ENGINES[url] = engine
    return engine


def dispose(url: str) -> None:
    """Close and forget the cached engine of `url` (tests, dropped databases)."""
    engine = _ENGINES.pop(_normalise(url), None)
    if engine is not None:
        engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # We emit BEGIN ourselves so writers can take the lock up front (BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("hepablate_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _configure_postgres(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Transaction-local, so a pooled connection never carries a site into the next use.
        conn.exec_driver_sql(
            "SELECT set_config('hepablate.site', %s, true)", (_SITE_SCOPE.get() or "",)
        )


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from the start, so
    reads made to validate a change and to extend the audit chain cannot go stale."""
    with engine.connect() as conn:
        conn.execution_options(hepablate_write=True)
        with conn.begin():
            yield conn


def lock_audit_chain(conn: Connection) -> None:
    """Serialise audit-chain appends (PostgreSQL; SQLite writers are already serialised)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_KEY})


def _alembic_config(conn: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


def migrate(url: str | None = None, revision: str = "head") -> str:
    """Create or upgrade the schema to `revision`; seeds the four roles. Returns the revision."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = connect(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)
    from hepablate.registry.auth import ensure_roles

    with write_transaction(engine) as conn:
        ensure_roles(conn)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() or ""


def require_schema(engine: Engine) -> None:
    """Raise InputError when the registry tables are missing (run `registry init` first)."""
    if not inspect(engine).has_table("audit_trail"):
        raise InputError(
            "no registry schema in this database; run `hepablate registry init --db URL`",
            field="db",
            source=engine.url.render_as_string(hide_password=True),
        )
