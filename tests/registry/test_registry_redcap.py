"""The REDCap data dictionary follows REDCap's rules (issue 14, item 5)."""

from __future__ import annotations

import csv
from pathlib import Path

from hepablate.registry import redcap

TEMPLATES = Path(__file__).parents[2] / "docs" / "registry-csv"


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_generated_dictionary_follows_redcap_rules(tmp_path: Path) -> None:
    out = tmp_path / "dd.csv"
    redcap.write_data_dictionary(out)
    rows = _rows(out)
    assert redcap.dictionary_problems(rows) == []
    names = [r[0] for r in rows[1:]]
    assert names[0] == "record_id" and len(names) == len(set(names))
    assert names.count("site") == 1 and "patient_id" not in names
    assert {"trt_session_id", "ae_session_id", "trt_tumour_id", "les_tumour_id"} <= set(names)
    assert all("@HIDDEN-IMPORT-ONLY" not in r[17] for r in rows)
    forms = [r[1] for r in rows[1:]]
    assert forms[0] == "patients"


def test_committed_dictionary_is_current(tmp_path: Path) -> None:
    out = tmp_path / "dd.csv"
    redcap.write_data_dictionary(out)
    assert out.read_text() == (TEMPLATES / "data_dictionary.csv").read_text()


def test_checker_finds_the_old_dictionarys_faults() -> None:
    """The faults of issue 14: repeated names, nhs_number first, an invented action tag."""
    h = redcap.REDCAP_HEADER

    def row(name: str, form: str, ftype: str = "text", note: str = "") -> list[str]:
        r = [""] * len(h)
        r[0], r[1], r[3], r[4], r[17] = name, form, ftype, name, note
        return r

    bad = [
        h,
        row("nhs_number", "patients", note="@HIDDEN-IMPORT-ONLY"),
        row("site", "patients"),
        row("site", "tumours"),
        row("sex", "patients", "dropdown"),
        row("Bad Name", "tumours", "textbox"),
    ]
    problems = " | ".join(redcap.dictionary_problems(bad))
    for words in ("record identifier", "used twice", "@HIDDEN-IMPORT-ONLY", "choices",
                  "textbox", "not contiguous", "lower-case"):  # fmt: skip
        assert words in problems, (words, problems)
