"""Acceptance criteria as data (src/hepablate/data/criteria.yaml), shared by every modality.

Each criterion holds one metric of an evaluation to a limit (a number or a named reference
such as the case's margin or the generator's current limit) at a level. Evaluated, they give a
table (`CriterionResult`, one row per criterion) that goes straight into the plan and its
report, and the warnings of the criteria that fail. The status rule is one for all modalities:
a plan is feasible only when no `error`-level criterion fails and no error-level warning was
raised (`plan_status`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hepablate.anatomy.tissues import Quantity
from hepablate.core.provenance import Parameter
from hepablate.core.units import unit_of
from hepablate.errors import InputError, input_error_from_validation
from hepablate.plans.model import CriterionResult, PlanWarning

Level = Literal["info", "warning", "error"]


class CriterionSpec(BaseModel):
    """One criterion of criteria.yaml."""

    model_config = ConfigDict(extra="forbid")
    code: str
    metric: str
    min: float | str | None = None
    max: float | str | None = None
    tolerance: float = Field(0.0, ge=0)
    level: Level
    modalities: list[str]
    message: str
    source: str
    detail_codes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_bound(self) -> CriterionSpec:
        if (self.min is None) == (self.max is None):
            raise ValueError(f"criterion '{self.code}' needs exactly one of min and max")
        return self

    @property
    def direction(self) -> Literal["min", "max"]:
        return "min" if self.min is not None else "max"

    @property
    def bound(self) -> float | str:
        b = self.min if self.min is not None else self.max
        assert b is not None
        return b


class CriteriaTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: Literal[1]
    required_coverage: Quantity[float]
    criteria: list[CriterionSpec]

    def for_modality(self, modality: str) -> list[CriterionSpec]:
        return [c for c in self.criteria if modality in c.modalities]

    def parameters(self) -> list[Parameter]:
        out = [
            Parameter(
                name="criteria.required_coverage",
                value=self.required_coverage.value,
                source=self.required_coverage.source,
            )
        ]
        for c in self.criteria:
            out.append(
                Parameter(
                    name=f"criteria.{c.code}",
                    value=f"{c.metric} {'>=' if c.direction == 'min' else '<='} {c.bound}",
                    unit=unit_of(c.metric),
                    source=f"{c.level}; {c.source}",
                )
            )
        return out


@lru_cache(maxsize=4)
def _load(text: str, source: str) -> CriteriaTable:
    try:
        raw = yaml.safe_load(text)
        return CriteriaTable.model_validate(raw)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({exc})", source=source) from None
    except ValidationError as exc:
        raise input_error_from_validation(exc, source=source) from None


def load_criteria(path: str | Path | None = None) -> CriteriaTable:
    """The packaged criteria table, or a user's file of the same shape."""
    if path is None:
        text = resources.files("hepablate.data").joinpath("criteria.yaml").read_text()
        return _load(text, "criteria.yaml")
    p = Path(path)
    try:
        return _load(p.read_text(encoding="utf-8"), str(p))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the criteria table ({exc})", source=str(p)) from None


def _limit(spec: CriterionSpec, refs: Mapping[str, float]) -> float | None:
    b = spec.bound
    if isinstance(b, str):
        return refs.get(b)
    return float(b)


def _passes(spec: CriterionSpec, value: float, limit: float) -> bool:
    if spec.direction == "min":
        return value >= limit - spec.tolerance
    return value <= limit + spec.tolerance


def evaluate_criteria(
    table: CriteriaTable,
    modality: str,
    metrics: Mapping[str, float | None],
    refs: Mapping[str, float],
) -> list[CriterionResult]:
    """One row per criterion of `modality`. A criterion whose metric is missing (e.g. no Monte
    Carlo samples were asked for) or whose reference is not known is not applicable and left
    out; a NaN value fails."""
    rows: list[CriterionResult] = []
    for spec in table.for_modality(modality):
        limit = _limit(spec, refs)
        value = metrics.get(spec.metric)
        if limit is None or value is None:
            continue
        ok = not math.isnan(value) and _passes(spec, value, limit)
        ctx: dict[str, Any] = {k: v for k, v in metrics.items() if v is not None}
        ctx.update(refs)
        ctx.update(
            value=value,
            limit=limit,
            value_pct=100.0 * value,
            limit_pct=100.0 * limit,
            outside_pct=100.0 * (1.0 - value),
            required_pct=100.0 * refs.get("required_coverage", float("nan")),
        )
        try:
            message = spec.message.format(**ctx)
        except (KeyError, ValueError, IndexError):
            message = f"{spec.metric} = {value:g} ({spec.direction} {limit:g})"
        rows.append(
            CriterionResult(
                code=spec.code,
                metric=spec.metric,
                value=None if math.isnan(value) else round(float(value), 6),
                limit=float(limit),
                direction=spec.direction,
                level=spec.level,
                passed=ok,
                message="" if ok else message,
                unit=unit_of(spec.metric),
            )
        )
    return rows


def criteria_warnings(
    table: CriteriaTable, rows: list[CriterionResult], detailed: list[PlanWarning]
) -> list[PlanWarning]:
    """Warnings of the failed criteria, except where the modality raised a more detailed
    warning of its own (`detail_codes`, or the criterion's own code)."""
    specs = {c.code: c for c in table.criteria}
    have = {w.code for w in detailed}
    out = []
    for r in rows:
        if r.passed:
            continue
        codes = {r.code, *specs[r.code].detail_codes}
        if codes & have:
            continue
        out.append(PlanWarning(level=r.level, code=r.code, message=r.message))
    return out


def plan_status(
    table: CriteriaTable, rows: list[CriterionResult], warnings: list[PlanWarning]
) -> tuple[Literal["feasible", "infeasible"], list[str]]:
    """The status rule of every modality, and the messages that make a plan infeasible: the
    failed error-level criteria, then error-level warnings that no failed criterion stands
    for already."""
    specs = {c.code: c for c in table.criteria}
    failed = [r for r in rows if not r.passed and r.level == "error"]
    covered = {c for r in failed for c in (r.code, *specs[r.code].detail_codes)}
    reasons = [r.message for r in failed]
    reasons += [w.message for w in warnings if w.level == "error" and w.code not in covered]
    return ("infeasible" if reasons else "feasible"), reasons
