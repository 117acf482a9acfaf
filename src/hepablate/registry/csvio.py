"""CSV import and export: one file per entity (`<table>.csv`), documented in docs/registry-csv/.

Import: each file has an `id` column that identifies the row within this import; foreign keys
(`patient_id`, `session_id`, ...) refer to those ids in the parent file of the same import, or,
when the parent file is absent from the directory, to an existing record id in the database.
`site` is required for patients (or given by `--site`); children inherit their parent's site.
Patients may give the raw `nhs_number` (checked with Modulus 11 and stored only as a keyed
hash) or an `nhs_number_hash` from an earlier export. Every row is validated first; any error
(file, line, field) aborts the whole import and nothing is written. Valid imports are inserted
in one transaction, with one audit row per record.

Export writes the same format (plus the derived `days_after_first_ablation`), so an export
imports into an empty registry unchanged. Text cells that a spreadsheet would run as a
formula (starting with = + - @ tab or CR; OWASP "CSV Injection") are written with a leading
single quote, and import removes that quote again (`escape_cell`/`unescape_cell`). Every
export also holds `audit_head.json`: the audit trail's head hash, to check later with
`hepablate registry verify --expect-head HASH`. The pseudonymised research export drops codes,
hashes and free text that may identify a person, replaces every date by days from the
patient's first ablation (or shifts it by a random per-patient offset), generalises the year
of birth to a five-year band, and renumbers all ids at random.
"""

from __future__ import annotations

import csv
import io
import random
import secrets
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from hepablate.core.output import atomic_output_dir
from hepablate.errors import InputError
from hepablate.registry import audit
from hepablate.registry.auth import ensure_site
from hepablate.registry.db import write_transaction
from hepablate.registry.models import ENTITIES, PARENTS, utcnow
from hepablate.registry.service import prepare_identifiers
from hepablate.registry.validation import (
    DbLookup,
    ValidationError,
    check_record,
    coerce_record,
    derived_columns,
    user_columns,
)

MAX_REPORTED_ERRORS = 50
_INSERT_CHUNK = 2000


def csv_columns(table: str, *, for_export: bool = True) -> list[str]:
    cols = ["id", "site"] + [c.name for c in user_columns(table)]
    if not for_export:
        cols = [c for c in cols if c not in derived_columns(table)]
    return cols


class ImportFailed(InputError):
    """One or more rows are malformed; `errors` lists each (file, line, field, message)."""

    def __init__(self, errors: list[ValidationError]):
        self.errors = errors
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        first = errors[0]
        super().__init__(
            first.message + more + "; nothing was imported",
            source=first.where,
            field=first.field,
        )


@dataclass
class ImportResult:
    counts: dict[str, int] = field(default_factory=dict)
    audit_rows: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _MemoryLookup:
    """Parents from this import (by file id) or, for files not in the import, the database."""

    def __init__(self, db: DbLookup, in_set: set[str]):
        self.db = db
        self.in_set = in_set
        self.rows: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self.first_proc: dict[int, date] = {}

    def get(self, table: str, record_id: int) -> Mapping[str, Any] | None:
        if table in self.in_set:
            return self.rows[table].get(record_id)
        return self.db.get(table, record_id)

    def first_procedure_date(self, patient_id: int) -> date | None:
        mine = self.first_proc.get(patient_id)
        theirs = None if "patients" in self.in_set else self.db.first_procedure_date(patient_id)
        ds = [d for d in (mine, theirs) if d is not None]
        return min(ds) if ds else None

    def latest_event_date(self, patient_id: int) -> date | None:
        return None  # imported patients are new: they have no recorded events yet


def _read_csv(path: Path, table: str) -> list[tuple[int, dict[str, str | None]]]:
    name = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read ({exc})", source=str(path)) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ValidationError(f"{name} line {line}", None, "holds a NUL character")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict[str, str | None]]] = []
    try:
        header = reader.fieldnames or []
        allowed = set(csv_columns(table)) | ({"nhs_number"} if table == "patients" else set())
        seen: set[str] = set()
        for col in header:
            if col not in allowed:
                raise ValidationError(f"{name} line 1", col, f"unknown column for {table}")
            if col in seen:
                raise ValidationError(f"{name} line 1", col, "column appears twice in the header")
            seen.add(col)
        if "id" not in header:
            raise ValidationError(f"{name} line 1", "id", "missing column")
        for row in reader:
            if None in row:
                raise ValidationError(
                    f"{name} line {reader.line_num}", None, "more values than header columns"
                )
            rows.append(
                (
                    reader.line_num,
                    {k: "" if v is None else unescape_cell(v) for k, v in row.items()},
                )
            )
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KiB)
        raise ValidationError(
            f"{name} line {reader.line_num + 1}", None, f"not CSV ({exc})"
        ) from None
    return rows


