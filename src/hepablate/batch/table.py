"""The batch table: one row = a case directory + a modality + planner options + optional
tissue/device/criteria override files and single tissue or device values; a sweep = a base row,
a list of cases and parameter grids, expanded into rows (docs/batch.md).

Everything is checked before any work starts (`validate_rows`): a missing case, an unknown
option or a value out of range is refused with an `InputError` naming the table, the row and
the field. A checked row becomes a `Task`: plain data with absolute paths, the full options and
its result key (`hepablate.batch.keys`).

Table files are CSV or YAML:

- CSV: one row per line; the columns ``id``, ``case``, ``modality``, ``plan``, ``tissues``,
  ``devices``, ``criteria``; a column ``tissue.PATH`` or ``device.PATH`` sets one value of the
  tissue or device table; every other column is a planner option (``grid_spacing_mm``,
  ``power_w``, ...). Cells are read as YAML scalars (``3``, ``true``, ``[1200, 1500]``); an
  empty cell means "not given".
- YAML: ``rows: [{case: ..., modality: ..., options: {...}, tissue: {PATH: value},
  device: {PATH: value}, ...}]``.
- Sweep (YAML): ``{base: ROW, cases: [DIR, ...], grid: {NAME: [v1, v2, ...], ...}}`` where a
  grid NAME is ``options.FIELD`` (or a bare option name), ``tissue.PATH`` or ``device.PATH``;
  the rows are every case times the Cartesian product of the grids.

Relative paths are relative to the table file's folder.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hepablate.errors import InputError

Mode = Literal["plan", "evaluate"]

#: The columns of a CSV table that are not planner options.
ROW_COLUMNS = ("id", "case", "modality", "plan", "tissues", "devices", "criteria")
MAX_ROWS = 100_000


class BatchRow(BaseModel):
    """One row of a batch table, as written by the user (paths not yet resolved)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, min_length=1, max_length=200)
    case: str = Field(..., min_length=1)
    modality: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    plan: str | None = None
    tissues: str | None = None
    devices: str | None = None
    criteria: str | None = None
    tissue: dict[str, Any] = Field(default_factory=dict)
    device: dict[str, Any] = Field(default_factory=dict)


class SweepSpec(BaseModel):
    """A base row, the cases to run it on, and parameter grids."""

    model_config = ConfigDict(extra="forbid")
    base: dict[str, Any] = Field(default_factory=dict)
    cases: list[str] = Field(default_factory=list)
    grid: dict[str, list[Any]] = Field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """A checked row: what one worker call needs (picklable plain data)."""

    row: int
    id: str
    mode: Mode
    modality: str
    case: str
    options: dict[str, Any]
    given: dict[str, Any]
    """The values the row set explicitly (options, tissue.*, device.*), for the results table."""
    plan: str | None = None
    tissues: str | None = None
    devices: str | None = None
    criteria: str | None = None
    tissue_values: dict[str, Any] = field(default_factory=dict)
    device_values: dict[str, Any] = field(default_factory=dict)
    key: str = ""


# -- reading ----------------------------------------------------------------------------------


