"""A bounded schemathesis run against the registry API (test_registry_fuzz_api.py).

Every operation of the OpenAPI document gets `examples` positive and `examples` negative
(schema-violating) cases from a fixed seed, sent with an administrator's token, an auditor's
token or none. Each response is checked against the document (status code declared, content
type, response schema, negative data rejected) and never 5xx; a refused request (4xx) must
leave the audit trail, and so the database, unchanged; at the end the trail verifies and
replays to the tables.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select


@dataclass
class FuzzStats:
    requests: int = 0
    server_errors: int = 0
    violations: int = 0
    changed_on_refusal: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.requests} requests in {self.seconds:.1f} s: {self.server_errors} 5xx, "
            f"{self.violations} schema violations, {self.changed_on_refusal} refused requests "
            f"that changed data; statuses {dict(sorted(self.statuses.items()))}"
        )


def _audit_rows(engine: Engine) -> int:
    from hepablate.registry.models import AuditEntry

    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def run_api_fuzz(url: str, examples: int, *, seed: int = 14) -> FuzzStats:
    """Fuzz the API on the (migrated, user-filled) registry at `url`."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hyp_seed
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from hepablate.api import create_app
    from hepablate.registry import db
    from hepablate.registry.throttle import LoginThrottle

    engine = db.connect(url)
    # Failed logins of the fuzzer must not lock it out of its own tokens.
    app = create_app(
        url, throttle=LoginThrottle(free_failures_user=10**9, free_failures_client=10**9)
    )
    client = TestClient(app)
    tokens: dict[str, dict[str, str]] = {"none": {}}

    def login(user: str) -> None:
        r = client.post("/auth/token", json={"username": user, "password": os.environ["FUZZ_PW"]})
        tokens[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}

    for user in ("admin", "north_audit"):
        login(user)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        negative_data_rejection,
    ]
    stats = FuzzStats()
    t0 = time.perf_counter()
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = op.as_strategy(generation_mode=mode)

            @hyp_seed(seed)
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy, who=strategy_who())
            def one(case: Any, who: str) -> None:
                before = _audit_rows(engine)
                # A negative case that left out the Authorization header is sent without one;
                # otherwise the generated (random) bearer token is replaced by a real one.
                has_auth = "Authorization" in (case.headers or {})
                response = case.call(headers=tokens[who] if has_auth else {})
                stats.requests += 1
                stats.statuses[response.status_code] += 1
                if response.status_code >= 500:
                    stats.server_errors += 1
                if response.status_code >= 400 and _audit_rows(engine) != before:
                    stats.changed_on_refusal += 1
                if case.operation.label == "POST /auth/logout" and response.status_code == 204:
                    login(who)  # the fuzzer's token was revoked: take a new one
                try:
                    case.validate_response(response, checks=checks)
                except BaseException as exc:  # schemathesis raises a BaseExceptionGroup
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    stats.violations += 1
                    stats.failures[
                        f"{case.operation.label}: {' '.join(str(exc).split())[:3000]}"
                    ] += 1

            one()
    stats.seconds = time.perf_counter() - t0
    return stats


def strategy_who() -> Any:
    from hypothesis import strategies as st

    return st.sampled_from(["admin", "admin", "admin", "north_audit", "none"])
