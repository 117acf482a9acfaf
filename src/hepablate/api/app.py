"""The registry HTTP API (FastAPI). Every endpoint but `POST /auth/token` needs
`Authorization: Bearer <token>`; 401 without a valid token, 403 when the role or site does
not allow the request (nothing is changed), 404 for unknown or other-site-invisible ids,
409 on a version conflict, 422 on invalid data. OpenAPI docs at /docs.

Resources are shaped for the web pages to come: each entity has a paged, filterable list
(`GET /patients?page=1&page_size=50&diagnosis=hcc`), a record (`GET /patients/{id}`), its
history from the audit trail, create (`POST`), partial update (`PATCH`, with the `version`
last read) and soft delete (`DELETE ...?version=N`); `GET /schema/{entity}` describes the
fields (types, choices, ranges, units) so forms can be generated.
"""

# No `from __future__ import annotations`: FastAPI must see the real (locally built) types.
import json
import time
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from hepablate import __version__
from hepablate.api.errors import (
    INT32_MAX,
    IsoDate,
    install_http_error_handler,
    install_validation_handler,
    reject_nul,
    responses,
)
from hepablate.api.models import (
    TokenRequest,
    TokenResponse,
    UserCreate,
    body_models,
    filterable,
    py_type,
)
from hepablate.core.cache import ByteBudgetCache
from hepablate.errors import InputError
from hepablate.registry import audit
from hepablate.registry.auth import (
    ADMIN_ROLES,
    AUDIT_ROLES,
    DELETE_ROLES,
    WRITE_ROLES,
    Actor,
    PermissionDenied,
    actor_for_token,
    add_user,
    authenticate,
    issue_token,
    revoke_token,
)
from hepablate.registry.db import connect, write_transaction
from hepablate.registry.models import ENTITIES, PARENTS, ROLES, AuditEntry, Site, User
from hepablate.registry.service import Conflict, NotFound, Registry
from hepablate.registry.throttle import LoginThrottle
from hepablate.registry.validation import (
    ValidationError,
    coerce_value,
    derived_columns,
    user_columns,
)

TOKEN_CACHE_S = 10.0
#: Tokens remembered at most (least recently used dropped first).
TOKEN_CACHE_ENTRIES = 10_000
_bearer = HTTPBearer(auto_error=False, description="token from POST /auth/token")
#: A record id in a path: 1 to the largest PostgreSQL INTEGER (larger ones are 422, not 500).
RecordId = Annotated[int, Path(ge=1, le=INT32_MAX, description="record id")]


def _json_default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, date):  # datetime too
        return v.isoformat()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


