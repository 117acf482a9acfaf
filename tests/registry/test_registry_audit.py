"""Audit trail: every create/update/delete recorded with who and old/new values, hash-chained;
verify detects changed, inserted and deleted rows."""

from __future__ import annotations

import json

from registry_helpers import patient, session
from sqlalchemy import select, text

from hepablate.cli import main
from hepablate.registry import audit
from hepablate.registry.auth import Actor
from hepablate.registry.models import AuditEntry
from hepablate.registry.service import Registry


def _rows(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(AuditEntry.__table__).order_by(AuditEntry.id)).mappings().all()


def test_create_update_delete_are_audited(engine) -> None:  # type: ignore[no-untyped-def]
    reg = Registry(engine, Actor("dr_who", "clinician", "north"))
    p = reg.create("patients", patient())
    p2 = reg.update("patients", p["id"], {"ecog": 2}, expected_version=1)
    assert p2["version"] == 2
    reg.delete("patients", p["id"], expected_version=2)
    rows = _rows(engine)
    assert [r["action"] for r in rows] == ["create", "update", "delete"]
    assert all(r["actor"] == "dr_who" and r["table_name"] == "patients" for r in rows)
    assert all(r["record_id"] == p["id"] and r["site"] == "north" for r in rows)
    assert json.loads(rows[0]["new_values"])["patient_code"] == "P1"
    old = json.loads(rows[1]["old_values"])
    assert old["ecog"] is None and old["version"] == 1 and "updated_at" in old
    assert json.loads(rows[1]["new_values"])["ecog"] == 2
    assert json.loads(rows[2]["old_values"])["ecog"] == 2
    assert json.loads(rows[2]["new_values"])["deleted_at"] is not None
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert rows[1]["prev_hash"] == rows[0]["row_hash"]
    res = audit.verify(engine)
    assert res.ok and res.rows_checked == 3 and res.head_hash == rows[2]["row_hash"]
    # The record is soft-deleted, never removed.
    with engine.connect() as conn:
        assert conn.execute(text("SELECT deleted_at FROM patients")).scalar() is not None


def _three_changes(engine) -> None:  # type: ignore[no-untyped-def]
    reg = Registry(engine, Actor("a", "administrator", None))
    p = reg.create("patients", patient())
    reg.create("procedure_sessions", session(p["id"]))
    reg.update("patients", p["id"], {"ecog": 1}, 1)


def test_verify_detects_changed_row(engine) -> None:  # type: ignore[no-untyped-def]
    _three_changes(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_trail SET actor = 'mallory' WHERE id = 2"))
    res = audit.verify(engine)
    assert not res.ok and res.first_bad_id == 2 and "changed" in (res.reason or "")
    assert res.rows_checked == 1


def test_verify_detects_changed_values_with_rehash(engine) -> None:  # type: ignore[no-untyped-def]
    """Rewriting a row and its own hash still breaks the next link."""
    _three_changes(engine)
    rows = _rows(engine)
    forged = dict(rows[0]) | {"new_values": '{"patient_code":"FORGED"}'}
    new_hash = audit.row_hash(forged["prev_hash"], forged)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_trail SET new_values = :v, row_hash = :h WHERE id = 1"),
            {"v": forged["new_values"], "h": new_hash},
        )
    res = audit.verify(engine)
    assert not res.ok and res.first_bad_id == 2 and "prev_hash" in (res.reason or "")


def test_verify_detects_deleted_row(engine) -> None:  # type: ignore[no-untyped-def]
    _three_changes(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_trail WHERE id = 2"))
    res = audit.verify(engine)
    assert not res.ok and res.first_bad_id == 3


def test_cli_verify(url: str, engine, capsys) -> None:  # type: ignore[no-untyped-def]
    _three_changes(engine)
    assert main(["registry", "verify", "--db", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_checked"] == 3
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_trail SET new_values = '{}' WHERE id = 3"))
    assert main(["registry", "verify", "--db", url]) == 1
    assert "BROKEN at row 3" in capsys.readouterr().err


def test_failed_write_leaves_no_audit_row(engine) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from hepablate.registry.validation import ValidationError

    reg = Registry(engine, Actor("a", "administrator", None))
    with pytest.raises(ValidationError):
        reg.create("patients", patient(child_pugh_score=9))
    assert _rows(engine) == []
