"""The REDCap data dictionary of the registry, generated from the model columns, and a
checker of REDCap's rules for data dictionaries.

REDCap holds one record per patient: the `patients` form comes first and its first field is
REDCap's record identifier, `record_id` (the registry's patient id). Every other entity is a
(repeating) form of that record, so it carries neither `patient_id` (the record is the
patient) nor `site` (a child belongs to its patient's site). Variable names are unique across
the whole dictionary: a column name used by more than one form is prefixed with its form's
short name (`trt_session_id`, `ae_session_id`). The rules checked by `dictionary_problems`
follow REDCap's data dictionary documentation: variable and form names of lower-case
letters, digits and underscores starting with a letter (variable names at most 26
characters, REDCap's recommended limit), unique variable names, `record_id` first, field
types, validation types and action tags that REDCap has, choices only on choice fields,
min/max only with a validation type, and `y` or blank in the Identifier and Required columns.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from hepablate.registry.models import ENTITIES, PARENTS
from hepablate.registry.validation import derived_columns, user_columns

REDCAP_HEADER = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]
RECORD_ID = "record_id"
#: Short form names used to make a column name unique across forms.
FORM_PREFIX = {
    "patients": "pt",
    "tumours": "tum",
    "procedure_sessions": "ses",
    "treated_tumours": "trt",
    "followups": "fu",
    "followup_lesions": "les",
    "adverse_events": "ae",
}
#: REDCap field types (data dictionary column D).
FIELD_TYPES = frozenset(
    {"text", "notes", "dropdown", "radio", "checkbox", "yesno", "truefalse", "calc", "file",
     "slider", "descriptive", "sql"}
)  # fmt: skip
CHOICE_TYPES = frozenset({"dropdown", "radio", "checkbox"})
#: REDCap text validation types used or accepted here (column H).
VALIDATION_TYPES = frozenset(
    {"date_ymd", "date_dmy", "date_mdy", "datetime_ymd", "datetime_seconds_ymd", "integer",
     "number", "number_1dp", "number_2dp", "time", "email", "alpha_only", "phone", "zipcode"}
)  # fmt: skip
#: REDCap action tags (a subset of REDCap's list; everything hepablate may write).
ACTION_TAGS = frozenset(
    {"@HIDDEN", "@HIDDEN-FORM", "@HIDDEN-SURVEY", "@HIDDEN-APP", "@HIDDEN-PDF", "@READONLY",
     "@READONLY-FORM", "@READONLY-SURVEY", "@DEFAULT", "@NOW", "@TODAY", "@CHARLIMIT",
     "@PLACEHOLDER", "@NOMISSING", "@FORCE-MINMAX", "@PASSWORDMASK"}
)  # fmt: skip
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_CODE = re.compile(r"[A-Za-z0-9_]+")
MAX_VARIABLE_LENGTH = 26
_IDENTIFIERS = {"patient_code", "nhs_number", "nhs_number_hash"}


def _fmt_bound(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _columns(table: str) -> list[str]:
    """Column names of a form (children: without `patient_id`)."""
    return [
        c.name for c in user_columns(table) if not (table != "patients" and c.name == "patient_id")
    ]


def variable_names() -> dict[tuple[str, str], str]:
    """(form, column) -> REDCap variable name, unique across the dictionary."""
    uses = Counter(name for t in ENTITIES for name in _columns(t))
    uses.update(["nhs_number", "site", RECORD_ID])
    out: dict[tuple[str, str], str] = {}
    for table in ENTITIES:
        for name in _columns(table):
            unique = uses[name] == 1 or (table == "patients" and name not in ("site",))
            out[(table, name)] = name if unique else f"{FORM_PREFIX[table]}_{name}"
    return out


def _row(name: str, form: str, ftype: str, label: str, **kw: str) -> list[str]:
    cells = dict.fromkeys(REDCAP_HEADER, "")
    cells.update(
        {
            "Variable / Field Name": name,
            "Form Name": form,
            "Field Type": ftype,
            "Field Label": label,
        }
    )
    keys = {
        "section": "Section Header",
        "choices": "Choices, Calculations, OR Slider Labels",
        "note": "Field Note",
        "validation": "Text Validation Type OR Show Slider Number",
        "vmin": "Text Validation Min",
        "vmax": "Text Validation Max",
        "identifier": "Identifier?",
        "required": "Required Field?",
        "annotation": "Field Annotation",
    }
    for k, v in kw.items():
        cells[keys[k]] = v
    return [cells[h] for h in REDCAP_HEADER]


def data_dictionary_rows() -> list[list[str]]:
    """The REDCap data dictionary (rows without the header) generated from the models."""
    from sqlalchemy import Boolean, Date, Integer, Numeric

    names = variable_names()
    rows = [
        _row(RECORD_ID, "patients", "text", "Record ID (registry patient id)",
             section="patients", note="the registry's patients.id"),
        _row("nhs_number", "patients", "text", "NHS number (stored only as a keyed hash)",
             note="10 digits with a Modulus 11 check digit; import only", identifier="y"),
        _row("site", "patients", "text", "site / hospital code", required="y",
             note="every other form belongs to its patient's site"),
    ]  # fmt: skip
    for table in ENTITIES:
        first = table != "patients"
        for c in user_columns(table):
            if c.name not in _columns(table):
                continue
            info = c.info
            ftype, vtype, choices = "text", "", ""
            vmin = vmax = ""
            if "choices" in info:
                ftype = "dropdown"
                choices = " | ".join(f"{v}, {v}" for v in info["choices"])
            elif isinstance(c.type, Boolean):
                ftype = "yesno"
            elif isinstance(c.type, Date):
                vtype = "date_ymd"
            elif isinstance(c.type, Integer | Numeric):
                vtype = "integer" if isinstance(c.type, Integer) else "number"
                vmin = "" if info.get("ge") is None else _fmt_bound(info["ge"])
                vmax = "" if info.get("le") is None else _fmt_bound(info["le"])
            derived = c.name in derived_columns(table)
            if c.name in PARENTS[table]:
                note = f"id of a {PARENTS[table][c.name]} row of this patient"
            elif derived:
                note = "derived on import; ignored if given"
            else:
                note = ""
            required = not c.nullable and "default" not in info and not derived
            rows.append(
                _row(
                    names[(table, c.name)],
                    table,
                    ftype,
                    info.get("doc", "") or c.name,
                    section=table.replace("_", " ") if first else "",
                    choices=choices,
                    note=note,
                    validation=vtype,
                    vmin=vmin,
                    vmax=vmax,
                    identifier="y" if c.name in _IDENTIFIERS else "",
                    required="y" if required else "",
                    annotation="@READONLY" if derived else "",
                )
            )
            first = False
    return rows


def write_data_dictionary(path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(REDCAP_HEADER)
        w.writerows(data_dictionary_rows())


def dictionary_problems(rows: Iterable[Sequence[str]]) -> list[str]:
    """Every way `rows` (header first) breaks REDCap's data dictionary rules."""
    rows = [list(r) for r in rows]
    if not rows or rows[0] != REDCAP_HEADER:
        return ["the header is not REDCap's 18 data dictionary columns"]
    col = {h: i for i, h in enumerate(REDCAP_HEADER)}
    problems: list[str] = []
    body = rows[1:]
    if not body or body[0][col["Variable / Field Name"]] != RECORD_ID:
        problems.append(f"the first field must be the record identifier '{RECORD_ID}'")
    elif body[0][col["Field Type"]] != "text":
        problems.append("the record identifier must be a text field")
    seen: set[str] = set()
    forms: list[str] = []
    for n, r in enumerate(body, start=2):
        name, form, ftype = (
            r[col[k]] for k in ("Variable / Field Name", "Form Name", "Field Type")
        )
        where = f"line {n} ({name})"
        if len(r) != len(REDCAP_HEADER):
            problems.append(f"{where}: {len(r)} cells, expected {len(REDCAP_HEADER)}")
            continue
        if not _NAME.fullmatch(name) or len(name) > MAX_VARIABLE_LENGTH:
            problems.append(f"{where}: variable names are lower-case letters, digits and "
                            f"underscores, start with a letter, at most {MAX_VARIABLE_LENGTH}")  # fmt: skip
        if name in seen:
            problems.append(f"{where}: variable name used twice")
        seen.add(name)
        if not _NAME.fullmatch(form):
            problems.append(f"{where}: form name '{form}' is not lower-case letters/digits/_")
        if forms and form != forms[-1] and form in forms:
            problems.append(f"{where}: the fields of form '{form}' are not contiguous")
        if not forms or form != forms[-1]:
            forms.append(form)
        if ftype not in FIELD_TYPES:
            problems.append(f"{where}: field type '{ftype}' does not exist in REDCap")
        choices = r[col["Choices, Calculations, OR Slider Labels"]]
        if ftype in CHOICE_TYPES:
            codes = [c.split(",", 1)[0].strip() for c in choices.split("|")] if choices else []
            if (
                not codes
                or not all(_CODE.fullmatch(c) for c in codes)
                or len(set(codes)) != len(codes)
            ):
                problems.append(f"{where}: choices must be 'code, label | ...' with unique codes")  # fmt: skip
        elif choices and ftype not in ("calc", "slider", "sql"):
            problems.append(f"{where}: choices on a {ftype} field")
        vtype = r[col["Text Validation Type OR Show Slider Number"]]
        if vtype and (ftype != "text" or vtype not in VALIDATION_TYPES):
            problems.append(f"{where}: validation '{vtype}' is not a REDCap text validation")
        if (r[col["Text Validation Min"]] or r[col["Text Validation Max"]]) and not vtype:
            problems.append(f"{where}: validation min/max without a validation type")
        for key in ("Identifier?", "Required Field?", "Matrix Ranking?"):
            if r[col[key]] not in ("", "y"):
                problems.append(f"{where}: column '{key}' must be 'y' or blank")
        for tag in re.findall(r"@[A-Z][A-Z0-9_-]*", r[col["Field Annotation"]]):
            if tag not in ACTION_TAGS:
                problems.append(f"{where}: action tag {tag} does not exist in REDCap")
    return problems
