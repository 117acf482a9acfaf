"""Shared CLI helpers: JSON output, progress bars."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True)
out_console = Console()


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


class RichProgress:
    """Implements `hepablate.core.progress.Progress` with a rich bar on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled and err_console.is_terminal
        self._bar: Progress | None = None
        self._task = None

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
