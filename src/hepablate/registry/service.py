"""The one service layer through which records are created, changed and soft-deleted.

Every write checks the actor's role and site, validates the record, and appends the audit
rows in the same transaction (all or nothing). Updates and deletes carry the `version` the
client last read; the UPDATE only matches that version, so a concurrent edit raises
`Conflict` instead of silently overwriting.
"""

from __future__ import annotations

import builtins
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, insert, select, update

from hepablate.errors import InputError
from hepablate.registry import audit
from hepablate.registry.auth import (
    DELETE_ROLES,
    READ_ROLES,
    WRITE_ROLES,
    Actor,
    PermissionDenied,
    ensure_site,
    hash_nhs_number,
    nhs_key,
    nhs_number_valid,
)
from hepablate.registry.db import site_scope, write_transaction
from hepablate.registry.models import ENTITIES, PARENTS, utcnow
from hepablate.registry.validation import (
    DbLookup,
    ValidationError,
    check_record,
    coerce_record,
    user_columns,
)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_PAGE_SIZE = 500
DATE_COLUMN = {
    "patients": "mdt_date",
    "procedure_sessions": "procedure_date",
    "followups": "followup_date",
    "adverse_events": "onset_date",
}


class NotFound(Exception):
    """No live record with that id (HTTP 404)."""


class Conflict(Exception):
    """The record changed since the client read it, or children still refer to it (409)."""


def _table(name: str):  # type: ignore[no-untyped-def]
    if name not in ENTITIES:
        raise NotFound(f"no entity '{name}'")
    return ENTITIES[name].__table__


