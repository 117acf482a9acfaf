"""Provenance: what produced a result (version, time, command, input hashes, parameters).

One builder (`build_provenance`) for every caller: the planners, `evaluate`, `simulate`.
Timestamps are UTC in ISO 8601 with a `Z` suffix, to the second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from hepablate.core.units import unit_of

if TYPE_CHECKING:
    from hepablate.case.model import Case


class Parameter(BaseModel):
    """One value a result depended on, with its unit and where it came from."""

    model_config = ConfigDict(extra="forbid")
    name: str
    value: Any
    unit: str = ""
    source: str = ""


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hepablate_version: str
    created_utc: str
    command: str = ""
    input_hashes: dict[str, str] = Field(default_factory=dict)
    parameters: list[Parameter] = Field(default_factory=list)


def utc_now() -> str:
    """The current time as provenance writes it, e.g. ``2026-12-01T20:27:10Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative names and contents, sorted)."""
    h = hashlib.sha256()
    p = Path(path)
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(str(f.relative_to(p)).encode())
            h.update(f.read_bytes())
    else:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def case_input_files(case: Case) -> dict[str, Path]:
    """The files a case was read from (images, segmentations, case.yaml)."""
    files = {str(k): Path(v) for k, v in (case.source_files or {}).items()}
    if case.root is not None and (case.root / "case.yaml").exists():
        files["case.yaml"] = case.root / "case.yaml"
    return files


def table_parameters(prefix: str, entries: Iterable[tuple[str, Any]]) -> list[Parameter]:
    """Parameters from (name, Quantity) pairs of a data table (value, unit from the name's
    suffix, source)."""
    return [
        Parameter(name=f"{prefix}{k}", value=q.value, unit=unit_of(k), source=q.source)
        for k, q in entries
    ]


def build_provenance(
    *,
    command: str = "",
    inputs: Mapping[str, str | Path] | None = None,
    parameters: Iterable[Parameter] = (),
) -> Provenance:
    """A provenance record: this hepablate's version, the time now, the command, the SHA-256
    of each readable input file (unreadable ones are left out) and the parameters."""
    from hepablate import __version__

    hashes: dict[str, str] = {}
    for name, path in (inputs or {}).items():
        try:
            hashes[name] = file_sha256(path)
        except OSError:
            pass
    return Provenance(
        hepablate_version=__version__,
        created_utc=utc_now(),
        command=command,
        input_hashes=hashes,
        parameters=list(parameters),
    )
