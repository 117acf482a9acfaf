"""Append-only, hash-chained audit trail of every create, change and delete.

Each row's `row_hash` is SHA-256 over `prev_hash` followed by the canonical JSON (sorted keys,
no spaces, UTF-8) of its id, time, actor, action, table, record id, site and old/new values;
the first row chains to 64 zeros. Changing, inserting or deleting any row breaks every later
link; `verify` recomputes the chain and reports the first broken one. Removing the newest
rows (truncating the tail) is not detectable by the chain alone: the head hash is therefore
published outside the database (printed by `registry export` and `registry verify`, written
into every export as `audit_head.json`) and `verify(expect_head=...)` checks that a published
head is still in the chain. `verify` also replays the trail against the clinical tables
(`hepablate.registry.integrity`), which detects a direct edit of a table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from hepablate.registry.db import lock_audit_chain
from hepablate.registry.models import AuditEntry, utcnow

GENESIS = "0" * 64


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def canonical_json(obj: Any) -> str:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def _values_json(values: Mapping[str, Any] | None) -> str | None:
    return None if values is None else canonical_json(dict(values))


def row_hash(prev_hash: str, row: Mapping[Any, Any]) -> str:
    payload = {
        "id": row["id"],
        "at": row["at"].isoformat(timespec="microseconds"),
        "actor": row["actor"],
        "action": row["action"],
        "table_name": row["table_name"],
        "record_id": row["record_id"],
        "site": row["site"],
        "old_values": row["old_values"],
        "new_values": row["new_values"],
    }
    return hashlib.sha256((prev_hash + canonical_json(payload)).encode()).hexdigest()


@dataclass(frozen=True)
class Change:
    action: str  # create | update | delete
    table_name: str
    record_id: int
    site: str | None
    old_values: Mapping[str, Any] | None
    new_values: Mapping[str, Any] | None


def append(conn: Connection, actor: str, changes: Iterable[Change]) -> int:
    """Append `changes` to the chain inside the caller's transaction; returns rows written.

    Call after the data change itself, in the same transaction, so both commit or neither.
    """
    changes = list(changes)
    if not changes:
        return 0
    lock_audit_chain(conn)
    head = conn.execute(
        select(AuditEntry.id, AuditEntry.row_hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    next_id, prev = (head.id + 1, head.row_hash) if head else (1, GENESIS)
    at = utcnow()
    rows = []
    for ch in changes:
        row = {
            "id": next_id,
            "at": at,
            "actor": actor,
            "action": ch.action,
            "table_name": ch.table_name,
            "record_id": ch.record_id,
            "site": ch.site,
            "old_values": _values_json(ch.old_values),
            "new_values": _values_json(ch.new_values),
        }
        row["prev_hash"] = prev
        row["row_hash"] = prev = row_hash(prev, row)
        rows.append(row)
        next_id += 1
    # Explicit ids keep the chain order equal to id order on every backend.
    for i in range(0, len(rows), 5000):
        conn.execute(insert(AuditEntry), rows[i : i + 5000])
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('audit_trail', 'id'), "
            "(SELECT MAX(id) FROM audit_trail))"
        )
    return len(rows)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows_checked: int
    head_hash: str
    first_bad_id: int | None = None
    reason: str | None = None
    #: id of the row whose hash is the expected head (`verify(expect_head=...)`), if found.
    expected_head_id: int | None = None
    #: clinical-table rows that differ from what the trail says (see `integrity.replay`).
    table_mismatches: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows_checked": self.rows_checked,
            "head_hash": self.head_hash,
            "first_bad_id": self.first_bad_id,
            "reason": self.reason,
            "expected_head_id": self.expected_head_id,
            "table_mismatches": list(self.table_mismatches),
        }


def verify(
    engine: Engine, *, expect_head: str | None = None, check_tables: bool = True
) -> VerifyResult:
    """Recompute the chain from the first row; report the first row whose link is broken.

    `expect_head`: a head hash published earlier; it must be the hash of a row of the chain
    (or the genesis value), else rows were removed from the end or the trail was rewritten.
    `check_tables`: replay the trail and compare with the clinical tables
    (`hepablate.registry.integrity.replay`), which detects direct table edits."""
    from hepablate.registry.integrity import replay

    prev = GENESIS
    expected_id = None
    head_id: int | None = 0 if expect_head == GENESIS else None
    n = 0
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(
            select(AuditEntry.__table__).order_by(AuditEntry.id)
        )
        for row in result.mappings():
            if expected_id is not None and row["id"] != expected_id:
                return VerifyResult(
                    False,
                    n,
                    prev,
                    row["id"],
                    f"rows missing before id {row['id']} (expected {expected_id})",
                )
            if row["prev_hash"] != prev:
                return VerifyResult(
                    False, n, prev, row["id"], "prev_hash does not match the previous row's hash"
                )
            if row_hash(prev, row) != row["row_hash"]:
                return VerifyResult(
                    False, n, prev, row["id"], "row content does not match its hash (changed)"
                )
            prev = row["row_hash"]
            if prev == expect_head:
                head_id = row["id"]
            expected_id = row["id"] + 1
            n += 1
    if expect_head is not None and head_id is None:
        return VerifyResult(
            False,
            n,
            prev,
            None,
            f"the expected head {expect_head} is not in the audit trail (its newest rows were "
            "removed, or the trail was rewritten)",
        )
    if check_tables:
        mismatches = replay(engine)
        if mismatches:
            return VerifyResult(
                False,
                n,
                prev,
                None,
                f"clinical tables differ from the audit trail: {mismatches[0]}"
                + (f" (and {len(mismatches) - 1} more)" if len(mismatches) > 1 else ""),
                head_id,
                tuple(str(m) for m in mismatches),
            )
    return VerifyResult(True, n, prev, expected_head_id=head_id)


def head(engine: Engine) -> tuple[str, int]:
    """The newest row's hash (GENESIS for an empty trail) and the number of rows."""
    with engine.connect() as conn:
        row = conn.execute(
            select(AuditEntry.id, AuditEntry.row_hash).order_by(AuditEntry.id.desc()).limit(1)
        ).first()
    return (row.row_hash, int(row.id)) if row else (GENESIS, 0)
