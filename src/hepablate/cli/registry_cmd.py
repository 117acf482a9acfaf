"""`hepablate registry ...`: create, fill, export and verify the outcomes registry."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import typer

from hepablate.cli._common import out_console, print_json

_DB_HELP = "Database URL (sqlite:///PATH or postgresql://...); default $HEPABLATE_DB or ~/.local/share/hepablate/registry.db."


def _engine(db: str | None):
    from hepablate.registry.db import connect, require_schema

    engine = connect(db)
    require_schema(engine)
    return engine


def register(app: typer.Typer) -> None:
    reg = typer.Typer(
        help="The outcomes registry: init, import, export, verify, users.", no_args_is_help=True
    )

    @reg.command("init")
    def init(db: str = typer.Option(None, "--db", help=_DB_HELP)) -> None:
        """Create the registry schema, or upgrade it to the latest migration."""
        from hepablate.registry.db import default_url, migrate

        rev = migrate(db)
        out_console.print(f"registry schema at revision {rev} in {db or default_url()}")

    @reg.command("user-add")
    def user_add(
        username: str = typer.Argument(..., help="Login name."),
        role: str = typer.Option(..., "--role", help="administrator|clinician|data_entry|auditor"),
        site: str = typer.Option(None, "--site", help="Site code; omit for every site."),
        password_stdin: bool = typer.Option(
            False, "--password-stdin", help="Read the password from standard input."
        ),
        db: str = typer.Option(None, "--db", help=_DB_HELP),
    ) -> None:
        """Add a user (password hashed with Argon2id)."""
        from hepablate.registry.auth import add_user
        from hepablate.registry.db import write_transaction

        engine = _engine(db)
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        from hepablate.registry import audit

        with write_transaction(engine) as conn:
            uid = add_user(conn, username, password, role, site)
            audit.append(
                conn,
                f"cli:{getpass.getuser()}",
                [
                    audit.Change(
                        "create",
                        "users",
                        uid,
                        site,
                        None,
                        {"username": username, "role": role, "site": site},
                    )
                ],
            )
        out_console.print(f"user {username} (id {uid}, role {role}, site {site or 'all'})")

    @reg.command("import")
    def import_(
        directory: Path = typer.Argument(..., help="Directory of <entity>.csv files."),
        site: str = typer.Option(None, "--site", help="Site of patients rows without one."),
        actor: str = typer.Option(None, "--as", help="Name recorded in the audit trail."),
        db: str = typer.Option(None, "--db", help=_DB_HELP),
        json_out: bool = typer.Option(False, "--json", help="Print counts as JSON."),
    ) -> None:
        """Import CSV files; any malformed row aborts the whole import (nothing written)."""
        from hepablate.registry.csvio import ImportFailed, import_dir

        engine = _engine(db)
        try:
            res = import_dir(
                engine, directory, actor or f"cli:{getpass.getuser()}", default_site=site
            )
        except ImportFailed as exc:
            for e in exc.errors[1:]:
                typer.echo(f"error: {e}", err=True)
            raise
        if json_out:
            print_json({"counts": res.counts, "audit_rows": res.audit_rows})
        else:
            out_console.print(
                f"imported {res.total} records: "
                + ", ".join(f"{k} {v}" for k, v in res.counts.items())
            )

    @reg.command("export")
    def export(
        out: Path = typer.Argument(..., help="Output directory."),
        site: str = typer.Option(None, "--site", help="Only this site's records."),
        pseudonymised: bool = typer.Option(
            False, "--pseudonymised", help="Research export without identifiers."
        ),
        dates: str = typer.Option(
            "days", "--dates", help="Pseudonymised dates: days (from first ablation) or shift."
        ),
        db: str = typer.Option(None, "--db", help=_DB_HELP),
    ) -> None:
        """Export live records as CSV (the import format), or a pseudonymised research set."""
        from hepablate.registry.csvio import AUDIT_HEAD_FILE, export_dir, export_pseudonymised

        engine = _engine(db)
        if pseudonymised:
            counts = export_pseudonymised(engine, out, site=site, dates=dates)
        else:
            counts = export_dir(engine, out, site=site)
        import json

        head = json.loads((out / AUDIT_HEAD_FILE).read_text())
        out_console.print(f"exported {sum(counts.values())} records to {out}")
        out_console.print(
            f"audit head {head['audit_head_hash']} ({head['audit_rows']} rows); keep it outside "
            f"the database and check with: hepablate registry verify --expect-head HASH"
        )

    @reg.command("verify")
    def verify(
        db: str = typer.Option(None, "--db", help=_DB_HELP),
        expect_head: str = typer.Option(
            None,
            "--expect-head",
            help="A head hash published earlier (export's audit_head.json, an earlier verify): "
            "it must still be in the chain (detects removal of the newest rows).",
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Recompute the audit trail's hash chain and replay it against the clinical tables;
        exit 1 at the first broken link, a missing expected head or a direct table edit."""
        import re

        from hepablate.errors import InputError
        from hepablate.registry.audit import verify as verify_chain

        if expect_head is not None and not re.fullmatch(r"[0-9a-f]{64}", expect_head):
            raise InputError("expected 64 lower-case hex digits", field="--expect-head")
        res = verify_chain(_engine(db), expect_head=expect_head)
        if json_out:
            print_json(res.to_dict())
        elif res.ok:
            out_console.print(
                f"audit trail intact: {res.rows_checked} rows, head {res.head_hash}; "
                "clinical tables match the trail"
                + (
                    f"; expected head found at row {res.expected_head_id}"
                    if expect_head is not None
                    else ""
                )
            )
        elif res.first_bad_id is not None:
            typer.echo(
                f"audit trail BROKEN at row {res.first_bad_id}: {res.reason} "
                f"({res.rows_checked} rows before it are intact)",
                err=True,
            )
        else:
            typer.echo(f"audit trail BROKEN: {res.reason}", err=True)
        if not res.ok:
            raise typer.Exit(1)

    @reg.command("dictionary")
    def dictionary(out: Path = typer.Argument(..., help="CSV file to write.")) -> None:
        """Write the REDCap-style data dictionary generated from the models."""
        from hepablate.registry.csvio import write_data_dictionary

        write_data_dictionary(out)
        out_console.print(f"wrote {out}")

    @reg.command("synthetic")
    def synthetic(
        patients: int = typer.Option(100, "--patients", help="Number of patients."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        db: str = typer.Option(
            ...,
            "--db",
            help="Database URL (required: synthetic data never go to the default registry).",
        ),
    ) -> None:
        """Fill a registry with deterministic synthetic (not clinical) data. Refuses a
        registry holding records the generator did not write."""
        from hepablate.registry.synthetic import generate

        _engine(db)
        res = generate(patients, seed, db)
        out_console.print(
            "synthetic registry: " + ", ".join(f"{k} {v}" for k, v in res.counts.items())
        )

    app.add_typer(reg, name="registry")
