"""Validation of registry records: types, enumerations and ranges from the model columns'
`info`, then the rules that relate fields and records (impossible dates, follow-up before the
first procedure, death before a procedure, adverse-event facts that contradict each other).

Grades are not stored (the outcomes engines derive them from the facts), so "a recorded grade
that contradicts the facts" cannot arise; the facts' own consistency is checked here.
Child-Pugh class/score bands follow Pugh et al., Br J Surg 1973: A 5-6, B 7-9, C 10-15.
Residual unablated tumour and local tumour progression are mutually exclusive for one lesion
at one time point (Ahmed et al., Radiology 2014).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from sqlalchemy import Boolean, Connection, Date, Integer, Numeric, String, Text, func, select
from sqlalchemy import Column as SaColumn

from hepablate.errors import InputError
from hepablate.registry.models import ENTITIES, PARENTS, SYSTEM_COLUMNS

#: 32-bit signed integer columns (SQLite stores 64 bits, PostgreSQL INTEGER only 32).
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
CHILD_PUGH_BANDS = {"a": (5, 6), "b": (7, 9), "c": (10, 15)}


class ValidationError(InputError):
    """A record breaks a rule: names the entity/record (or file and line) and the field."""

    def __init__(self, where: str, field: str | None, message: str):
        super().__init__(message, source=where, field=field)
        self.where = where
        self.message = message


def user_columns(table: str) -> list[SaColumn[Any]]:
    """Columns a user supplies (all but id, site, version and timestamps)."""
    t = ENTITIES[table].__table__
    return [c for c in t.columns if c.name not in SYSTEM_COLUMNS]  # type: ignore[misc]


def derived_columns(table: str) -> set[str]:
    return {"days_after_first_ablation"} if table == "followups" else set()


def coerce_value(col: SaColumn[Any], value: Any, where: str) -> Any:
    """Typed value of `value` for column `col` (strings as read from CSV or a query string)."""
    name = col.name
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            value = None
    if value is None:
        return None
    t = col.type
    try:
        if isinstance(t, Boolean):
            if isinstance(value, bool):
                return value
            s = str(value).lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError("expected true or false")
        if isinstance(t, Integer):
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, str):
                if not _INTEGER.fullmatch(value):
                    raise ValueError("expected an integer")
                value = int(value)
            if not isinstance(value, int):
                raise ValueError("expected an integer")
            if not INT32_MIN <= value <= INT32_MAX:
                raise ValueError(f"{value} is outside the integer range")
            out: Any = value
        elif isinstance(t, Numeric):
            if isinstance(value, bool):
                raise ValueError("expected a number")
            try:
                d = Decimal(str(value))
            except InvalidOperation:
                raise ValueError("expected a number") from None
            if not d.is_finite():
                raise ValueError("expected a finite number")
            scale = t.scale or 0
            if t.precision and d != 0 and d.adjusted() >= t.precision - scale:
                raise ValueError(f"at most {t.precision - scale} digits before the point")
            if d.as_tuple().exponent < -scale:  # type: ignore[operator]
                raise ValueError(f"at most {scale} decimal places")
            out = d if t.asdecimal else float(d)
        elif isinstance(t, Date):
            if isinstance(value, date):
                out = value
            else:
                try:
                    # date.fromisoformat also takes 20230320 and 2023-W12-1: only YYYY-MM-DD.
                    if not _ISO_DATE.fullmatch(str(value)):
                        raise ValueError
                    out = date.fromisoformat(str(value))
                except ValueError:
                    raise ValueError("expected a date YYYY-MM-DD") from None
        elif isinstance(t, String | Text):
            out = str(value)
            if "\x00" in out:
                raise ValueError("holds a NUL character")
            length = getattr(t, "length", None)
            if length and len(out) > length:
                raise ValueError(f"at most {length} characters")
            choices = col.info.get("choices")
            if choices is not None:
                out = out.lower()
                if out not in choices:
                    raise ValueError(f"expected one of {'|'.join(choices)}, got '{value}'")
        else:  # pragma: no cover - every column type is listed above
            out = value
    except ValueError as exc:
        raise ValidationError(where, name, str(exc)) from None
    ge, le = col.info.get("ge"), col.info.get("le")
    if ge is not None and out < ge or le is not None and out > le:
        raise ValidationError(where, name, f"{value} is outside {ge}..{le}")
    return out


def coerce_record(
    table: str, raw: Mapping[str, Any], where: str, *, partial: bool = False
) -> dict[str, Any]:
    """Typed values of the user columns in `raw`. Unknown fields are an error; with
    `partial=False` every required column must be present (defaults filled in)."""
    cols = {c.name: c for c in user_columns(table)}
    derived = derived_columns(table)
    unknown = [k for k in raw if k not in cols and k not in ("site",)]
    if unknown:
        raise ValidationError(where, unknown[0], f"unknown field for {table}")
    out: dict[str, Any] = {}
    for name, col in cols.items():
        if name in derived:
            continue
        if name in raw:
            out[name] = coerce_value(col, raw[name], where)
        elif partial:
            continue
        else:
            out[name] = col.info.get("default")
        if out[name] is None and not col.nullable:
            if "default" in col.info:
                out[name] = col.info["default"]
            else:
                raise ValidationError(where, name, "required")
    return out


class Lookup(Protocol):
    """Live parent records and patient-level dates needed by the cross-record rules."""

    def get(self, table: str, record_id: int) -> Mapping[str, Any] | None: ...

    def first_procedure_date(self, patient_id: int) -> date | None: ...

    def latest_event_date(self, patient_id: int) -> date | None: ...


class DbLookup:
    """`Lookup` over the database (live rows only)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def get(self, table: str, record_id: int) -> Mapping[str, Any] | None:
        t = ENTITIES[table].__table__
        row = (
            self.conn.execute(select(t).where(t.c.id == record_id, t.c.deleted_at.is_(None)))
            .mappings()
            .first()
        )
        return dict(row) if row is not None else None

    def first_procedure_date(self, patient_id: int) -> date | None:
        t = ENTITIES["procedure_sessions"].__table__
        return self.conn.scalar(
            select(func.min(t.c.procedure_date)).where(
                t.c.patient_id == patient_id, t.c.deleted_at.is_(None)
            )
        )

    def latest_event_date(self, patient_id: int) -> date | None:
        dates = []
        for table, col in (
            ("procedure_sessions", "procedure_date"),
            ("followups", "followup_date"),
            ("adverse_events", "onset_date"),
        ):
            t = ENTITIES[table].__table__
            dates.append(
                self.conn.scalar(
                    select(func.max(t.c[col])).where(
                        t.c.patient_id == patient_id, t.c.deleted_at.is_(None)
                    )
                )
            )
        dates = [d for d in dates if d is not None]
        return max(dates) if dates else None


