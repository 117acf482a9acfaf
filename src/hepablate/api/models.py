"""Request and response models of the registry API, built from the registry's columns:
field types, ranges (integers bounded to PostgreSQL INTEGER), lengths, strict booleans and
integers, ISO dates; PATCH models where a required column may be left out but not nulled."""

# No `from __future__ import annotations`: FastAPI must see the real (locally built) types.
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import Boolean, Date, Integer, Numeric

from hepablate.api.errors import INT32_MAX, IsoDate, JsonDecimal
from hepablate.registry.models import PARENTS
from hepablate.registry.validation import derived_columns, user_columns

_NO_NUL = r"^[^\x00]*$"


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64, pattern=_NO_NUL)
    password: str = Field(max_length=1024, pattern=_NO_NUL)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: str
    username: str
    role: str
    site: str | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64, pattern=_NO_NUL)
    password: str = Field(min_length=10, max_length=1024, pattern=_NO_NUL)
    role: str = Field(max_length=32, pattern=_NO_NUL)
    site: str | None = Field(None, min_length=1, max_length=64, pattern=_NO_NUL)


def py_type(col: Any) -> Any:
    t = col.type
    if isinstance(t, Boolean):
        return bool
    if isinstance(t, Integer):
        return int
    if isinstance(t, Numeric):
        return Decimal if t.asdecimal else float
    if isinstance(t, Date):
        return date
    return str


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _bounds(col: Any, typ: Any) -> dict[str, Any]:
    """Field constraints of a column: range, integer width, length, choices."""
    kw: dict[str, Any] = {}
    if typ is int:
        kw["ge"] = max(col.info.get("ge", -INT32_MAX - 1), -INT32_MAX - 1)
        kw["le"] = min(col.info.get("le", INT32_MAX), INT32_MAX)
    elif typ in (float, Decimal):
        if col.info.get("ge") is not None:
            kw["ge"] = col.info["ge"]
        if col.info.get("le") is not None:
            kw["le"] = col.info["le"]
        kw["allow_inf_nan"] = False
    elif typ is str:
        length = getattr(col.type, "length", None)
        if length:
            kw["max_length"] = length
        kw["pattern"] = _NO_NUL
    return kw


def body_models(table: str) -> tuple[type[BaseModel], type[BaseModel]]:
    create_fields: dict[str, Any] = {}
    update_fields: dict[str, Any] = {
        "version": (int, Field(ge=1, le=INT32_MAX, description="version last read"))
    }
    for c in user_columns(table):
        if c.name in derived_columns(table):
            continue
        typ = py_type(c)
        desc = c.info.get("doc", "")
        if "choices" in c.info:
            desc += " (" + "|".join(c.info["choices"]) + ")"
        required = not c.nullable and "default" not in c.info
        kw = _bounds(c, typ)
        if typ in (bool, int):
            kw["strict"] = True  # no "yes", 1.0 or "7" for a boolean or an integer
        typ = {date: IsoDate, Decimal: JsonDecimal}.get(typ, typ)
        create_fields[c.name] = (
            typ if required else typ | None,
            Field(... if required else None, description=desc, **kw),
        )
        # PATCH: every field may be left out; a required column may not be set to null.
        nullable = c.nullable or "default" in c.info
        update_fields[c.name] = (
            typ | None if nullable else typ,
            Field(None, description=desc, json_schema_extra=_no_default, **kw)
            if not nullable
            else Field(None, description=desc, **kw),
        )
    create_fields["site"] = (
        str | None,
        Field(None, max_length=64, pattern=_NO_NUL, description="site (patients only)"),
    )
    if table == "patients":
        create_fields["nhs_number"] = (
            str | None,
            Field(
                None,
                max_length=32,
                pattern=_NO_NUL,
                description="raw NHS number; stored only as keyed hash",
            ),
        )
        update_fields["nhs_number"] = (str | None, Field(None, max_length=32, pattern=_NO_NUL))
    cfg = ConfigDict(extra="forbid")
    name = "".join(p.title() for p in table.split("_"))
    return (
        create_model(f"{name}Create", __config__=cfg, **create_fields),
        create_model(f"{name}Update", __config__=cfg, **update_fields),
    )


def filterable(table: str) -> list[str]:
    out = ["site", *PARENTS[table]]
    for c in user_columns(table):
        if "choices" in c.info or isinstance(c.type, Boolean):
            out.append(c.name)
    if table == "patients":
        out.append("patient_code")
    if table == "tumours":
        out.append("tumour_code")
    return out
