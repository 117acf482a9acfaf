"""Alembic environment: run programmatically by `hepablate.registry.db.migrate`, which passes
an open connection in `config.attributes['connection']`."""

from alembic import context

from hepablate.registry.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the programmatic path is supported
    raise RuntimeError("run migrations through hepablate.registry.db.migrate(url)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
