"""The results store of a batch output folder, and its results table.

    OUT/results/KEY.json     one record per task, written atomically as each task ends
    OUT/results.parquet      the results table (one row per table row), and the same as
    OUT/results.csv          CSV
    OUT/figures/*.png        summary figures (hepablate.batch.figures)

A record whose state is ``done`` is final: a later run with the same key (same inputs, options
and hepablate version; hepablate.batch.keys) reads it instead of recomputing. A ``failed``
record is kept for the table but run again by the next run.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from hepablate.batch.table import Task


class ResultStore:
    def __init__(self, out_dir: str | Path) -> None:
        self.root = Path(out_dir)
        self.dir = self.root / "results"

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) and rec.get("key") == key else None

    def is_done(self, key: str) -> bool:
        rec = self.get(key)
        return rec is not None and rec.get("state") == "done"

    def put(self, record: dict[str, Any]) -> Path:
        """Write a record atomically (a reader sees the old file or the new one, never half).
        A ``done`` record is never replaced by a failed one."""
        self.dir.mkdir(parents=True, exist_ok=True)
        key = record["key"]
        if record.get("state") != "done" and self.is_done(key):
            return self.path(key)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path(key)


def _flat(prefix: str, d: dict[str, Any], out: dict[str, Any]) -> None:
    for k, v in d.items():
        if isinstance(v, dict):
            _flat(f"{prefix}{k}.", v, out)
        else:
            out[f"{prefix}{k}"] = v


def _scalar(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return json.dumps(v, default=str)


def table_row(task: Task, record: dict[str, Any] | None) -> dict[str, Any]:
    """One row of the results table: the task, its given values, the plan's status, metrics,
    criteria, warnings and provenance."""
    row: dict[str, Any] = {
        "row": task.row,
        "id": task.id,
        "key": task.key,
        "mode": task.mode,
        "modality": task.modality,
        "case": task.case,
        "case_name": Path(task.case).name,
        "plan_file": task.plan,
        "tissues_file": task.tissues,
        "devices_file": task.devices,
        "criteria_file": task.criteria,
    }
    row.update({k: _scalar(v) for k, v in task.given.items()})
    row["options_json"] = json.dumps(task.options, sort_keys=True)
    if record is None:
        row.update(state="missing", error="not run")
        return row
    row.update(
        state=record.get("state"),
        error=record.get("error"),
        host=record.get("host"),
        wall_s=record.get("wall_s"),
    )
    if record.get("state") != "done" or not record.get("plan"):
        return row
    plan = json.loads(record["plan"])
    row["status"] = plan.get("status")
    row["status_reason"] = plan.get("status_reason")
    metrics: dict[str, Any] = {}
    _flat("", {k: v for k, v in (plan.get("metrics") or {}).items() if k != "extra"}, metrics)
    row.update({k: _scalar(v) for k, v in metrics.items()})
    row.update(
        {f"extra.{k}": _scalar(v) for k, v in (plan.get("metrics") or {}).get("extra", {}).items()}
    )
    criteria = plan.get("criteria") or []
    row["criteria_failed"] = ",".join(c["code"] for c in criteria if not c.get("passed", True))
    row["warnings"] = ",".join(w["code"] for w in plan.get("warnings") or [])
    row["n_probes"] = len(plan.get("probes") or [])
    row["n_fibres"] = len(plan.get("fibres") or [])
    row["runtime_s"] = plan.get("runtime_s")
    prov = plan.get("provenance") or {}
    row["provenance.hepablate_version"] = prov.get("hepablate_version")
    row["provenance.created_utc"] = prov.get("created_utc")
    row["provenance.command"] = prov.get("command")
    row["provenance.input_hashes"] = json.dumps(prov.get("input_hashes") or {}, sort_keys=True)
    row["provenance.parameters"] = json.dumps(prov.get("parameters") or [], default=str)
    return row


def results_frame(tasks: list[Task], store: ResultStore) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([table_row(t, store.get(t.key)) for t in tasks])


def write_table(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """results.parquet and results.csv, each written to a temporary name then renamed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.parquet", out / "results.csv"]
    tmp = [p.with_name(f".tmp-{p.name}") for p in paths]
    # Parquet needs one type per column: mixed columns (a sweep's values) are kept as text.
    pq = frame.copy()
    for col in pq.columns:
        kinds = {type(v) for v in pq[col] if v is not None and v == v}
        if len(kinds) > 1 and not kinds <= {int, float}:
            pq[col] = [None if v is None else str(v) for v in pq[col]]
    pq.to_parquet(tmp[0], index=False)
    frame.to_csv(tmp[1], index=False)
    for t, p in zip(tmp, paths, strict=True):
        os.replace(t, p)
    return paths
