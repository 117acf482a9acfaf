"""`hepablate audit report`: the outcomes and safety audit of the registry (HTML, PDF, JSON)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import typer

from hepablate.cli._common import RichProgress, out_console, print_json

_DB_HELP = (
    "Registry database URL (sqlite:///PATH or postgresql://...); default $HEPABLATE_DB or "
    "~/.local/share/hepablate/registry.db."
)


def register(app: typer.Typer) -> None:
    audit_app = typer.Typer(
        help="Audit outcomes and safety from the registry.", no_args_is_help=True
    )

    @audit_app.command("report")
    def report(
        out: Path = typer.Option(..., "--out", help="Output directory (audit.html/.pdf/.json)."),
        db: str = typer.Option(None, "--db", help=_DB_HELP),
        site: str = typer.Option(None, "--site", help="Audit one site only."),
        ci_method: str = typer.Option(
            "log-log", "--ci-method", help="Kaplan-Meier CI scale: log-log or log."
        ),
        schedule: Path = typer.Option(
            None,
            "--schedule",
            help="YAML follow-up schedule: months: [1, 3, 6, 12], tolerance_days: 30.",
        ),
        as_of: str = typer.Option(
            None,
            "--as-of",
            help="Date (YYYY-MM-DD) at which follow-ups are counted as overdue; default today.",
        ),
        json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Write audit.html, audit.pdf and audit.json for the registry at --db into --out."""
        from hepablate.errors import InputError
        from hepablate.outcomes.audit import AuditSettings, FollowupSchedule, load_schedule
        from hepablate.outcomes.audit_render import write_audit_report
        from hepablate.registry.db import default_url

        methods: dict[str, Literal["log", "log-log"]] = {"log": "log", "log-log": "log-log"}
        if ci_method not in methods:
            raise InputError(f"expected 'log-log' or 'log', got {ci_method!r}", field="--ci-method")
        when = None
        if as_of is not None:
            try:
                when = date.fromisoformat(as_of)
            except ValueError as exc:
                raise InputError(
                    f"expected a date YYYY-MM-DD, got {as_of!r}", field="--as-of"
                ) from exc
        sched = load_schedule(schedule) if schedule is not None else FollowupSchedule()
        settings = AuditSettings(
            site=site,
            ci_method=methods[ci_method],
            schedule=sched,
            as_of=when,
        )
        rep = write_audit_report(db or default_url(), out, settings, RichProgress())
        o = rep["groups"]["overall"]
        summary = {
            "out": str(out),
            "files": ["audit.html", "audit.pdf", "audit.json"],
            "site": site,
            "patients": o["n_patients"],
            "tumours": o["n_tumours"],
            "sessions": o["n_sessions"],
            "complete_ablation": o["efficacy"]["complete_ablation"],
            "os_median_days": o["survival"]["os"]["median_days"] if o["survival"]["os"] else None,
            "survival_ci_method": ci_method,
        }
        if json_out:
            print_json(summary)
            return
        ca = o["efficacy"]["complete_ablation"]
        out_console.print(
            f"audit of {o['n_patients']} patients, {o['n_tumours']} tumours, "
            f"{o['n_sessions']} sessions ({site or 'all sites'}) written to {out}: "
            f"complete ablation {ca['events']}/{ca['n']}"
        )

    app.add_typer(audit_app, name="audit")
