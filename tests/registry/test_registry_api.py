"""HTTP API: bearer tokens, 401/403 that change nothing, site isolation, 409 conflicts,
422 validation, paged and filtered lists, history, OpenAPI docs."""

from __future__ import annotations

import warnings

import pytest
from registry_helpers import PASSWORD, make_users, patient, session

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from hepablate.api import create_app
from hepablate.registry import synthetic


@pytest.fixture
def client(url: str, engine):  # type: ignore[no-untyped-def]
    make_users(engine)
    synthetic.generate(12, 2, url)  # sites north and south alternate
    return TestClient(create_app(url))


def _login(client, user: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    r = client.post("/auth/token", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _snapshot(client, h):  # type: ignore[no-untyped-def]
    """Everything visible to the administrator, to prove a refused request changed nothing."""
    return {
        t: client.get(f"/{t}?page_size=500&include_deleted=true", headers=h).json()
        for t in ("patients", "procedure_sessions", "adverse_events")
    } | {"audit": client.get("/audit?page_size=1", headers=h).json()["total"]}


def test_unauthenticated_is_401_and_changes_nothing(client) -> None:  # type: ignore[no-untyped-def]
    admin = _login(client, "admin")
    before = _snapshot(client, admin)
    assert client.get("/patients").status_code == 401
    assert client.get("/patients", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/patients", json=patient()).status_code == 401
    assert client.patch("/patients/1", json={"version": 1, "ecog": 4}).status_code == 401
    assert client.delete("/patients/1?version=1").status_code == 401
    assert client.get("/audit").status_code == 401
    r = client.post("/auth/token", json={"username": "admin", "password": "wrong password"})
    assert r.status_code == 401
    assert _snapshot(client, admin) == before


def test_roles_403_and_nothing_changed(client) -> None:  # type: ignore[no-untyped-def]
    admin = _login(client, "admin")
    auditor = _login(client, "north_audit")
    entry = _login(client, "north_entry")
    before = _snapshot(client, admin)
    r = client.post("/patients", headers=auditor, json=patient(patient_code="A9"))
    assert r.status_code == 403 and "auditor" in r.json()["detail"]
    assert (
        client.patch("/patients/1", headers=auditor, json={"version": 1, "ecog": 3}).status_code
        == 403
    )
    assert client.delete("/patients/1?version=1", headers=entry).status_code == 403
    assert client.get("/users", headers=entry).status_code == 403
    assert (
        client.post(
            "/users",
            headers=entry,
            json={"username": "x", "password": PASSWORD, "role": "administrator"},
        ).status_code
        == 403
    )
    assert client.get("/audit/verify", headers=entry).status_code == 403
    assert _snapshot(client, admin) == before
    # Read-only access works for the auditor.
    assert client.get("/patients", headers=auditor).status_code == 200
    assert client.get("/audit/verify", headers=auditor).json()["ok"] is True


def test_sites_are_isolated(client) -> None:  # type: ignore[no-untyped-def]
    admin = _login(client, "admin")
    north = _login(client, "north_clin")
    before = _snapshot(client, admin)
    all_p = client.get("/patients?page_size=100", headers=admin).json()["items"]
    south_p = next(p for p in all_p if p["site"] == "south")
    listed = client.get("/patients?page_size=100", headers=north).json()
    assert listed["total"] == 6 and {p["site"] for p in listed["items"]} == {"north"}
    assert client.get(f"/patients/{south_p['id']}", headers=north).status_code == 403
    assert (
        client.patch(
            f"/patients/{south_p['id']}", headers=north, json={"version": 1, "ecog": 4}
        ).status_code
        == 403
    )
    assert client.delete(f"/patients/{south_p['id']}?version=1", headers=north).status_code == 403
    assert (
        client.post(
            "/patients", headers=north, json=patient(site="south", patient_code="X")
        ).status_code
        == 403
    )
    # A child of another site's patient cannot be attached either.
    assert (
        client.post("/procedure_sessions", headers=north, json=session(south_p["id"])).status_code
        == 403
    )
    assert client.get(f"/patients/{south_p['id']}/history", headers=north).status_code == 403
    audit = client.get("/audit?page_size=500", headers=_login(client, "north_audit")).json()
    assert {row["site"] for row in audit["items"]} == {"north"}
    assert _snapshot(client, admin) == before


def test_crud_conflict_and_validation(client) -> None:  # type: ignore[no-untyped-def]
    north = _login(client, "north_clin")
    r = client.post("/patients", headers=north, json=patient(patient_code="NEW1"))
    assert r.status_code == 201 and r.json()["site"] == "north"
    pid = r.json()["id"]
    r = client.patch(f"/patients/{pid}", headers=north, json={"version": 1, "ecog": 1})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = client.patch(f"/patients/{pid}", headers=north, json={"version": 1, "ecog": 2})
    assert r.status_code == 409
    assert client.get(f"/patients/{pid}", headers=north).json()["ecog"] == 1
    r = client.patch(f"/patients/{pid}", headers=north, json={"version": 2, "child_pugh_score": 9})
    assert r.status_code == 422 and r.json()["field"] == "child_pugh_score"
    r = client.post("/patients", headers=north, json=patient(patient_code="N2", sex="robot"))
    assert r.status_code == 422
    hist = client.get(f"/patients/{pid}/history", headers=north).json()
    assert [h["action"] for h in hist["items"]] == ["create", "update"]
    assert hist["items"][1]["old_values"]["ecog"] is None
    assert hist["items"][1]["new_values"]["ecog"] == 1
    assert hist["items"][1]["actor"] == "north_clin"
    r = client.delete(f"/patients/{pid}?version=2", headers=north)
    assert r.status_code == 200 and r.json()["deleted_at"] is not None
    assert client.get(f"/patients/{pid}", headers=north).status_code == 404


def test_lists_page_and_filter(client) -> None:  # type: ignore[no-untyped-def]
    admin = _login(client, "admin")
    r = client.get("/followups?page=2&page_size=5", headers=admin).json()
    assert r["page"] == 2 and len(r["items"]) == 5 and r["total"] > 10
    first = client.get("/followups?page_size=5", headers=admin).json()["items"]
    assert {f["id"] for f in first}.isdisjoint({f["id"] for f in r["items"]})
    pid = first[0]["patient_id"]
    mine = client.get(f"/followups?patient_id={pid}&page_size=100", headers=admin).json()
    assert mine["total"] >= 1 and all(f["patient_id"] == pid for f in mine["items"])
    ire = client.get("/procedure_sessions?modality=ire&page_size=100", headers=admin).json()
    assert all(s["modality"] == "ire" for s in ire["items"])
    dated = client.get(
        "/followups?date_from=2020-01-01&date_to=2020-12-31&page_size=500", headers=admin
    ).json()
    assert all("2020-01-01" <= f["followup_date"] <= "2020-12-31" for f in dated["items"])
    assert client.get("/followups?colour=red", headers=admin).status_code == 422
    south = client.get("/patients?site=south&page_size=100", headers=admin).json()
    assert south["total"] == 6 and {p["site"] for p in south["items"]} == {"south"}
    north = _login(client, "north_clin")
    assert client.get("/patients?site=south", headers=north).json()["total"] == 0
    schema = client.get("/schema/patients", headers=admin).json()
    sex = next(f for f in schema["fields"] if f["name"] == "sex")
    assert sex["choices"] == ["female", "male", "other", "unknown"] and sex["required"]


def test_openapi_docs_and_user_admin(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/patients/{record_id}" in spec["paths"] and "/audit/verify" in spec["paths"]
    admin = _login(client, "admin")
    r = client.post(
        "/users",
        headers=admin,
        json={"username": "newbie", "password": PASSWORD, "role": "data_entry", "site": "north"},
    )
    assert r.status_code == 201
    assert _login(client, "newbie")
    me = client.get("/me", headers=_login(client, "newbie")).json()
    assert me == {"username": "newbie", "role": "data_entry", "site": "north"}
    h = _login(client, "newbie")
    assert client.post("/auth/logout", headers=h).status_code == 204
    assert client.get("/me", headers=h).status_code == 401
