"""The `hepablate` command. Each sub-command lives in its own module exposing
`register(app)`; add a module name to `_COMMAND_MODULES` to add a command."""

from __future__ import annotations

import importlib
import sys

import typer

from hepablate import __version__
from hepablate.errors import HepablateError

_COMMAND_MODULES = [
    "hepablate.cli.audit_cmd",
    "hepablate.cli.batch_cmd",
    "hepablate.cli.case_cmd",
    "hepablate.cli.phantom_cmd",
    "hepablate.cli.plan_cmd",
    "hepablate.cli.simulate_cmd",
    "hepablate.cli.registry_cmd",
    "hepablate.cli.serve_cmd",
]

app = typer.Typer(
    name="hepablate",
    help="Plan and audit image-guided percutaneous ablation (IRE, laser) of liver tumours.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hepablate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Plan and audit image-guided percutaneous ablation (IRE, laser) of liver tumours."""


for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=True)
    except HepablateError as exc:
        # One line whatever the message holds (a YAML excerpt, a library's message).
        typer.echo("error: " + " ".join(str(exc).split()), err=True)
        return exc.exit_code
    except SystemExit as exc:  # typer/click exit codes (0 on success, 2 on usage errors)
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    return 0


def _console_main() -> None:  # pragma: no cover
    sys.exit(main())
