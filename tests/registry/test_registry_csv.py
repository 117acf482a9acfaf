"""CSV import/export: documented templates import; malformed rows name file, line and field
and roll back the whole import; export -> import round trip; pseudonymised export."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hepablate.cli import main
from hepablate.registry import csvio, db, synthetic
from hepablate.registry.audit import verify
from hepablate.registry.models import ENTITIES, AuditEntry

TEMPLATES = Path(__file__).resolve().parents[2] / "docs" / "registry-csv"


def _counts(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        out = {t: conn.scalar(select(func.count()).select_from(m)) for t, m in ENTITIES.items()}
        out["audit_trail"] = conn.scalar(select(func.count()).select_from(AuditEntry))
    return out


def test_templates_match_models_and_import(engine) -> None:  # type: ignore[no-untyped-def]
    for table in ENTITIES:
        with (TEMPLATES / f"{table}.csv").open() as fh:
            header = next(csv.reader(fh))
        expected = csvio.csv_columns(table, for_export=False)
        if table == "patients":
            expected = [c if c != "nhs_number_hash" else "nhs_number" for c in expected]
        assert header == expected, table
    res = csvio.import_dir(engine, TEMPLATES, "tester")
    assert res.counts["patients"] == 2 and res.counts["followup_lesions"] == 5
    assert res.audit_rows == res.total == _counts(engine)["audit_trail"]
    assert verify(engine).ok


def test_data_dictionary_is_generated(tmp_path: Path) -> None:
    out = tmp_path / "dd.csv"
    csvio.write_data_dictionary(out)
    assert out.read_text() == (TEMPLATES / "data_dictionary.csv").read_text()
    rows = list(csv.DictReader(out.open()))
    sex = next(r for r in rows if r["Variable / Field Name"] == "sex")
    assert (
        sex["Field Type"] == "dropdown"
        and "female, female" in sex["Choices, Calculations, OR Slider Labels"]
    )
    seg = next(r for r in rows if r["Variable / Field Name"] == "couinaud_segment")
    assert (seg["Text Validation Min"], seg["Text Validation Max"]) == ("1", "8")


def _copy_templates(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    shutil.copytree(TEMPLATES, d)
    (d / "data_dictionary.csv").unlink()
    return d


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "line", "field"),
    [
        ("followups.csv", "2023-09-18", "2023-09-31", 3, "followup_date"),
        ("followups.csv", "2023-09-18", "2023-03-01", 3, "followup_date"),  # before procedure
        ("tumours.csv", "3,,2,T2,6", "3,,2,T2,9", 4, "couinaud_segment"),
        ("adverse_events.csv", "transfusion,none,none,2", "none,none,none,2", 2, "therapy"),
        ("procedure_sessions.csv", "2,,2,2023-05-02,laser", "2,,2,2023-05-02,cryo", 3, "modality"),
        ("patients.csv", "943 476 5919", "943 476 5918", 2, "nhs_number"),
        ("treated_tumours.csv", "3,,2,3,false", "3,,2,7,false", 4, "tumour_id"),
    ],
)
def test_bad_row_rolls_back_everything(
    engine,
    tmp_path: Path,
    file: str,
    old: str,  # type: ignore[no-untyped-def]
    new: str,
    line: int,
    field: str,
) -> None:
    d = _copy_templates(tmp_path)
    _replace(d / file, old, new)
    before = _counts(engine)
    with pytest.raises(csvio.ImportFailed) as exc:
        csvio.import_dir(engine, d, "tester")
    err = exc.value.errors[0]
    assert err.where == f"{file} line {line}" and err.field == field
    assert str(exc.value).startswith(f"{file} line {line}: field '{field}':")
    assert _counts(engine) == before


def test_insert_failure_rolls_back(engine, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A failure after some tables were inserted leaves nothing behind."""
    d = _copy_templates(tmp_path)

    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr("hepablate.registry.audit.append", boom)
    with pytest.raises(RuntimeError):
        csvio.import_dir(engine, d, "tester")
    assert set(_counts(engine).values()) == {0}


