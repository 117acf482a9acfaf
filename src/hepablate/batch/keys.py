"""Result keys: a finished task is never recomputed.

A task's key is the SHA-256 of what its result depends on: the hepablate version, the mode
(plan/evaluate), the modality, the full planner options (defaults filled in), the single tissue
and device values, and the SHA-256 of every input file (the case directory's files, the plan
file, the tissue, device and criteria override files). Anything else (the row's id, its
position, the table's name) does not change the key, so reordering or extending a table, or
running a sweep again with more grid values, recomputes only the new combinations.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hepablate.batch.table import Task


@lru_cache(maxsize=4096)
def _file_hash(path: str, mtime_ns: int, size: int) -> str:
    from hepablate.core.provenance import file_sha256

    return file_sha256(path)


def input_hash(path: str | None) -> str | None:
    """SHA-256 of a file or of a directory's files; None for no file. Remembered per
    (path, modification time, size) within one process."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file())
        stamp = hash(tuple((str(q), q.stat().st_mtime_ns, q.stat().st_size) for q in files))
        return _file_hash(str(p), stamp, len(files))
    st = p.stat()
    return _file_hash(str(p), st.st_mtime_ns, st.st_size)


def task_key(task: Task) -> str:
    """The task's result key (see the module docstring); 64 hex digits."""
    from hepablate import __version__

    doc = {
        "hepablate_version": __version__,
        "mode": task.mode,
        "modality": task.modality,
        "options": task.options,
        "tissue_values": task.tissue_values,
        "device_values": task.device_values,
        "case": input_hash(task.case),
        "plan": input_hash(task.plan),
        "tissues": input_hash(task.tissues),
        "devices": input_hash(task.devices),
        "criteria": input_hash(task.criteria),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
