"""Passwords (Argon2id), tokens, NHS numbers (Modulus 11, keyed hash, never stored raw)."""

from __future__ import annotations

import pytest
from registry_helpers import PASSWORD, patient
from sqlalchemy import inspect, select, text

from hepablate.errors import InputError
from hepablate.registry import db
from hepablate.registry.auth import (
    DEFAULT_HASHER,
    actor_for_token,
    add_user,
    authenticate,
    hash_nhs_number,
    issue_token,
    nhs_number_valid,
    revoke_token,
)
from hepablate.registry.models import User
from hepablate.registry.validation import ValidationError


def test_nhs_modulus_11() -> None:
    # NHS Data Dictionary example 943 476 5919: 9*10+4*9+3*8+4*7+7*6+6*5+5*4+9*3+1*2 = 299,
    # 299 mod 11 = 2, check digit 11 - 2 = 9.
    assert nhs_number_valid("9434765919")
    assert nhs_number_valid("943 476 5919")
    assert not nhs_number_valid("9434765918")  # wrong check digit
    # 1234567890: sum 210, 210 mod 11 = 1 -> check 10, which is never valid.
    assert not nhs_number_valid("1234567890")
    assert not nhs_number_valid("943476591")  # 9 digits
    assert not nhs_number_valid("94347659AB")


def test_nhs_hash_is_keyed() -> None:
    h1 = hash_nhs_number("9434765919", b"k" * 16)
    h2 = hash_nhs_number("9434765919", b"j" * 16)
    assert h1 != h2 and len(h1) == 64
    with pytest.raises(InputError, match="Modulus 11"):
        hash_nhs_number("9434765918", b"k" * 16)


def test_nhs_number_never_stored_raw(engine, reg) -> None:  # type: ignore[no-untyped-def]
    p = reg.create("patients", patient(nhs_number="943 476 5919"))
    assert p["nhs_number_hash"] == hash_nhs_number("9434765919")
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                assert "9434765919" not in repr(row) and "943 476 5919" not in repr(row)
    with pytest.raises(ValidationError, match="NHS number") as exc:
        reg.create("patients", patient(patient_code="P2", nhs_number="9434765918"))
    assert exc.value.field == "nhs_number"


def test_nhs_number_needs_key(reg, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("HEPABLATE_NHS_KEY")
    with pytest.raises(ValidationError, match="HEPABLATE_NHS_KEY"):
        reg.create("patients", patient(nhs_number="9434765919"))


def test_passwords_argon2id_and_tokens(engine) -> None:  # type: ignore[no-untyped-def]
    with db.write_transaction(engine) as conn:
        add_user(conn, "ann", PASSWORD, "clinician", "north")
        with pytest.raises(InputError, match="at least"):
            add_user(conn, "bob", "short", "clinician", "north")
        with pytest.raises(InputError, match="role"):
            add_user(conn, "bob", PASSWORD, "superuser", "north")
        stored = conn.scalar(select(User.password_hash).where(User.username == "ann"))
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
    # Production parameters: RFC 9106 low-memory profile.
    assert DEFAULT_HASHER.hash(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    with db.write_transaction(engine) as conn:
        assert authenticate(conn, "ann", "wrong password!") is None
        assert authenticate(conn, "nobody", PASSWORD) is None
        actor = authenticate(conn, "ann", PASSWORD)
        assert actor is not None and actor.role == "clinician" and actor.site == "north"
        token, _ = issue_token(conn, actor)
    with engine.connect() as conn:
        assert token not in repr(conn.execute(text("SELECT * FROM api_tokens")).all())
        assert actor_for_token(conn, token).name == "ann"  # type: ignore[union-attr]
        assert actor_for_token(conn, token + "x") is None
    with db.write_transaction(engine) as conn:
        revoke_token(conn, token)
    with engine.connect() as conn:
        assert actor_for_token(conn, token) is None