def test_cli_import_errors(url: str, engine, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    d = _copy_templates(tmp_path)
    _replace(d / "followups.csv", "2023-09-18", "18/09/2023")
    _replace(d / "tumours.csv", "24.5", "24.555")
    assert main(["registry", "import", str(d), "--db", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: tumours.csv line 2: field 'size_mm': at most 2 decimal")
    assert "(and 1 more error(s))" in err[-1] and "nothing was imported" in err[-1]
    assert err[0] == (
        "error: followups.csv line 3: field 'followup_date': expected a date YYYY-MM-DD"
    )
    assert set(_counts(engine).values()) == {0}
    (d / "tumours.csv").write_text("id,colour\n1,red\n")
    assert main(["registry", "import", str(d), "--db", url]) == 2
    assert "tumours.csv line 1: field 'colour': unknown column" in capsys.readouterr().err


def test_round_trip(url: str, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    synthetic.generate(25, 7, url)
    a = tmp_path / "a"
    counts = csvio.export_dir(engine, a)
    assert counts["patients"] == 25
    other = f"sqlite:///{tmp_path / 'other.db'}"
    db.migrate(other)
    e2 = db.connect(other)
    csvio.import_dir(e2, a, "tester")
    b = tmp_path / "b"
    csvio.export_dir(e2, b)
    for table in ENTITIES:
        assert (a / f"{table}.csv").read_text() == (b / f"{table}.csv").read_text(), table
    db.dispose(other)


def test_pseudonymised_export_has_no_identifiers(
    url: str,
    engine,
    reg,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    synthetic.generate(20, 3, url)
    from registry_helpers import patient

    reg.create(
        "patients",
        patient(
            patient_code="ZZ-SECRET",
            nhs_number="9434765919",
            year_of_birth=1953,
            mdt_decision="Mr Smith prefers IRE",
        ),
    )
    full = tmp_path / "full"
    csvio.export_dir(engine, full)
    out = tmp_path / "pseudo"
    assert main(["registry", "export", str(out), "--db", url, "--pseudonymised"]) == 0
    text = "".join((out / f"{t}.csv").read_text() for t in ENTITIES)
    pats = list(csv.DictReader((full / "patients.csv").open()))
    sessions = list(csv.DictReader((full / "procedure_sessions.csv").open()))
    for p in pats:
        assert p["patient_code"] not in text
        if p["nhs_number_hash"]:
            assert p["nhs_number_hash"] not in text
    for s in sessions:
        assert f",{s['operator']}," not in text
    assert "Mr Smith" not in text and "synthetic bleeding" not in text
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text)  # no calendar dates at all
    prow = list(csv.DictReader((out / "patients.csv").open()))
    assert "year_of_birth" not in prow[0] and "patient_code" not in prow[0]
    assert {r["birth_year_band"] for r in prow} >= {"1950-1954"}
    # Follow-up days from the first ablation are kept exactly; ids are renumbered but linked.
    fus = list(csv.DictReader((out / "followups.csv").open()))
    assert all(f["followup_date_day"] == f["days_after_first_ablation"] for f in fus)
    pseudo_sessions = list(csv.DictReader((out / "procedure_sessions.csv").open()))
    assert min(int(s["procedure_date_day"]) for s in pseudo_sessions) == 0
    ids = {r["id"] for r in prow}
    assert all(f["patient_id"] in ids for f in fus)
    n_fu_full = sorted(
        sum(
            1 for f in csv.DictReader((full / "followups.csv").open()) if f["patient_id"] == p["id"]
        )
        for p in pats
    )
    n_fu_pseudo = sorted(sum(1 for f in fus if f["patient_id"] == p["id"]) for p in prow)
    assert n_fu_full == n_fu_pseudo


def test_pseudonymised_shift_mode(url: str, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    synthetic.generate(10, 5, url)
    out = tmp_path / "s"
    csvio.export_pseudonymised(engine, out, dates="shift", seed=1)
    full = tmp_path / "f"
    csvio.export_dir(engine, full)
    from datetime import date

    fus = list(csv.DictReader((out / "followups.csv").open()))
    sess = list(csv.DictReader((out / "procedure_sessions.csv").open()))
    first = {}
    for s in sess:
        d = date.fromisoformat(s["procedure_date"])
        first[s["patient_id"]] = min(first.get(s["patient_id"], d), d)
    # One offset per patient: intervals within a patient are preserved exactly.
    for f in fus:
        delta = (date.fromisoformat(f["followup_date"]) - first[f["patient_id"]]).days
        assert delta == int(f["days_after_first_ablation"])
    orig = [f["followup_date"] for f in csv.DictReader((full / "followups.csv").open())]
    assert sorted(f["followup_date"] for f in fus) != sorted(orig)