class _RowsJSON(JSONResponse):
    """JSON of database rows: dates and decimals converted by `json.dumps(default=...)`,
    without FastAPI's per-value encoder or response-model validation (the list hot path)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, default=_json_default, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")


def _json(obj: Any, status_code: int = 200) -> JSONResponse:
    return _RowsJSON(obj, status_code=status_code)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, Decimal):
            v = float(v)
        elif isinstance(v, date):  # datetime too
            v = v.isoformat()
        out[k] = v
    return out


def create_app(url: str | None = None, throttle: LoginThrottle | None = None) -> FastAPI:
    """The API on the registry at `url`; `throttle` limits failed logins (default limits of
    `LoginThrottle`)."""
    engine: Engine = connect(url)
    throttle = throttle or LoginThrottle()
    # token -> (actor, valid until): saves a query per request. Logout through this server
    # evicts at once; a revocation or deactivation made elsewhere applies within TOKEN_CACHE_S.
    token_cache: ByteBudgetCache[str, tuple[Actor, float]] = ByteBudgetCache(
        max_entries=TOKEN_CACHE_ENTRIES
    )
    app = FastAPI(
        title="hepablate outcomes registry",
        version=__version__,
        description=__doc__,
        dependencies=[Depends(reject_nul)],
    )
    install_validation_handler(app)
    install_http_error_handler(app)

    # Reads run inline on the event loop (async def): they are short, indexed and bounded
    # (page_size <= 500), and skipping two thread-pool hops per request matters on a 2-core
    # machine. Writes, login (Argon2) and the full-chain verify run in the thread pool.
    async def actor_dep(
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Actor:
        if cred is None or cred.scheme.lower() != "bearer":
            raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
        now = time.monotonic()
        hit = token_cache.get(cred.credentials)
        if hit is not None and hit[1] > now:
            return hit[0]
        with engine.connect() as conn:
            actor = actor_for_token(conn, cred.credentials)
        if actor is not None:
            token_cache.put(cred.credentials, (actor, now + TOKEN_CACHE_S))
        if actor is None:
            raise HTTPException(
                401, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"}
            )
        return actor

    ActorDep = Annotated[Actor, Depends(actor_dep)]

    def role_dep(roles: frozenset[str], what: str) -> Callable[[Actor], Awaitable[Actor]]:
        """A dependency that checks the role before the body is validated (an auditor's
        invalid POST is 403, not 422)."""

        async def dep(actor: ActorDep) -> Actor:
            actor.require(roles, what)
            return actor

        return dep

    app.state.role_dep = role_dep

    @app.exception_handler(PermissionDenied)
    def _forbidden(_r: Request, exc: PermissionDenied) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(NotFound)
    def _not_found(_r: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    def _conflict(_r: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(IntegrityError)
    def _integrity(_r: Request, exc: IntegrityError) -> JSONResponse:
        # A race the service checks could not see (e.g. two creates of one patient code).
        return JSONResponse({"detail": "conflicts with an existing record"}, status_code=409)

    @app.exception_handler(InputError)
    def _invalid(_r: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "field": exc.field, "where": exc.source}, status_code=422
        )

    @app.post(
        "/auth/token",
        response_model=TokenResponse,
        tags=["auth"],
        responses=responses(401, 422, 429),
    )
    def token(body: TokenRequest, request: Request) -> TokenResponse:
        """Exchange username and password for a bearer token (valid 12 hours). Failed
        logins are throttled per username and per client (429 with `Retry-After`)."""
        client = request.client.host if request.client else "unknown"
        wait = throttle.retry_after(body.username, client)
        if wait > 0:
            raise HTTPException(
                429,
                "too many failed logins; try again later",
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            )
        # Argon2 verification (~0.1-0.4 s) runs outside the write lock; unknown usernames
        # cost the same verification (auth.authenticate).
        with engine.connect() as conn:
            actor = authenticate(conn, body.username, body.password)
        if actor is None:
            throttle.failure(body.username, client)
            raise HTTPException(401, "wrong username or password")
        throttle.success(body.username)
        with write_transaction(engine) as conn:
            tok, expires = issue_token(conn, actor)
        return TokenResponse(
            access_token=tok,
            expires_at=str(expires),
            username=actor.name,
            role=actor.role,
            site=actor.site,
        )

    @app.post("/auth/logout", tags=["auth"], status_code=204, responses=responses(401))
    def logout(
        actor: ActorDep,
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        """Revoke the token used for this request."""
        with write_transaction(engine) as conn:
            revoke_token(conn, cred.credentials)  # type: ignore[union-attr]
        token_cache.pop(cred.credentials)  # type: ignore[union-attr]

    @app.get("/me", tags=["auth"], responses=responses(401))
    def me(actor: ActorDep) -> dict[str, Any]:
        return {"username": actor.name, "role": actor.role, "site": actor.site}

    @app.get("/sites", tags=["admin"], responses=responses(401))
    def sites(actor: ActorDep) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(select(Site).order_by(Site.code)).mappings().all()
        return [dict(r) for r in rows if actor.can_see(r["code"])]

    @app.get("/users", tags=["admin"], responses=responses(401, 403))
    def users(actor: ActorDep) -> list[dict[str, Any]]:
        actor.require(ADMIN_ROLES, "list users")
        with engine.connect() as conn:
            rows = (
                conn.execute(
                    select(User.id, User.username, User.role, User.site, User.active).order_by(
                        User.id
                    )
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows if actor.site is None or r["site"] == actor.site]

    admin_check = role_dep(ADMIN_ROLES, "create users")

    @app.post("/users", tags=["admin"], status_code=201, responses=responses(401, 403, 409, 422))
    def create_user(
        actor: Annotated[Actor, Depends(admin_check)], body: UserCreate
    ) -> dict[str, Any]:
        if actor.site is not None and body.site != actor.site:
            raise PermissionDenied(
                f"an administrator of site '{actor.site}' may only add users of that site"
            )
        if body.role not in ROLES:
            raise InputError(f"expected one of {', '.join(ROLES)}", field="role")
        with write_transaction(engine) as conn:
            uid = add_user(conn, body.username, body.password, body.role, body.site)
            audit.append(
                conn,
                actor.name,
                [
                    audit.Change(
                        "create",
                        "users",
                        uid,
                        body.site,
                        None,
                        {"username": body.username, "role": body.role, "site": body.site},
                    )
                ],
            )
        return {"id": uid, "username": body.username, "role": body.role, "site": body.site}

    def _audit_rows(actor: Actor, conds: list[Any], page: int, page_size: int) -> dict[str, Any]:
        actor.require(AUDIT_ROLES | {"clinician"}, "read the audit trail")
        if actor.site is not None:
            conds.append(AuditEntry.site == actor.site)
        t = AuditEntry.__table__
        with engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(t).where(*conds)) or 0
            rows = conn.execute(
                select(t)
                .where(*conds)
                .order_by(t.c.id)
                .offset((page - 1) * page_size)
                .limit(page_size)
            ).mappings()
            items = [
                dict(r)
                | {
                    "at": r["at"].isoformat(),
                    "old_values": None if r["old_values"] is None else json.loads(r["old_values"]),
                    "new_values": None if r["new_values"] is None else json.loads(r["new_values"]),
                }
                for r in rows
            ]
        return {"items": items, "total": total, "page": page, "page_size": page_size}

    @app.get("/audit", tags=["audit"], responses=responses(401, 403, 422))
    def audit_list(
        actor: ActorDep,
        table: str | None = Query(None, max_length=64),
        record_id: int | None = Query(None, ge=1, le=INT32_MAX),
        user: str | None = Query(None, max_length=200, description="actor name"),
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(50, ge=1, le=500),
    ) -> dict[str, Any]:
        """Audit-trail rows, oldest first (old/new values parsed; the hash covers their
        canonical JSON text as stored)."""
        conds: list[Any] = []
        if table:
            conds.append(AuditEntry.table_name == table)
        if record_id is not None:
            conds.append(AuditEntry.record_id == record_id)
        if user:
            conds.append(AuditEntry.actor == user)
        return _audit_rows(actor, conds, page, page_size)

    @app.get("/audit/verify", tags=["audit"], responses=responses(401, 403, 422))
    def audit_verify(
        actor: ActorDep,
        expect_head: str | None = Query(
            None, pattern="^[0-9a-f]{64}$", description="a head hash published earlier"
        ),
    ) -> dict[str, Any]:
        """Recompute the whole hash chain and replay it against the clinical tables; `ok`
        false names the first broken row, a missing expected head or a direct table edit."""
        actor.require(AUDIT_ROLES, "verify the audit trail")
        return audit.verify(engine, expect_head=expect_head).to_dict()

    @app.get("/schema", tags=["schema"], responses=responses(401))
    def schema_all(actor: ActorDep) -> dict[str, Any]:
        return {t: _schema(t) for t in ENTITIES}

    def _schema(table: str) -> dict[str, Any]:
        fields = []
        for c in user_columns(table):
            info = c.info
            fields.append(
                {
                    "name": c.name,
                    "type": py_type(c).__name__,
                    "required": not c.nullable
                    and "default" not in info
                    and c.name not in derived_columns(table),
                    "derived": c.name in derived_columns(table),
                    "choices": info.get("choices"),
                    "min": info.get("ge"),
                    "max": info.get("le"),
                    "description": info.get("doc"),
                    "references": PARENTS[table].get(c.name),
                }
            )
        return {"entity": table, "fields": fields, "filters": filterable(table)}

    for table in ENTITIES:
        _add_entity(app, engine, table, ActorDep, body_models(table), _schema, _audit_rows)
    return app


def _add_entity(
    app: FastAPI,
    engine: Engine,
    table: str,
    ActorDep: Any,  # noqa: N803
    models: tuple[type[BaseModel], type[BaseModel]],
    schema_fn: Any,
    audit_fn: Any,
) -> None:
    create_m, update_m = models
    write_check = app.state.role_dep(WRITE_ROLES, "create records")
    change_check = app.state.role_dep(WRITE_ROLES, "change records")
    delete_check = app.state.role_dep(DELETE_ROLES, "delete records")
    filters = filterable(table)
    cols = {c.name: c for c in user_columns(table)}
    tag = table

    async def list_records(
        request: Request,
        actor: ActorDep,
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(50, ge=1, le=500),
        date_from: IsoDate | None = Query(None, description="first date (main date column)"),
        date_to: IsoDate | None = Query(None, description="last date (main date column)"),
        include_deleted: bool = Query(False, description="include soft-deleted records"),
    ) -> JSONResponse:
        f = {}
        for k, v in request.query_params.items():
            if k in ("page", "page_size", "date_from", "date_to", "include_deleted"):
                continue
            if k not in filters:
                raise ValidationError(f"GET /{table}", k, f"not a filter; use one of {filters}")
            f[k] = v if k == "site" else coerce_value(cols[k], v, f"GET /{table}")
        if include_deleted:
            actor.require(AUDIT_ROLES, "list deleted records")
        pg = Registry(engine, actor).list(
            table,
            filters=f,
            date_from=date_from,
            date_to=date_to,
            page=page,
            page_size=page_size,
            include_deleted=include_deleted,
        )
        return _json(
            {
                "items": pg.items,
                "total": pg.total,
                "page": pg.page,
                "page_size": pg.page_size,
            }
        )

    filter_params = [
        {
            "name": k,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "equality filter",
        }
        for k in filters
    ]
    app.add_api_route(
        f"/{table}",
        list_records,
        methods=["GET"],
        tags=[tag],
        summary=f"List {table} (paged, filtered)",
        openapi_extra={"parameters": filter_params},
        responses=responses(401, 403, 422),
    )

    async def get_record(record_id: RecordId, actor: ActorDep) -> JSONResponse:
        return _json(Registry(engine, actor).get(table, record_id))

    app.add_api_route(
        f"/{table}/{{record_id}}",
        get_record,
        methods=["GET"],
        tags=[tag],
        summary=f"One {table} record",
        responses=responses(401, 404, 422),
    )

    def create_record(
        actor: Annotated[Actor, Depends(write_check)],
        body: create_m,  # type: ignore[valid-type]
    ) -> dict[str, Any]:
        data = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
        return _jsonable(Registry(engine, actor).create(table, data))

    app.add_api_route(
        f"/{table}",
        create_record,
        methods=["POST"],
        tags=[tag],
        status_code=201,
        summary=f"Create a {table} record",
        responses=responses(401, 403, 404, 409, 422),
    )

    def update_record(
        actor: Annotated[Actor, Depends(change_check)],
        record_id: RecordId,
        body: update_m,  # type: ignore[valid-type]
    ) -> dict[str, Any]:
        data = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
        version = data.pop("version")
        return _jsonable(Registry(engine, actor).update(table, record_id, data, version))

    app.add_api_route(
        f"/{table}/{{record_id}}",
        update_record,
        methods=["PATCH"],
        tags=[tag],
        summary=f"Change a {table} record (409 if `version` is stale)",
        responses=responses(401, 403, 404, 409, 422),
    )

    def delete_record(
        actor: Annotated[Actor, Depends(delete_check)],
        record_id: RecordId,
        version: int = Query(..., ge=1, le=INT32_MAX, description="version last read"),
    ) -> dict[str, Any]:
        return _jsonable(Registry(engine, actor).delete(table, record_id, version))

    app.add_api_route(
        f"/{table}/{{record_id}}",
        delete_record,
        methods=["DELETE"],
        tags=[tag],
        summary=f"Soft-delete a {table} record",
        responses=responses(401, 403, 404, 409, 422),
    )

    def history(
        record_id: RecordId,
        actor: ActorDep,
        page: int = Query(1, ge=1, le=1_000_000),
        page_size: int = Query(50, ge=1, le=500),
    ) -> dict[str, Any]:
        Registry(engine, actor).get(table, record_id, include_deleted=True)  # site check
        return audit_fn(
            actor,
            [AuditEntry.table_name == table, AuditEntry.record_id == record_id],
            page,
            page_size,
        )

    app.add_api_route(
        f"/{table}/{{record_id}}/history",
        history,
        methods=["GET"],
        tags=[tag],
        summary=f"Audit history of a {table} record",
        responses=responses(401, 403, 404, 422),
    )

    def schema(actor: ActorDep) -> dict[str, Any]:
        return schema_fn(table)

    app.add_api_route(
        f"/schema/{table}",
        schema,
        methods=["GET"],
        tags=["schema"],
        summary=f"Fields of {table}",
        responses=responses(401),
    )


def app_from_env() -> FastAPI:
    """App factory for multi-process serving (`hepablate serve --workers N`)."""
    import os

    return create_app(os.environ.get("HEPABLATE_SERVE_DB"))