def _parent(
    lookup: Lookup, rec: Mapping[str, Any], field: str, table: str, where: str
) -> Mapping[str, Any]:
    parent_table = PARENTS[table][field]
    row = lookup.get(parent_table, rec[field])
    if row is None:
        raise ValidationError(where, field, f"no live {parent_table} record {rec[field]}")
    return row


def _dates_in_life(
    patient: Mapping[str, Any], d: date, field: str, where: str, today: date
) -> None:
    if d > today:
        raise ValidationError(where, field, f"{d} is in the future")
    if d.year < patient["year_of_birth"]:
        raise ValidationError(where, field, f"{d} is before the year of birth")
    death = patient.get("death_date")
    if death is not None and d > death:
        raise ValidationError(where, field, f"{d} is after the patient's death on {death}")


def check_record(
    table: str, rec: dict[str, Any], lookup: Lookup, where: str, today: date | None = None
) -> None:
    """Cross-field and cross-record rules for a complete record; fills derived columns and
    the child's `site` from its parent. Raises ValidationError."""
    today = today or date.today()
    site = rec.get("site")
    parents = {
        f: _parent(lookup, rec, f, table, where) for f in PARENTS[table] if rec.get(f) is not None
    }
    for f, p in parents.items():
        if site is None:
            rec["site"] = site = p["site"]
        elif p["site"] != site:
            raise ValidationError(where, f, f"parent belongs to site '{p['site']}', not '{site}'")
    patient = parents.get("patient_id")
    _RULES[table](rec, parents, patient, lookup, where, today)


def _patients(rec, parents, patient, lookup, where, today) -> None:
    cls, score = rec.get("child_pugh_class"), rec.get("child_pugh_score")
    if cls is not None and score is not None:
        lo, hi = CHILD_PUGH_BANDS[cls]
        if not lo <= score <= hi:
            raise ValidationError(
                where,
                "child_pugh_score",
                f"score {score} is not Child-Pugh class {cls.upper()} ({lo}-{hi})",
            )
    if rec["year_of_birth"] > today.year:
        raise ValidationError(where, "year_of_birth", "is in the future")
    if rec.get("cirrhosis_cause") and not rec["cirrhosis"]:
        raise ValidationError(where, "cirrhosis_cause", "given but cirrhosis is false")
    if rec.get("death_date") is None:
        for f in ("death_cause", "death_procedure_related"):
            if rec.get(f) is not None:
                raise ValidationError(where, f, "given but death_date is empty")
    for f in ("mdt_date", "death_date", "transplant_date", "last_contact_date"):
        if rec.get(f) is not None:
            _dates_in_life(rec, rec[f], f, where, today)
    if rec.get("id") is not None and rec.get("death_date") is not None:
        latest = lookup.latest_event_date(rec["id"])
        if latest is not None and latest > rec["death_date"]:
            raise ValidationError(
                where,
                "death_date",
                f"{rec['death_date']} is before a recorded procedure or follow-up on {latest}",
            )


def _tumours(rec, parents, patient, lookup, where, today) -> None:
    return None


