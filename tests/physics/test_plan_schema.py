"""The committed JSON Schema of the plan format equals the one generated from the model, and
example plans validate against it."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema

from hepablate.plans.model import PLAN_FORMAT_VERSION, Plan

REGENERATE = (
    '.venv/bin/python -c "import json; from hepablate.plans.model import Plan; '
    "open('src/hepablate/plans/plan.schema.json', 'w').write(json.dumps("
    "Plan.model_json_schema(), indent=2, sort_keys=True) + '\\\\n')\""
)


def _committed() -> dict:
    return json.loads(resources.files("hepablate.plans").joinpath("plan.schema.json").read_text())


def test_committed_schema_matches_model():
    assert _committed() == json.loads(json.dumps(Plan.model_json_schema())), (
        f"plan.schema.json is stale; regenerate with: {REGENERATE}"
    )


def test_example_ire_plan_validates():
    plan = {
        "format_version": PLAN_FORMAT_VERSION,
        "modality": "ire",
        "probes": [
            {"id": "A", "tip_lps_mm": [-47.5, 0, 10], "direction_lps": [0, 0, 1]},
            {"id": "B", "tip_lps_mm": [-32.5, 0, 10], "direction_lps": [0, 0, 1]},
        ],
        "pairs": [{"anode": "A", "cathode": "B", "voltage_v": 2250}],
        "ire_simulation": {"conductivity_model": "nonlinear", "zone_threshold_v_per_cm": 600},
    }
    jsonschema.validate(plan, _committed())
    Plan.model_validate(plan)


def test_schema_rejects_unknown_fields():
    bad = {"format_version": 1, "modality": "ire", "probez": []}
    try:
        jsonschema.validate(bad, _committed())
    except jsonschema.ValidationError:
        return
    raise AssertionError("an unknown top-level field must be rejected")
