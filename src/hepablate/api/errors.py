"""Error bodies and the responses each route declares in the OpenAPI document.

Every error the API returns has one body shape, `ErrorBody`: `detail` (one line), and for
invalid data (422) the `field` and `where` it concerns. FastAPI's own request validation
(a list of pydantic errors) is converted to the same shape, so the document describes what
the API really returns.
"""

# No `from __future__ import annotations`: FastAPI reads these models' real types.
import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field

#: Ids, versions and every integer column are PostgreSQL INTEGER (32-bit signed).
INT32_MAX = 2**31 - 1
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    """Only `YYYY-MM-DD` (or a date): pydantic would also take 0, 1.5 or "20230320"."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("expected a date YYYY-MM-DD")


def _number(value: Any) -> Any:
    """A JSON number (not a boolean or a string) for a decimal field."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("expected a number")
    return value


#: A date in a query or body: `YYYY-MM-DD` only.
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
#: A decimal number in a body: a JSON number only.
JsonDecimal = Annotated[Decimal, BeforeValidator(_number)]


class ErrorBody(BaseModel):
    detail: str = Field(description="what went wrong, in one line")
    field: str | None = Field(None, description="the field concerned (422)")
    where: str | None = Field(None, description="the record, file or request part (422)")


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can fail with `codes`."""
    text = {
        401: "no valid bearer token",
        403: "the role or site does not allow this (nothing was changed)",
        404: "no such record (or one of another site)",
        409: "version conflict, or the record still has live children",
        422: "invalid data: `field` names the field",
        429: "too many failed logins: retry after `Retry-After` seconds",
    }
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


def _loc_text(loc: Any) -> tuple[str | None, str | None]:
    parts = [str(x) for x in loc]
    where = parts[0] if parts else None
    field = ".".join(parts[1:]) or None
    return field, where


def install_validation_handler(app: FastAPI) -> None:
    """Request validation errors (FastAPI/pydantic) as one `ErrorBody` (the first error)."""

    @app.exception_handler(RequestValidationError)
    def _request_invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field, where = _loc_text(tuple(first.get("loc", ())))
        msg = " ".join(str(first.get("msg", "invalid request")).split())
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        return JSONResponse({"detail": msg + more, "field": field, "where": where}, status_code=422)


def install_http_error_handler(app: FastAPI) -> None:
    """HTTP errors as `ErrorBody`; a body that cannot be parsed at all (FastAPI's 400) is
    invalid data like any other: 422."""
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    def _http_error(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = 422 if exc.status_code == 400 else exc.status_code
        body: dict[str, Any] = {"detail": " ".join(str(exc.detail).split())}
        if code == 422:
            body |= {"field": None, "where": "body"}
        return JSONResponse(body, status_code=code, headers=getattr(exc, "headers", None))


_DECLARED: dict[int, set[str]] = {}


def _query_names(dependant: Any) -> set[str]:
    names = {str(p.alias) for p in getattr(dependant, "query_params", [])}
    for sub in getattr(dependant, "dependencies", []):
        names |= _query_names(sub)
    return names


def _declared_query(route: Any) -> set[str] | None:
    """Query parameter names `route` declares (its dependencies' too, and the filters listed
    in its `openapi_extra`); None for a route without a dependant (docs pages)."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    key = id(route)
    if key not in _DECLARED:
        extra = (getattr(route, "openapi_extra", None) or {}).get("parameters", [])
        _DECLARED[key] = _query_names(dependant) | {
            str(p["name"]) for p in extra if p.get("in") == "query"
        }
    return _DECLARED[key]


def reject_nul(request: Request) -> None:
    """Query parameters the route does not declare, and a NUL character in the path or query
    string (PostgreSQL cannot store it), are invalid (422) instead of silently ignored."""
    from hepablate.errors import InputError

    where = f"{request.method} {request.url.path}"
    if "\x00" in request.url.path or any("\x00" in v for v in request.query_params.values()):
        raise InputError("holds a NUL character", source=where)
    declared = _declared_query(request.scope.get("route"))
    if declared is not None:
        for key in request.query_params:
            if key not in declared:
                raise InputError(
                    f"unknown query parameter; expected one of {', '.join(sorted(declared))}",
                    source=where,
                    field=key,
                )
