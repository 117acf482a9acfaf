"""Issue 14: the API's 500s on out-of-range integers, an OpenAPI document that matches what
it returns, role checks before body validation, login throttling and constant-time login
failures."""

from __future__ import annotations

import warnings

import pytest
from registry_helpers import PASSWORD, make_users, patient

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from hepablate.api import create_app
from hepablate.registry import auth
from hepablate.registry.throttle import LoginThrottle


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(url: str, engine, clock):  # type: ignore[no-untyped-def]
    make_users(engine)
    throttle = LoginThrottle(free_failures_user=3, free_failures_client=8, clock=clock)
    return TestClient(create_app(url, throttle=throttle))


def _login(client, user: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/auth/token", json={"username": user, "password": password})


def _h(client, user: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    r = _login(client, user)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/patients/2147483648", None),
        ("GET", "/patients/99999999999999999999999", None),
        ("GET", "/patients?page=99999999999999", None),
        ("GET", "/patients?patient_code=%00", None),
        ("GET", "/followups?patient_id=99999999999", None),
        ("GET", "/audit?record_id=9223372036854775808", None),
        ("DELETE", "/patients/1?version=2147483648", None),
        ("PATCH", "/patients/1", {"version": 2**40, "ecog": 1}),
        ("POST", "/patients", patient(patient_code="B1", year_of_birth=2**63)),
        ("POST", "/patients", patient(patient_code="B2", mdt_decision="a\x00b")),
        ("PATCH", "/patients/1", {"version": 1, "year_of_birth": None}),
        ("GET", "/patients?date_to=0.0", None),  # pydantic took 0.0 as 1970-01-01
        ("GET", "/patients?date_from=20230320", None),
        ("GET", "/audit/verify?bogus=1", None),  # unknown query parameters were ignored
        ("GET", "/audit?=null", None),
        ("PATCH", "/patients/1", {"version": 1, "cirrhosis": "yes"}),  # strict booleans
        ("PATCH", "/patients/1", {"version": 1, "ecog": 1.0}),  # strict integers
        ("PATCH", "/patients/1", {"version": 1, "mdt_date": 0}),
    ],
)
def test_out_of_range_and_invalid_values_are_422(client, method, path, body) -> None:  # type: ignore[no-untyped-def]
    admin = _h(client, "admin")
    r = client.request(method, path, headers=admin, json=body)
    assert r.status_code == 422, (r.status_code, r.text)
    assert isinstance(r.json()["detail"], str)


def test_unparseable_body_is_422(client) -> None:  # type: ignore[no-untyped-def]
    admin = _h(client, "admin")
    headers = admin | {"Content-Type": "application/json"}
    r = client.post("/patients", headers=headers, content=b"\x18\xff{")
    assert r.status_code == 422 and r.json()["where"] == "body"


def test_big_id_is_404_or_422_never_500(client) -> None:  # type: ignore[no-untyped-def]
    admin = _h(client, "admin")
    assert client.get("/patients/2147483647", headers=admin).status_code == 404
    assert client.get("/patients/2147483647/history", headers=admin).status_code == 404


def test_role_check_before_body_validation(client) -> None:  # type: ignore[no-untyped-def]
    auditor = _h(client, "north_audit")
    assert client.post("/patients", headers=auditor, json={"bogus": 1}).status_code == 403
    assert client.patch("/patients/1", headers=auditor, json={"x": 1}).status_code == 403
    entry = _h(client, "north_entry")
    assert client.delete("/patients/1", headers=entry).status_code == 403
    assert client.post("/users", headers=entry, json={}).status_code == 403
    assert client.post("/patients", json={"bogus": 1}).status_code == 401


def test_openapi_declares_errors_and_patch_not_nullable(client) -> None:  # type: ignore[no-untyped-def]
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/patients/{record_id}"]["patch"]
    assert {"401", "403", "404", "409", "422"} <= set(op["responses"])
    ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ErrorBody")
    assert "429" in doc["paths"]["/auth/token"]["post"]["responses"]
    upd = doc["components"]["schemas"]["PatientsUpdate"]["properties"]
    assert upd["year_of_birth"].get("type") == "integer" and "anyOf" not in upd["year_of_birth"]
    assert "anyOf" in upd["ecog"]  # a nullable column stays nullable
    param = next(
        p for p in doc["paths"]["/patients/{record_id}"]["get"]["parameters"]
        if p["name"] == "record_id"
    )  # fmt: skip
    assert param["schema"]["maximum"] == 2**31 - 1


def test_login_throttled_per_username_bounded_and_reset(client, clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        assert _login(client, "admin", "wrong password!").status_code == 401
    r = _login(client, "admin")  # even the right password waits while locked
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    for _ in range(20):  # the lockout doubles but stays bounded
        clock.t += 10_000
        _login(client, "admin", "wrong password!")
    assert client.app  # noqa: B018
    clock.t += 901
    assert _login(client, "admin").status_code == 200
    assert _login(client, "admin", "wrong password!").status_code == 401  # count was reset


def test_unknown_usernames_are_throttled_alike(client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        assert _login(client, "nobody", "wrong password!").status_code == 401
    assert _login(client, "nobody", "wrong password!").status_code == 429


def test_login_throttled_per_client(client, clock) -> None:  # type: ignore[no-untyped-def]
    for i in range(8):
        clock.t += 1
        assert _login(client, f"user{i}", "wrong password!").status_code == 401
    assert _login(client, "admin").status_code == 429


def test_failed_login_costs_one_hash_whether_or_not_user_exists(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    make_users(engine)
    calls: list[str] = []
    real = auth.verify_password

    def counting(stored: str, password: str) -> bool:
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    with engine.connect() as conn:
        assert auth.authenticate(conn, "nobody", "x" * 12) is None
        assert auth.authenticate(conn, "admin", "x" * 12) is None
    assert len(calls) == 2 and all(c.startswith("$argon2id$") for c in calls)
