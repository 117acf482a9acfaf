"""`hepablate registry ...` commands in-process; bad input exits 2 with one line."""

from __future__ import annotations

import io
import json
from pathlib import Path

from registry_helpers import PASSWORD

from hepablate.cli import main
from hepablate.registry import db


def test_init_user_synthetic_export_verify(
    db_url: str,
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
    monkeypatch,
) -> None:
    assert main(["registry", "verify", "--db", db_url]) == 2
    assert "registry init" in capsys.readouterr().err
    assert main(["serve", "--db", db_url, "--port", "1"]) == 2  # refuses before listening
    assert "registry init" in capsys.readouterr().err
    assert main(["registry", "init", "--db", db_url]) == 0
    assert "0002_row_level_security" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        main(
            [
                "registry",
                "user-add",
                "ann",
                "--role",
                "clinician",
                "--site",
                "north",
                "--password-stdin",
                "--db",
                db_url,
            ]
        )
        == 0
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        main(
            [
                "registry",
                "user-add",
                "ann",
                "--role",
                "clinician",
                "--password-stdin",
                "--db",
                db_url,
            ]
        )
        == 2
    )
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        main(["registry", "user-add", "bob", "--role", "king", "--password-stdin", "--db", db_url])
        == 2
    )
    assert capsys.readouterr().err.strip() == (
        "error: field 'role': expected one of "
        "administrator, clinician, data_entry, "
        "auditor, got 'king'"
    )
    assert main(["registry", "synthetic", "--patients", "8", "--seed", "1", "--db", db_url]) == 0
    out = tmp_path / "exp"
    assert main(["registry", "export", str(out), "--db", db_url, "--site", "north"]) == 0
    assert (out / "data_dictionary.csv").is_file()
    rows = (out / "patients.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and all(",north," in r for r in rows[1:])
    capsys.readouterr()
    assert main(["registry", "verify", "--db", db_url, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ok"] is True
    from sqlalchemy import select

    from hepablate.registry.models import AuditEntry

    with db.connect(db_url).connect() as conn:
        users = conn.execute(
            select(AuditEntry.actor, AuditEntry.new_values).where(AuditEntry.table_name == "users")
        ).all()
    assert len(users) == 1 and users[0].actor.startswith("cli:") and '"ann"' in users[0][1]
    assert main(["registry", "import", str(tmp_path / "missing"), "--db", db_url]) == 2
    assert "not a directory" in capsys.readouterr().err
    db.dispose(db_url)


def test_dictionary_and_bad_url(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["registry", "dictionary", str(tmp_path / "dd.csv")]) == 0
    assert (tmp_path / "dd.csv").read_text().startswith("Variable / Field Name,Form Name")
    assert main(["registry", "init", "--db", "oracle://x"]) == 2
    assert capsys.readouterr().err.startswith("error: oracle://x: field 'db': expected")
