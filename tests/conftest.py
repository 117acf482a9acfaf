"""Shared fixtures: small deterministic phantoms and a CLI runner."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hepablate.cli import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys):
    """Run `hepablate ARGS` in-process; returns exit code, stdout, stderr."""

    def _run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _run
