"""Shared CLI helpers: JSON output, progress bars."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True)
out_console = Console()


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


class RichProgress:
    """Implements `hepablate.core.progress.Progress` with a rich bar on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled and err_console.is_terminal
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def start(self, task: str, total: float | None = None) -> None:
        if not self._enabled:
            return
        self.finish()
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}" if total else ""),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(task, total=total)

    def advance(self, amount: float = 1.0) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, amount)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None


def command_line(default: str) -> str:
    """The command as typed, for provenance."""
    return "hepablate " + " ".join(sys.argv[1:]) if len(sys.argv) > 1 else f"hepablate {default}"


def echo_result(ev: Any, out: Any, json_out: bool) -> None:
    """The one-line (or --json) summary of an evaluated plan that `plan` and `simulate` print."""
    import typer

    if json_out:
        print_json({"out": str(out), **ev.summary()})
        return
    p = ev.plan
    m = p.metrics
    cov = "-" if m.target_coverage is None else f"{100 * m.target_coverage:.1f} %"
    typer.echo(
        f"{p.status}: target coverage {cov}, min margin {m.min_margin_mm} mm, "
        f"zone {m.ablation_volume_ml} ml, {ev.delivery_text()}, {len(p.warnings)} warning(s); "
        f"wrote {out}/plan.json" + (f" ({p.status_reason})" if p.status_reason else "")
    )
