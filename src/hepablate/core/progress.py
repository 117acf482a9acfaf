"""Progress reporting from long computations, without printing from engines.

Engines accept a `Progress`; the CLI passes one that drives a rich progress bar.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, task: str, total: float | None = None) -> None: ...

    def advance(self, amount: float = 1.0) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """A progress sink that ignores everything (the default in the API and tests)."""

    def start(self, task: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1.0) -> None:
        pass

    def finish(self) -> None:
        pass
