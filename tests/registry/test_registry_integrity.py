"""Issue 14, item 3: CSV formula injection, CSV input that was accepted or crashed, the
audit trail anchored outside the database and replayed against the tables, synthetic data
kept apart from real records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from registry_helpers import patient, session
from sqlalchemy import select, text

from hepablate.cli import main
from hepablate.registry import audit, csvio, db, synthetic
from hepablate.registry.auth import Actor
from hepablate.registry.models import AuditEntry
from hepablate.registry.service import Registry

ADMIN = Actor("a", "administrator", None)
FORMULAS = ['=HYPERLINK("http://x","y")', "@SUM(1+1)", "+1+1", "-2+3", "\t=1", "'=quoted"]


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_escape_cell_rule_and_inverse() -> None:
    for v in [*FORMULAS, "plain", "'", "''", "'abc", "", "\r=x", "a=b"]:
        assert csvio.unescape_cell(csvio.escape_cell(v)) == v, v
    for v in FORMULAS:
        assert csvio.escape_cell(v).startswith("'"), v
    assert csvio.escape_cell("plain") == "plain" and csvio.escape_cell("'abc") == "'abc"


def test_export_escapes_formulas_and_round_trips(url: str, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reg = Registry(engine, ADMIN)
    for i, f in enumerate(FORMULAS):
        p = reg.create("patients", patient(patient_code=f"P{i}", mdt_decision=f))
        reg.create("procedure_sessions", session(p["id"], device=f))
    out = tmp_path / "out"
    csvio.export_dir(engine, out)
    cells = [r["mdt_decision"] for r in _read(out / "patients.csv")]
    assert all(c.startswith("'") for c in cells), cells
    pseudo = tmp_path / "pseudo"
    csvio.export_pseudonymised(engine, pseudo, seed=1)
    kept = [r["device"] for r in _read(pseudo / "procedure_sessions.csv")]
    assert kept and all(c.startswith("'") for c in kept), kept
    other = f"sqlite:///{tmp_path / 'other.db'}"
    db.migrate(other)
    e2 = db.connect(other)
    csvio.import_dir(e2, out, "tester")
    q = text("SELECT mdt_decision FROM patients ORDER BY patient_code")
    with engine.connect() as c1, e2.connect() as c2:
        stored = list(c1.scalars(q))
        assert list(c2.scalars(q)) == stored  # (text is stored stripped: "\t=1" is "=1")
    assert '=HYPERLINK("http://x","y")' in stored and "'=quoted" in stored
    db.dispose(other)


def _patients_csv(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "imp"
    d.mkdir(exist_ok=True)
    (d / "patients.csv").write_text(body, encoding="utf-8")
    return d


_P = {k: v for k, v in patient().items() if k not in ("site", "mdt_decision")}
HEADER = ",".join(["id", "site", *_P, "mdt_decision", "death_date"]) + "\n"
_V = ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in _P.values())


@pytest.mark.parametrize(
    "row, field",
    [
        (f"1,north,{_V},x,20230320\n", "death_date"),
        (f"1,north,{_V},x,2023-W12-1\n", "death_date"),
        (f"1,north,{_V.replace('1950', '99999999999999999999')},x,\n", "year_of_birth"),
        (f"1,north,{_V},a\x00b,\n", None),
        (f"1,north,{_V}," + "x" * 200_000 + ",\n", None),
    ],
)
def test_bad_csv_rows_exit_2_one_line_nothing_written(
    url: str, engine, tmp_path: Path, capsys, row: str, field: str | None
) -> None:  # type: ignore[no-untyped-def]
    d = _patients_csv(tmp_path, HEADER + row)
    assert main(["registry", "import", str(d), "--db", url]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    if field:
        assert f"field '{field}'" in err
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT COUNT(*) FROM patients")) == 0
        assert conn.scalar(text("SELECT COUNT(*) FROM audit_trail")) == 0


def test_duplicated_csv_header_column_is_refused(url: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    d = _patients_csv(
        tmp_path,
        "id,site,patient_code,year_of_birth,sex,diagnosis,sex\n1,north,P1,1950,male,hcc,female\n",
    )
    assert main(["registry", "import", str(d), "--db", url]) == 2
    assert "twice" in capsys.readouterr().err


# ---- audit anchoring and replay --------------------------------------------------------------
def _some_changes(engine) -> None:  # type: ignore[no-untyped-def]
    reg = Registry(engine, ADMIN)
    p = reg.create("patients", patient())
    reg.create("procedure_sessions", session(p["id"]))
    reg.update("patients", p["id"], {"ecog": 1}, 1)
    reg.create("patients", patient(patient_code="P2"))


def test_tail_deletion_detected_with_published_head(url: str, engine, capsys) -> None:  # type: ignore[no-untyped-def]
    _some_changes(engine)
    head = audit.verify(engine).head_hash
    assert audit.verify(engine, expect_head=head).ok
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_trail WHERE id = (SELECT MAX(id) FROM audit_trail)"))
    chain_only = audit.verify(engine, check_tables=False)
    assert chain_only.ok  # the chain alone cannot see it ...
    res = audit.verify(engine, expect_head=head, check_tables=False)
    assert not res.ok and "expected head" in (res.reason or "")  # ... the published head can
    assert not audit.verify(engine).ok  # and the replay sees a patient without its create
    assert main(["registry", "verify", "--db", url, "--expect-head", head]) == 1
    assert "BROKEN" in capsys.readouterr().err


def test_rechained_mid_chain_edit_detected(engine) -> None:  # type: ignore[no-untyped-def]
    """An attacker edits row 2 and recomputes every later hash: the chain verifies, but the
    published head is gone and the tables no longer match the trail."""
    _some_changes(engine)
    head = audit.verify(engine).head_hash
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(AuditEntry.__table__).order_by(AuditEntry.id)).mappings()]  # fmt: skip
    new = json.loads(rows[0]["new_values"]) | {"patient_code": "FORGED"}
    rows[0]["new_values"] = audit.canonical_json(new)
    prev = audit.GENESIS
    with engine.begin() as conn:
        for r in rows:
            r["prev_hash"] = prev
            r["row_hash"] = prev = audit.row_hash(prev, r)
            conn.execute(
                text("UPDATE audit_trail SET new_values=:n, prev_hash=:p, row_hash=:h WHERE id=:i"),
                {"n": r["new_values"], "p": r["prev_hash"], "h": r["row_hash"], "i": r["id"]},
            )
    assert audit.verify(engine, check_tables=False).ok
    res = audit.verify(engine)
    assert not res.ok and "patient_code" in (res.reason or "")
    assert not audit.verify(engine, expect_head=head, check_tables=False).ok


@pytest.mark.parametrize(
    "sql, words",
    [
        ("UPDATE patients SET ecog = 4 WHERE id = 1", "field 'ecog'"),
        ("UPDATE patients SET deleted_at = '2024-01-01 00:00:00' WHERE id = 2", "deleted_at"),
        ("DELETE FROM procedure_sessions", "removed directly"),
    ],
)
def test_direct_clinical_table_edit_detected(
    url: str, engine, capsys, sql: str, words: str
) -> None:  # type: ignore[no-untyped-def]
    _some_changes(engine)
    assert audit.verify(engine).ok
    with engine.begin() as conn:
        conn.execute(text(sql))
    res = audit.verify(engine)
    assert not res.ok and words in (res.reason or ""), res.reason
    assert res.table_mismatches
    assert main(["registry", "verify", "--db", url]) == 1
    assert words in capsys.readouterr().err


def test_direct_insert_detected(engine) -> None:  # type: ignore[no-untyped-def]
    _some_changes(engine)
    from sqlalchemy import insert

    from hepablate.registry.models import ENTITIES

    t = ENTITIES["patients"].__table__
    with engine.begin() as conn:
        row = dict(conn.execute(select(t).where(t.c.id == 1)).mappings().one())
        conn.execute(insert(t).values(**(row | {"id": 99, "patient_code": "GHOST"})))
    res = audit.verify(engine)
    assert not res.ok and "inserted directly" in (res.reason or "")


def test_export_publishes_head(url: str, engine, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _some_changes(engine)
    head = audit.verify(engine).head_hash
    capsys.readouterr()
    assert main(["registry", "export", str(tmp_path / "e"), "--db", url]) == 0
    assert head in capsys.readouterr().out
    doc = json.loads((tmp_path / "e" / csvio.AUDIT_HEAD_FILE).read_text())
    assert doc["audit_head_hash"] == head and doc["audit_rows"] == 4
    csvio.export_pseudonymised(engine, tmp_path / "p", seed=2)
    assert json.loads((tmp_path / "p" / csvio.AUDIT_HEAD_FILE).read_text())["audit_rows"] == 4
    assert main(["registry", "verify", "--db", url, "--expect-head", head]) == 0
    assert "expected head found at row 4" in capsys.readouterr().out
    assert main(["registry", "verify", "--db", url, "--expect-head", "xyz"]) == 2


# ---- synthetic data --------------------------------------------------------------------------
def test_synthetic_refuses_real_records_and_needs_db(url: str, engine, capsys) -> None:  # type: ignore[no-untyped-def]
    synthetic.generate(3, 1, url)
    synthetic.generate(3, 2, url)  # all-synthetic: more may be added
    Registry(engine, ADMIN).create("patients", patient(patient_code="REAL1"))
    with engine.connect() as conn:
        before = conn.scalar(text("SELECT COUNT(*) FROM patients"))
    assert main(["registry", "synthetic", "--patients", "2", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "did not write" in err and len(err.strip().splitlines()) == 1
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT COUNT(*) FROM patients")) == before
    assert main(["registry", "synthetic", "--patients", "2"]) == 2  # --db is required
    assert "--db" in capsys.readouterr().err
