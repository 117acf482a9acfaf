"""Error bodies and the responses each route declares in the OpenAPI document.

Every error the API returns has one body shape, `ErrorBody`: `detail` (one line), and for
invalid data (422) the `field` and `where` it concerns. FastAPI's own request validation
(a list of pydantic errors) is converted to the same shape, so the document describes what
the API really returns.
"""

# No `from __future__ import annotations`: FastAPI reads these models' real types.
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

#: Ids, versions and every integer column are PostgreSQL INTEGER (32-bit signed).
INT32_MAX = 2**31 - 1


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


def _loc_text(loc: tuple[Any, ...] | list[Any]) -> tuple[str | None, str | None]:
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


def reject_nul(request: Request) -> None:
    """A NUL character in the path or query string is invalid (PostgreSQL cannot store it)."""
    from hepablate.errors import InputError

    if "\x00" in request.url.path or any("\x00" in v for v in request.query_params.values()):
        raise InputError("holds a NUL character", source=f"{request.method} {request.url.path}")
