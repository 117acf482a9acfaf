"""Checks of the registry beyond the audit trail's own hash chain.

- `replay`: rebuild every clinical record from the trail (create = the whole record, update
  = the changed fields, delete = `deleted_at` and the version) and compare with the tables.
  A row edited, inserted or removed directly in a clinical table (bypassing the service and
  therefore the trail) is reported with its table, id and field.
- Head anchoring: `verify(..., expect_head=H)` requires `H`, a head hash published earlier
  (printed by `registry export` and `registry verify`, written into every export as
  `audit_head.json`), to be a row of the chain. Removing the newest rows - which leaves a
  valid but shorter chain - removes `H` and is reported.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, Engine, Numeric, select

from hepablate.registry.models import ENTITIES, AuditEntry
from hepablate.registry.validation import user_columns

#: Fields compared besides the user columns (timestamps are not all recorded in the trail).
_COMPARED_SYSTEM = ("site", "version")


@dataclass(frozen=True)
class Mismatch:
    table: str
    record_id: int
    field: str | None
    message: str

    def __str__(self) -> str:
        fld = f" field '{self.field}'" if self.field else ""
        return f"{self.table} record {self.record_id}{fld}: {self.message}"


def _normal(col: Any, value: Any) -> Any:
    """A value from the database or from the trail's JSON, in one comparable form."""
    if value is None:
        return None
    t = getattr(col, "type", None)
    if isinstance(t, Numeric):
        return float(Decimal(str(value)))
    if isinstance(t, Date) or isinstance(value, date | datetime):
        return value.isoformat() if isinstance(value, date | datetime) else str(value)
    if isinstance(t, Boolean):
        return bool(value)
    return value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return bool(a == b)


def _trail_state(engine: Engine) -> dict[str, dict[int, dict[str, Any]]]:
    state: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in ENTITIES}
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=5000).execute(
            select(
                AuditEntry.table_name,
                AuditEntry.record_id,
                AuditEntry.action,
                AuditEntry.new_values,
            ).order_by(AuditEntry.id)
        )
        for table, rid, action, new_json in rows:
            if table not in state:
                continue  # users and other non-clinical tables
            new = json.loads(new_json) if new_json else {}
            if action == "create":
                state[table][rid] = dict(new)
            else:
                state[table].setdefault(rid, {}).update(new)
    return state


def replay(engine: Engine, limit: int = 20) -> list[Mismatch]:
    """Differences between the clinical tables and the records the audit trail implies
    (at most `limit`)."""
    state = _trail_state(engine)
    out: list[Mismatch] = []

    def add(m: Mismatch) -> bool:
        out.append(m)
        return len(out) >= limit

    for table, model in ENTITIES.items():
        t = model.__table__  # type: ignore[attr-defined]
        cols = {c.name: c for c in user_columns(table)} | {n: t.c[n] for n in _COMPARED_SYSTEM}
        expected = state[table]
        with engine.connect() as conn:
            for row in conn.execute(select(t).order_by(t.c.id)).mappings():
                rid = int(row["id"])
                exp = expected.pop(rid, None)
                if exp is None:
                    if add(
                        Mismatch(table, rid, None, "not in the audit trail (inserted directly)")
                    ):
                        return out
                    continue
                for name, col in cols.items():
                    a, b = _normal(col, row[name]), _normal(col, exp.get(name))
                    if not _equal(a, b):
                        msg = f"is {a!r} in the table, {b!r} by the audit trail (edited directly)"
                        if add(Mismatch(table, rid, name, msg)):
                            return out
                if (row["deleted_at"] is None) != (exp.get("deleted_at") is None):
                    state_word = "deleted" if row["deleted_at"] is not None else "live"
                    msg = f"is {state_word} in the table, not by the audit trail"
                    if add(Mismatch(table, rid, "deleted_at", msg)):
                        return out
        for rid in sorted(expected):
            msg = "in the audit trail but missing from the table (removed directly)"
            if add(Mismatch(table, rid, None, msg)):
                return out
    return out


def chain_hashes(engine: Engine) -> Iterator[str]:
    with engine.connect() as conn:
        yield from conn.execution_options(yield_per=5000).scalars(
            select(AuditEntry.row_hash).order_by(AuditEntry.id)
        )