def validate_records(
    tables: dict[str, list[tuple[int, dict[str, str | None]]]],
    engine: Engine,
    default_site: str | None,
    actor_site: str | None,
) -> tuple[dict[str, list[tuple[int, dict[str, Any]]]], list[ValidationError]]:
    """Validate rows `(line, raw)` per table in dependency order; returns the typed
    records keyed by their import-local id, and the errors (up to MAX_REPORTED_ERRORS)."""
    errors: list[ValidationError] = []
    parsed: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    with engine.connect() as conn:
        lookup = _MemoryLookup(DbLookup(conn), set(tables))
        failed: dict[str, set[int]] = defaultdict(set)
        tainted: set[int] = set()  # patients with a rejected session
        existing_codes: set[tuple[str, str]] = set()
        if "patients" in tables:
            t = ENTITIES["patients"].__table__
            existing_codes = {
                (r.site, r.patient_code) for r in conn.execute(select(t.c.site, t.c.patient_code))
            }
        for table in ENTITIES:
            if table not in tables:
                continue
            fname = f"{table}.csv"
            out: list[tuple[int, dict[str, Any]]] = []
            seen_ids: set[int] = set()
            for line, raw in tables[table]:
                where = f"{fname} line {line}"
                rid = None
                try:
                    rid_s = str(raw.get("id") or "").strip()
                    if not rid_s.isdigit() or int(rid_s) < 1:
                        raise ValidationError(where, "id", "expected a positive integer")
                    rid = int(rid_s)
                    if rid in seen_ids:
                        raise ValidationError(where, "id", f"duplicate id {rid} in {fname}")
                    seen_ids.add(rid)
                    body = {
                        k: v
                        for k, v in raw.items()
                        if k not in ("id", "site") and k not in derived_columns(table)
                    }
                    body = prepare_identifiers(table, body, where)
                    rec = coerce_record(table, body, where)
                    # Rows that depend on an already rejected row are not reported again.
                    if any(
                        rec.get(fk) in failed[parent] for fk, parent in PARENTS[table].items()
                    ) or (table == "followups" and rec["patient_id"] in tainted):
                        failed[table].add(rid)
                        continue
                    site = str(raw.get("site") or "").strip() or None
                    if table == "patients":
                        site = site or default_site
                        if not site:
                            raise ValidationError(where, "site", "required (or give --site)")
                    rec["site"] = site
                    check_record(table, rec, lookup, where)
                    if actor_site is not None and rec["site"] != actor_site:
                        raise ValidationError(
                            where, "site", f"outside this user's site {actor_site}"
                        )
                    if table == "patients":
                        key = (rec["site"], rec["patient_code"])
                        if key in existing_codes:
                            raise ValidationError(
                                where, "patient_code", f"'{key[1]}' already exists at site {key[0]}"
                            )
                        existing_codes.add(key)
                    if table == "procedure_sessions":
                        pid, d = rec["patient_id"], rec["procedure_date"]
                        if pid not in lookup.first_proc or d < lookup.first_proc[pid]:
                            lookup.first_proc[pid] = d
                    lookup.rows[table][rid] = rec
                    out.append((rid, rec))
                except ValidationError as exc:
                    errors.append(exc)
                    if rid is not None:
                        failed[table].add(rid)
                        if table == "procedure_sessions" and "patient_id" in raw:
                            pid = str(raw["patient_id"]).strip()
                            tainted.add(int(pid) if pid.isdigit() else -1)
                    if len(errors) >= MAX_REPORTED_ERRORS:
                        return parsed, errors
            parsed[table] = out
        # A follow-up validated before a later-listed earlier session got the wrong day count.
        for _rid, rec in parsed.get("followups", []):
            first = lookup.first_procedure_date(rec["patient_id"])
            if first is not None:
                rec["days_after_first_ablation"] = (rec["followup_date"] - first).days
    return parsed, errors


