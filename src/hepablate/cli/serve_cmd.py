"""`hepablate serve`: the registry HTTP API (FastAPI; OpenAPI docs at /docs)."""

from __future__ import annotations

import os

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        db: str = typer.Option(None, "--db", help="Database URL (default $HEPABLATE_DB)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
        port: int = typer.Option(8000, "--port", help="TCP port."),
        workers: int = typer.Option(1, "--workers", min=1, help="Server processes."),
    ) -> None:
        """Serve the registry API; every endpoint needs a bearer token (POST /auth/token)."""
        import uvicorn

        from hepablate.api import create_app
        from hepablate.registry.db import connect, default_url, require_schema

        require_schema(connect(db))
        if workers == 1:
            uvicorn.run(create_app(db), host=host, port=port, log_level="warning", access_log=False)
            return
        # Worker processes build their own app from the URL passed in the environment.
        os.environ["HEPABLATE_SERVE_DB"] = db or default_url()
        uvicorn.run(
            "hepablate.api.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