def prepare_identifiers(table: str, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Turn a raw `nhs_number` into its keyed hash (the raw number is never stored)."""
    if table != "patients":
        return raw
    raw = dict(raw)
    nhs = raw.pop("nhs_number", None)
    if isinstance(nhs, str) and nhs.strip() == "":
        nhs = None
    if nhs is not None:
        if raw.get("nhs_number_hash"):
            raise ValidationError(where, "nhs_number", "give nhs_number or nhs_number_hash")
        if not nhs_number_valid(str(nhs)):
            raise ValidationError(
                where, "nhs_number", "not a valid NHS number (10 digits, Modulus 11 check digit)"
            )
        try:
            key = nhs_key()
        except InputError:
            raise ValidationError(
                where, "nhs_number", "set HEPABLATE_NHS_KEY (>= 16 characters) to store NHS numbers"
            ) from None
        raw["nhs_number_hash"] = hash_nhs_number(str(nhs), key)
    h = raw.get("nhs_number_hash")
    if h not in (None, "") and not _HEX64.match(str(h)):
        raise ValidationError(where, "nhs_number_hash", "expected 64 lower-case hex digits")
    return raw


def row_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    return dict(row)


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


_F = TypeVar("_F", bound=Callable[..., Any])


def _scoped(method: _F) -> _F:
    """Run a `Registry` method inside `site_scope(actor.site)`: on PostgreSQL, row-level
    security then hides and protects other sites' rows even if a check here were missed."""

    @functools.wraps(method)
    def wrapper(self: Registry, *args: Any, **kwargs: Any) -> Any:
        with site_scope(self.actor.site):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Registry:
    """Record operations on behalf of `actor`."""

    def __init__(self, engine: Engine, actor: Actor):
        self.engine = engine
        self.actor = actor

    def _refuse_hidden(self, table: str, record_id: int, what: str, deleted_too: bool) -> None:
        """A record that row-level security hid (PostgreSQL) is refused as on SQLite: 403
        when it exists at another site (the site, not the content, is read here)."""
        if self.actor.site is None or self.engine.dialect.name != "postgresql":
            return
        t = _table(table)
        q = select(t.c.site).where(t.c.id == record_id)
        if not deleted_too:
            q = q.where(t.c.deleted_at.is_(None))
        with site_scope(None), self.engine.connect() as conn:
            site = conn.scalar(q)
        if site is not None:
            self.actor.require_site(site, what)

    # --- reads -------------------------------------------------------------------------
    @_scoped
    def get(self, table: str, record_id: int, *, include_deleted: bool = False) -> dict[str, Any]:
        self.actor.require(READ_ROLES, "read records")
        t = _table(table)
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == record_id)).mappings().first()
        if row is None:
            self._refuse_hidden(table, record_id, "read records of", include_deleted)
        if row is None or (row["deleted_at"] is not None and not include_deleted):
            raise NotFound(f"{table} record {record_id} not found")
        self.actor.require_site(row["site"], "read records of")
        return row_dict(row)

    @_scoped
    def list(
        self,
        table: str,
        *,
        filters: Mapping[str, Any] | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        page: int = 1,
        page_size: int = 50,
        include_deleted: bool = False,
    ) -> Page:
        self.actor.require(READ_ROLES, "read records")
        t = _table(table)
        page = max(1, page)
        page_size = min(max(1, page_size), MAX_PAGE_SIZE)
        conds = []
        if not include_deleted:
            conds.append(t.c.deleted_at.is_(None))
        if self.actor.site is not None:
            conds.append(t.c.site == self.actor.site)
        for k, v in (filters or {}).items():
            if v is None:
                continue
            if k not in t.c:
                raise ValidationError(table, k, "no such field to filter on")
            conds.append(t.c[k] == v)
        dcol = DATE_COLUMN.get(table)
        if dcol is not None and date_from is not None:
            conds.append(t.c[dcol] >= date_from)
        if dcol is not None and date_to is not None:
            conds.append(t.c[dcol] <= date_to)
        with self.engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(t).where(*conds)) or 0
            rows = (
                conn.execute(
                    select(t)
                    .where(*conds)
                    .order_by(t.c.id)
                    .offset((page - 1) * page_size)
                    .limit(page_size)
                )
                .mappings()
                .all()
            )
        return Page([row_dict(r) for r in rows], total, page, page_size)

    # --- writes ------------------------------------------------------------------------
    def _site_for_new(
        self, conn: Connection, table: str, raw: Mapping[str, Any], where: str
    ) -> str:
        requested = raw.get("site")
        if table == "patients":
            site = requested or self.actor.site
            if not site:
                raise ValidationError(where, "site", "required (this user belongs to no site)")
        else:
            lookup = DbLookup(conn)
            site = None
            for f, parent_table in PARENTS[table].items():
                if raw.get(f) in (None, ""):
                    continue
                try:
                    pid = int(raw[f])
                except (TypeError, ValueError):
                    continue  # coerce_record reports the bad value
                parent = lookup.get(parent_table, pid)
                if parent is None:
                    self._refuse_hidden(parent_table, pid, "write records of", False)
                    raise ValidationError(where, f, f"no live {parent_table} record {pid}")
                site = parent["site"]
                break
            site = site or requested or self.actor.site
            if not site:
                raise ValidationError(where, "site", "cannot tell the site of this record")
        self.actor.require_site(site, "write records of")
        return str(site)

    @_scoped
    def create(self, table: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        self.actor.require(WRITE_ROLES, "create records")
        t = _table(table)
        where = f"{table} (new record)"
        with write_transaction(self.engine) as conn:
            raw = prepare_identifiers(table, dict(raw), where)
            site = self._site_for_new(conn, table, raw, where)
            rec = coerce_record(table, {k: v for k, v in raw.items() if k != "site"}, where)
            rec["site"] = site
            check_record(table, rec, DbLookup(conn), where)
            if table == "patients":
                self._unique_code(conn, rec, where)
                ensure_site(conn, site)
            now = utcnow()
            rec.update(version=1, created_at=now, updated_at=now, deleted_at=None)
            new_id = conn.execute(insert(t).values(**rec).returning(t.c.id)).scalar_one()
            rec["id"] = new_id
            changes = [audit.Change("create", table, new_id, site, None, rec)]
            if table == "procedure_sessions":
                changes += self._refresh_followup_days(conn, rec["patient_id"], where)
            audit.append(conn, self.actor.name, changes)
            return rec

    @staticmethod
    def _unique_code(conn: Connection, rec: Mapping[str, Any], where: str) -> None:
        t = _table("patients")
        clash = conn.scalar(
            select(t.c.id).where(t.c.site == rec["site"], t.c.patient_code == rec["patient_code"])
        )
        if clash is not None:
            raise ValidationError(
                where,
                "patient_code",
                f"'{rec['patient_code']}' already exists at site {rec['site']} (record {clash})",
            )

    def _load_for_write(
        self, conn: Connection, table: str, record_id: int, expected_version: int, what: str
    ) -> dict[str, Any]:
        t = _table(table)
        row = conn.execute(select(t).where(t.c.id == record_id)).mappings().first()
        if row is None:
            self._refuse_hidden(table, record_id, what, False)
        if row is None or row["deleted_at"] is not None:
            raise NotFound(f"{table} record {record_id} not found")
        self.actor.require_site(row["site"], what)
        if row["version"] != expected_version:
            raise Conflict(
                f"{table} record {record_id} is at version {row['version']}, not "
                f"{expected_version}: it was changed by someone else; reload and retry"
            )
        return row_dict(row)

    def _guarded_update(
        self,
        conn: Connection,
        table: str,
        record_id: int,
        expected_version: int,
        values: dict[str, Any],
    ) -> None:
        t = _table(table)
        res = conn.execute(
            update(t)
            .where(t.c.id == record_id, t.c.version == expected_version, t.c.deleted_at.is_(None))
            .values(**values, version=expected_version + 1)
        )
        if res.rowcount != 1:
            raise Conflict(f"{table} record {record_id} was changed concurrently; reload and retry")

    @_scoped
    def update(
        self, table: str, record_id: int, raw: Mapping[str, Any], expected_version: int
    ) -> dict[str, Any]:
        self.actor.require(WRITE_ROLES, "change records")
        where = f"{table} record {record_id}"
        if "site" in raw:
            raise ValidationError(where, "site", "cannot be changed")
        with write_transaction(self.engine) as conn:
            old = self._load_for_write(
                conn, table, record_id, expected_version, "change records of"
            )
            raw = prepare_identifiers(table, dict(raw), where)
            changes_in = coerce_record(table, raw, where, partial=True)
            rec = {**old, **changes_in}
            check_record(table, rec, DbLookup(conn), where)
            if table == "patients" and rec["patient_code"] != old["patient_code"]:
                self._unique_code(conn, rec, where)
            diff = {
                k: rec[k]
                for k in rec
                if k in old and rec[k] != old[k] and k not in ("version", "updated_at")
            }
            if not diff:
                return old
            diff["updated_at"] = utcnow()
            self._guarded_update(conn, table, record_id, expected_version, diff)
            new = {**old, **diff, "version": expected_version + 1}
            changes = [
                audit.Change(
                    "update",
                    table,
                    record_id,
                    old["site"],
                    {k: old[k] for k in diff} | {"version": expected_version},
                    diff | {"version": expected_version + 1},
                )
            ]
            if table == "procedure_sessions":
                for pid in {old["patient_id"], new["patient_id"]}:
                    changes += self._refresh_followup_days(conn, pid, where)
            audit.append(conn, self.actor.name, changes)
            return new

    @_scoped
    def delete(self, table: str, record_id: int, expected_version: int) -> dict[str, Any]:
        self.actor.require(DELETE_ROLES, "delete records")
        where = f"{table} record {record_id}"
        with write_transaction(self.engine) as conn:
            old = self._load_for_write(
                conn, table, record_id, expected_version, "delete records of"
            )
            for child, fks in PARENTS.items():
                for fk, parent in fks.items():
                    if parent != table:
                        continue
                    ct = _table(child)
                    n = conn.scalar(
                        select(func.count())
                        .select_from(ct)
                        .where(ct.c[fk] == record_id, ct.c.deleted_at.is_(None))
                    )
                    if n:
                        raise Conflict(
                            f"{where} still has {n} live {child} record(s); delete those first"
                        )
            now = utcnow()
            self._guarded_update(
                conn, table, record_id, expected_version, {"deleted_at": now, "updated_at": now}
            )
            changes = [
                audit.Change(
                    "delete",
                    table,
                    record_id,
                    old["site"],
                    old,
                    {"deleted_at": now, "version": expected_version + 1},
                )
            ]
            if table == "procedure_sessions":
                changes += self._refresh_followup_days(conn, old["patient_id"], where)
            audit.append(conn, self.actor.name, changes)
            return {**old, "deleted_at": now, "version": expected_version + 1}

    def _refresh_followup_days(
        self, conn: Connection, patient_id: int, where: str
    ) -> builtins.list[audit.Change]:
        """Keep the derived `days_after_first_ablation` right after a session changes."""
        lookup = DbLookup(conn)
        first = lookup.first_procedure_date(patient_id)
        t = _table("followups")
        rows = conn.execute(
            select(
                t.c.id, t.c.site, t.c.version, t.c.followup_date, t.c.days_after_first_ablation
            ).where(t.c.patient_id == patient_id, t.c.deleted_at.is_(None))
        ).all()
        changes = []
        for r in rows:
            if first is None or r.followup_date < first:
                raise ValidationError(
                    where,
                    "procedure_date",
                    f"follow-up {r.id} on {r.followup_date} would precede "
                    "the patient's first procedure",
                )
            days = (r.followup_date - first).days
            if days != r.days_after_first_ablation:
                self._guarded_update(
                    conn,
                    "followups",
                    r.id,
                    r.version,
                    {"days_after_first_ablation": days, "updated_at": utcnow()},
                )
                changes.append(
                    audit.Change(
                        "update",
                        "followups",
                        r.id,
                        r.site,
                        {
                            "days_after_first_ablation": r.days_after_first_ablation,
                            "version": r.version,
                        },
                        {"days_after_first_ablation": days, "version": r.version + 1},
                    )
                )
        return changes


def editable_fields(table: str) -> list[str]:
    return [c.name for c in user_columns(table) if c.name != "days_after_first_ablation"]


__all__ = ["Conflict", "NotFound", "Page", "PermissionDenied", "Registry", "editable_fields"]