def import_dir(
    engine: Engine,
    directory: str | Path,
    actor: str = "import",
    default_site: str | None = None,
    actor_site: str | None = None,
    progress: Any = None,
) -> ImportResult:
    """Validate then insert every `<table>.csv` in `directory` in one transaction."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("not a directory", source=str(directory))
    files = {t: directory / f"{t}.csv" for t in ENTITIES if (directory / f"{t}.csv").is_file()}
    if not files:
        raise InputError(
            f"no <entity>.csv file (expected some of: {', '.join(t + '.csv' for t in ENTITIES)})",
            source=str(directory),
        )
    try:
        raw_tables = {t: _read_csv(p, t) for t, p in files.items()}
        parsed, errors = validate_records(raw_tables, engine, default_site, actor_site)
    except ValidationError as exc:
        raise ImportFailed([exc]) from None
    if errors:
        raise ImportFailed(errors)
    return insert_records(engine, parsed, actor)


def insert_records(
    engine: Engine, parsed: dict[str, list[tuple[int, dict[str, Any]]]], actor: str
) -> ImportResult:
    """Insert validated records (keyed by import-local ids) in one transaction with audit."""
    result = ImportResult()
    id_maps: dict[str, dict[int, int]] = {}
    with write_transaction(engine) as conn:
        now = utcnow()
        for site in {rec["site"] for _, rec in parsed.get("patients", [])}:
            ensure_site(conn, site)
        changes: list[audit.Change] = []
        for table, model in ENTITIES.items():
            rows = parsed.get(table)
            if not rows:
                continue
            t = model.__table__
            values = []
            for _rid, rec in rows:
                v = dict(rec)
                for fk, parent in PARENTS[table].items():
                    if v.get(fk) is not None and parent in id_maps:
                        v[fk] = id_maps[parent][v[fk]]
                v.update(version=1, created_at=now, updated_at=now, deleted_at=None)
                values.append(v)
            new_ids: list[int] = []
            for i in range(0, len(values), _INSERT_CHUNK):
                chunk = values[i : i + _INSERT_CHUNK]
                res = conn.execute(
                    insert(t).returning(t.c.id, sort_by_parameter_order=True),  # type: ignore[arg-type]
                    chunk,
                )
                new_ids.extend(res.scalars().all())
            id_maps[table] = {rid: nid for (rid, _), nid in zip(rows, new_ids, strict=True)}
            for v, nid in zip(values, new_ids, strict=True):
                v["id"] = nid
                changes.append(audit.Change("create", table, nid, v["site"], None, v))
            result.counts[table] = len(values)
        result.audit_rows = audit.append(conn, actor, changes)
    return result


# --- export ----------------------------------------------------------------------------


#: Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(text: str) -> str:
    """OWASP rule for text cells: prefix a single quote to a value that starts with
    = + - @ tab or CR, so a spreadsheet shows it as text instead of running it. A value that
    already starts with a quote followed by one of those (or by a quote) gets one more, so
    that `unescape_cell` gives back exactly the stored text."""
    if text.startswith(FORMULA_START) or (
        len(text) > 1 and text[0] == "'" and text[1] in (*FORMULA_START, "'")
    ):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """Inverse of `escape_cell` on import: drop the quote before = + - @ tab CR or a quote."""
    if len(text) > 1 and text[0] == "'" and text[1] in (*FORMULA_START, "'"):
        return text[1:]
    return text


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return escape_cell(value)
    return str(value)


def _live_rows(engine: Engine, table: str, site: str | None) -> list[dict[str, Any]]:
    t = ENTITIES[table].__table__
    q = select(t).where(t.c.deleted_at.is_(None))
    if site is not None:
        q = q.where(t.c.site == site)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q.order_by(t.c.id)).mappings()]


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([_fmt(r.get(c)) for c in columns])


AUDIT_HEAD_FILE = "audit_head.json"


def write_audit_head(engine: Engine, directory: Path) -> dict[str, Any]:
    """Write the audit trail's head (hash and row count, read before the records) into an
    export, so that a copy of it lives outside the database; returns what was written."""
    import json

    head_hash, rows = audit.head(engine)
    doc = {
        "audit_head_hash": head_hash,
        "audit_rows": rows,
        "exported_at_utc": utcnow().isoformat(timespec="seconds"),
        "check_with": f"hepablate registry verify --expect-head {head_hash}",
    }
    (directory / AUDIT_HEAD_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def export_dir(engine: Engine, out: str | Path, *, site: str | None = None) -> dict[str, int]:
    """Write every live record as `<table>.csv` (import format) into `out`, atomically,
    with the data dictionary and the audit head (`audit_head.json`)."""
    counts = {}
    with atomic_output_dir(out) as tmp:
        write_audit_head(engine, tmp)
        for table in ENTITIES:
            rows = _live_rows(engine, table, site)
            _write_csv(tmp / f"{table}.csv", csv_columns(table), rows)
            counts[table] = len(rows)
        write_data_dictionary(tmp / "data_dictionary.csv")
    return counts


# Free text and codes that may identify a person or a clinician: never in a research export.
PSEUDONYMISED_DROP = {
    "patients": {"patient_code", "nhs_number_hash", "mdt_decision", "death_cause", "year_of_birth"},
    "procedure_sessions": {"operator", "plan_ref"},
    "adverse_events": {"description"},
}


def _date_columns(table: str) -> list[str]:
    from sqlalchemy import Date

    return [c.name for c in user_columns(table) if isinstance(c.type, Date)]


def export_pseudonymised(
    engine: Engine,
    out: str | Path,
    *,
    site: str | None = None,
    dates: str = "days",
    seed: int | None = None,
) -> dict[str, int]:
    """Research export. `dates='days'`: each date becomes `<name>_day`, days from the
    patient's first ablation (negative before it). `dates='shift'`: each date moves by one
    random offset per patient (+-365 days, not exported)."""
    if dates not in ("days", "shift"):
        raise InputError("expected 'days' or 'shift'", field="dates")
    rng = random.Random(seed if seed is not None else secrets.randbits(64))
    data = {t: _live_rows(engine, t, site) for t in ENTITIES}
    by_id = {t: {r["id"]: r for r in rows} for t, rows in data.items()}

    def patient_of(table: str, r: dict[str, Any]) -> int:
        if table == "patients":
            return r["id"]
        if "patient_id" in r:
            return r["patient_id"]
        if table == "treated_tumours":
            return by_id["procedure_sessions"][r["session_id"]]["patient_id"]
        return by_id["followups"][r["followup_id"]]["patient_id"]

    anchor: dict[int, date] = {}
    for s in data["procedure_sessions"]:
        pid = s["patient_id"]
        if pid not in anchor or s["procedure_date"] < anchor[pid]:
            anchor[pid] = s["procedure_date"]
    shift = {p["id"]: timedelta(days=rng.randint(-365, 365)) for p in data["patients"]}
    new_ids: dict[str, dict[int, int]] = {}
    for t, rows in data.items():
        perm = list(range(1, len(rows) + 1))
        rng.shuffle(perm)
        new_ids[t] = {r["id"]: n for r, n in zip(rows, perm, strict=True)}
    counts = {}
    with atomic_output_dir(out) as tmp:
        write_audit_head(engine, tmp)
        for table in ENTITIES:
            drop = PSEUDONYMISED_DROP.get(table, set())
            dcols = _date_columns(table)
            cols = ["id", "site"]
            if table == "patients":
                cols.append("birth_year_band")
            for c in csv_columns(table):
                if c in ("id", "site") or c in drop:
                    continue
                cols.append(f"{c}_day" if c in dcols and dates == "days" else c)
            out_rows = []
            for r in data[table]:
                pid = patient_of(table, r)
                o: dict[str, Any] = {"id": new_ids[table][r["id"]], "site": r["site"]}
                for c in csv_columns(table):
                    if c in ("id", "site") or c in drop:
                        continue
                    v = r.get(c)
                    if c in PARENTS[table] and v is not None:
                        v = new_ids[PARENTS[table][c]][v]
                    if c in dcols:
                        if dates == "days":
                            a = anchor.get(pid)
                            o[f"{c}_day"] = None if v is None or a is None else (v - a).days
                            continue
                        v = None if v is None else v + shift[pid]
                    o[c] = v
                if table == "patients":
                    y = r["year_of_birth"]
                    o["birth_year_band"] = f"{y - y % 5}-{y - y % 5 + 4}"
                out_rows.append(o)
            out_rows.sort(key=lambda o: o["id"])
            _write_csv(tmp / f"{table}.csv", cols, out_rows)
            counts[table] = len(out_rows)
    return counts


# --- data dictionary (hepablate.registry.redcap) -------------------------------------------
from hepablate.registry.redcap import (  # noqa: E402  (re-exported for callers of csvio)
    REDCAP_HEADER,
    data_dictionary_rows,
    write_data_dictionary,
)

__all__ = [
    "AUDIT_HEAD_FILE",
    "REDCAP_HEADER",
    "ImportFailed",
    "ImportResult",
    "data_dictionary_rows",
    "escape_cell",
    "export_dir",
    "export_pseudonymised",
    "import_dir",
    "unescape_cell",
    "write_audit_head",
    "write_data_dictionary",
]