def _cell(text: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "case" not in reader.fieldnames:
            raise InputError("expected a header row with a 'case' column", source=str(path))
        rows: list[dict[str, Any]] = []
        for n, rec in enumerate(reader, start=1):
            if None in rec:
                raise InputError(
                    "more cells than header columns", source=str(path), field=f"row {n}"
                )
            row: dict[str, Any] = {"options": {}, "tissue": {}, "device": {}}
            for col, raw in rec.items():
                col = (col or "").strip()
                value = _cell(raw or "")
                if value is None or col == "":
                    continue
                if col in ROW_COLUMNS:
                    row[col] = (raw or "").strip()  # as written: an id "007" stays "007"
                elif col.startswith("tissue."):
                    row["tissue"][col.removeprefix("tissue.")] = value
                elif col.startswith("device."):
                    row["device"][col.removeprefix("device.")] = value
                else:
                    row["options"][col.removeprefix("options.")] = value
            rows.append(row)
    return rows


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(
            f"not valid YAML ({' '.join(str(exc).split())})", source=str(path)
        ) from None


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a CSV or YAML batch table, as dicts (not yet checked)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("batch table not found", source=str(p))
    if p.suffix.lower() == ".csv":
        rows = _csv_rows(p)
    elif p.suffix.lower() in (".yaml", ".yml"):
        doc = _yaml(p)
        if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
            raise InputError("expected a mapping with a list 'rows'", source=str(p), field="rows")
        if set(doc) - {"rows"}:
            extra = sorted(set(doc) - {"rows"})[0]
            raise InputError("unknown key (a batch table holds 'rows')", source=str(p), field=extra)
        rows = doc["rows"]
    else:
        raise InputError("expected a .csv, .yaml or .yml batch table", source=str(p))
    if not rows:
        raise InputError("the table has no rows", source=str(p))
    if len(rows) > MAX_ROWS:
        raise InputError(f"{len(rows)} rows; at most {MAX_ROWS}", source=str(p))
    return rows


def _grid_target(name: str) -> tuple[str, str]:
    """('options'|'tissue'|'device', path) of a sweep grid name."""
    for prefix in ("options", "tissue", "device"):
        if name.startswith(prefix + "."):
            return prefix, name[len(prefix) + 1 :]
    return "options", name


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def read_sweep(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a sweep file: every case times the Cartesian product of the grids."""
    p = Path(path)
    if not p.is_file():
        raise InputError("sweep file not found", source=str(p))
    doc = _yaml(p)
    if not isinstance(doc, dict):
        raise InputError("expected a mapping with 'base', 'cases' and 'grid'", source=str(p))
    try:
        spec = SweepSpec.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise InputError(err["msg"], source=str(p), field=loc) from None
    cases = spec.cases or ([spec.base["case"]] if "case" in spec.base else [])
    if not cases:
        raise InputError("no case: give 'cases' or 'base.case'", source=str(p), field="cases")
    for name, values in spec.grid.items():
        if not values:
            raise InputError("an empty grid", source=str(p), field=f"grid.{name}")
    names = list(spec.grid)
    n_rows = len(cases) * math.prod(len(v) for v in spec.grid.values())
    if n_rows > MAX_ROWS:
        raise InputError(f"the sweep expands to {n_rows} rows; at most {MAX_ROWS}", source=str(p))
    rows: list[dict[str, Any]] = []
    for case in cases:
        for combo in itertools.product(*(spec.grid[n] for n in names)):
            row: dict[str, Any] = {
                **spec.base,
                "case": case,
                "options": dict(spec.base.get("options") or {}),
                "tissue": dict(spec.base.get("tissue") or {}),
                "device": dict(spec.base.get("device") or {}),
            }
            parts = [Path(str(case)).name]
            for name, value in zip(names, combo, strict=True):
                target, sub = _grid_target(name)
                row[target][sub] = value
                parts.append(f"{sub.rsplit('.', 1)[-1]}={_label(value)}")
            row.setdefault("id", None)
            if row["id"] is None:
                row["id"] = " ".join(parts)
            else:
                row["id"] = f"{row['id']} {' '.join(parts)}"
            rows.append(row)
    return rows


# -- checking ---------------------------------------------------------------------------------


def _path(base: Path, text: str) -> Path:
    p = Path(text).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _option_error(exc: ValidationError, modality: str) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"options.{loc}", f"not an option of {modality} planning"
    msg = err["msg"].removeprefix("Value error, ")
    return (f"options.{loc}" if loc else "options"), msg


def _set_value(raw: dict[str, Any], path: str, value: Any, top: set[str], what: str) -> None:
    """Set the `value` of the Quantity at dotted `path` of a table dumped to `raw`."""
    keys = path.split(".")
    if keys[0] not in top and "tissues" in top:
        keys = ["tissues", *keys]  # tissue.liver.… is tissue.tissues.liver.…
    node: Any = raw
    for i, k in enumerate(keys):
        if not isinstance(node, dict) or k not in node:
            raise ValueError(f"no entry '{'.'.join(keys[: i + 1])}' in the {what} table")
        node = node[k]
    if not isinstance(node, dict) or "value" not in node:
        raise ValueError(f"'{path}' is a group, not a value, of the {what} table")
    if isinstance(value, bool) or not isinstance(value, int | float | list):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int | float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    node["value"] = value


def tissue_table_for(file: str | None, values: dict[str, Any]) -> Any:
    """The tissue table of `file` (or the packaged one) with single `values` set; raises
    ValueError naming the entry, InputError for a bad file."""
    from hepablate.anatomy.tissues import TissueTable, load_tissue_table

    table = load_tissue_table(file)
    if not values:
        return table
    raw = table.model_dump(mode="json")
    for path, value in values.items():
        _set_value(raw, path, value, set(raw), "tissue")
    return TissueTable.model_validate(raw)


def device_table_for(file: str | None, values: dict[str, Any]) -> Any:
    """The device table of `file` (or the packaged one) with single `values` set."""
    from hepablate.devices.catalog import DeviceTable, load_device_table

    table = load_device_table(file)
    if not values:
        return table
    raw = table.model_dump(mode="json")
    for path, value in values.items():
        _set_value(raw, path, value, set(raw), "device")
    return DeviceTable.model_validate(raw)


def _check_values(kind: str, file: str | None, values: dict[str, Any], err) -> None:
    getter = tissue_table_for if kind == "tissue" else device_table_for
    for path, value in values.items():
        try:
            getter(file, {path: value})
        except (ValueError, ValidationError) as exc:
            msg = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise err(f"{kind}.{path}", msg) from None
        if isinstance(value, int | float) and value < 0:
            raise err(f"{kind}.{path}", f"must be >= 0, got {value:g}")


def _check_laser_limits(options: dict[str, Any], file: str | None, values: dict, err) -> None:
    """Laser power and energies within the (row's) device table's limits."""
    dev = device_table_for(file, values).laser
    lo, hi = dev.power_limits_w.value
    p = options.get("power_w")
    if p is not None and not lo <= p <= hi:
        raise err("options.power_w", f"power {p:g} W outside the device limits [{lo:g}, {hi:g}] W")
    elo, ehi = dev.energy_limits_j.value
    for e in options.get("energies_j") or []:
        if not elo <= e <= ehi:
            raise err(
                "options.energies_j",
                f"energy {e:g} J outside the device limits [{elo:g}, {ehi:g}] J",
            )


def validate_rows(
    rows: list[dict[str, Any]], mode: Mode, *, base_dir: str | Path, source: str = "table"
) -> list[Task]:
    """Check every row (see the module docstring) and return the tasks, keys included.
    Raises InputError at the first bad row, naming `source`, the row (1-based) and the field."""
    from hepablate.batch.keys import task_key
    from hepablate.modalities import get_modality, modality_names

    base = Path(base_dir)
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(rows, start=1):
        rid = raw.get("id") if isinstance(raw, dict) else None
        label = f"row {n} ({rid})" if rid else f"row {n}"

        def err(fld: str, msg: str, _label: str = label) -> InputError:
            return InputError(msg, source=source, field=f"{_label}: {fld}")

        if not isinstance(raw, dict):
            raise err("row", "expected a mapping of fields")
        try:
            row = BatchRow.model_validate(raw)
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(x) for x in e["loc"])
            msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
            raise err(loc or "row", msg) from None
        case = _path(base, row.case)
        if not case.is_dir():
            raise err("case", f"case directory not found: {case}")
        if not (case / "case.yaml").is_file():
            raise err("case", f"no case.yaml in {case}")
        plan_path = _path(base, row.plan) if row.plan else None
        modality = row.modality
        if mode == "evaluate":
            if plan_path is None:
                raise err("plan", "batch evaluate needs a plan file in each row")
            if row.options:
                first = sorted(row.options)[0]
                raise err(f"options.{first}", "batch evaluate takes no planner options")
            from hepablate.plans.model import read_plan

            try:
                plan_modality = read_plan(plan_path).modality
            except InputError as exc:
                raise err("plan", str(exc)) from None
            if modality is not None and modality != plan_modality:
                raise err("modality", f"'{modality}' but the plan is {plan_modality}")
            modality = plan_modality
        elif plan_path is not None:
            raise err("plan", "batch plan makes the plan; use batch evaluate for plan files")
        modality = modality or "ire"
        if modality not in modality_names():
            raise err(
                "modality", f"expected one of {', '.join(modality_names())}, got '{modality}'"
            )
        options: dict[str, Any] = {}
        if mode == "plan":
            try:
                model = get_modality(modality).options_model.model_validate(row.options)
            except ValidationError as exc:
                raise err(*_option_error(exc, modality)) from None
            options = model.model_dump(mode="json")
        files: dict[str, str | None] = {}
        for name in ("tissues", "devices", "criteria"):
            text = getattr(row, name)
            p = _path(base, text) if text else None
            if p is not None and not p.is_file():
                raise err(name, f"file not found: {p}")
            files[name] = None if p is None else str(p)
        try:
            _check_values("tissue", files["tissues"], row.tissue, err)
            _check_values("device", files["devices"], row.device, err)
            if files["criteria"]:
                from hepablate.evaluation.criteria import load_criteria

                load_criteria(files["criteria"])
        except InputError as exc:
            if exc.source == source:
                raise
            raise err("tissues/devices/criteria", str(exc)) from None
        if modality == "laser" and mode == "plan":
            _check_laser_limits(options, files["devices"], row.device, err)
        given = {
            **{f"options.{k}": v for k, v in row.options.items()},
            **{f"tissue.{k}": v for k, v in row.tissue.items()},
            **{f"device.{k}": v for k, v in row.device.items()},
        }
        task = Task(
            row=n,
            id=row.id or f"row{n}",
            mode=mode,
            modality=modality,
            case=str(case),
            options=options,
            given=given,
            plan=None if plan_path is None else str(plan_path),
            tissues=files["tissues"],
            devices=files["devices"],
            criteria=files["criteria"],
            tissue_values=dict(row.tissue),
            device_values=dict(row.device),
        )
        if task.id in seen:
            raise err("id", f"the same id as row {seen[task.id]}")
        seen[task.id] = n
        tasks.append(Task(**{**task.__dict__, "key": task_key(task)}))
    return tasks


def load_tasks(path: str | Path, mode: Mode, *, sweep: bool = False) -> list[Task]:
    """Read and check a batch table (or a sweep file): the tasks to run."""
    p = Path(path)
    rows = read_sweep(p) if sweep else read_table(p)
    return validate_rows(rows, mode, base_dir=p.resolve().parent, source=str(p))