def _sessions(rec, parents, patient, lookup, where, today) -> None:
    _dates_in_life(patient, rec["procedure_date"], "procedure_date", where, today)
    if rec["modality"] != "ire":
        for f in ("voltage_v_max", "pulses_total", "pulse_width_us"):
            if rec.get(f) is not None:
                raise ValidationError(where, f, f"an IRE field, but modality is {rec['modality']}")
    elif rec.get("power_w") is not None:
        raise ValidationError(where, "power_w", "a thermal-ablation field, but modality is ire")


def _treated(rec, parents, patient, lookup, where, today) -> None:
    if parents["tumour_id"]["patient_id"] != parents["session_id"]["patient_id"]:
        raise ValidationError(
            where, "tumour_id", "tumour belongs to another patient than the session"
        )


def _followups(rec, parents, patient, lookup, where, today) -> None:
    d = rec["followup_date"]
    _dates_in_life(patient, d, "followup_date", where, today)
    first = lookup.first_procedure_date(rec["patient_id"])
    if first is None:
        raise ValidationError(where, "followup_date", "the patient has no procedure session")
    if d < first:
        raise ValidationError(
            where, "followup_date", f"{d} is before the first procedure on {first}"
        )
    rec["days_after_first_ablation"] = (d - first).days


def _lesions(rec, parents, patient, lookup, where, today) -> None:
    role = rec["role"]
    tumour = parents.get("tumour_id")
    if role == "new" and tumour is not None:
        raise ValidationError(where, "tumour_id", "a new lesion cannot refer to a known tumour")
    if tumour is not None and tumour["patient_id"] != parents["followup_id"]["patient_id"]:
        raise ValidationError(where, "tumour_id", "tumour belongs to another patient")
    if role == "target" and rec.get("longest_diameter_mm") is None and not rec["is_lymph_node"]:
        raise ValidationError(where, "longest_diameter_mm", "required for a target lesion")
    if rec["is_lymph_node"] and role == "target" and rec.get("short_axis_mm") is None:
        raise ValidationError(where, "short_axis_mm", "required for a target lymph node")
    if not rec["is_lymph_node"] and rec.get("short_axis_mm") is not None:
        raise ValidationError(where, "short_axis_mm", "only for lymph nodes")
    if role == "non_target" and rec.get("non_target_status") is None:
        raise ValidationError(where, "non_target_status", "required for a non-target lesion")
    if role != "non_target" and rec.get("non_target_status") is not None:
        raise ValidationError(where, "non_target_status", "only for non-target lesions")
    v, ld = rec.get("viable_longest_diameter_mm"), rec.get("longest_diameter_mm")
    if v is not None and ld is not None and v > ld:
        raise ValidationError(
            where, "viable_longest_diameter_mm", f"{v} mm exceeds the longest diameter {ld} mm"
        )
    if rec.get("minimal_margin_mm") is not None and not rec.get("margin_method"):
        raise ValidationError(where, "margin_method", "required when a margin is given")
    if rec.get("residual_tumour") and rec.get("local_progression"):
        raise ValidationError(
            where, "local_progression", "residual tumour and local progression exclude each other"
        )


def _adverse(rec, parents, patient, lookup, where, today) -> None:
    session = parents["session_id"]
    if session["patient_id"] != rec["patient_id"]:
        raise ValidationError(where, "session_id", "session belongs to another patient")
    d = rec["onset_date"]
    if d < session["procedure_date"]:
        raise ValidationError(
            where, "onset_date", f"{d} is before the procedure on {session['procedure_date']}"
        )
    _dates_in_life(patient, d, "onset_date", where, today)
    if rec["intervention"] == "none" and rec["intervention_anaesthesia"] != "none":
        raise ValidationError(where, "intervention_anaesthesia", "given but intervention is none")
    if rec["transfusion_units"] > 0 and rec["therapy"] != "transfusion":
        raise ValidationError(where, "therapy", "transfusion_units > 0 needs therapy transfusion")
    if rec["therapy"] == "transfusion" and rec["transfusion_units"] == 0:
        raise ValidationError(where, "transfusion_units", "therapy transfusion needs units > 0")
    if rec["icu_admission"] and rec["therapy"] == "none" and rec["intervention"] == "none":
        raise ValidationError(where, "icu_admission", "ICU admission without any therapy")
    if rec["prolonged_hospitalisation"] and rec["extra_stay_days"] == 0:
        raise ValidationError(
            where, "extra_stay_days", "prolonged_hospitalisation needs extra_stay_days > 0"
        )
    if rec["death"] and patient.get("death_date") is None:
        raise ValidationError(where, "death", "the patient has no death_date")
    if rec["death"] and rec["ongoing_at_discharge"]:
        raise ValidationError(where, "ongoing_at_discharge", "cannot be set when death is true")


_RULES = {
    "patients": _patients,
    "tumours": _tumours,
    "procedure_sessions": _sessions,
    "treated_tumours": _treated,
    "followups": _followups,
    "followup_lesions": _lesions,
    "adverse_events": _adverse,
}
