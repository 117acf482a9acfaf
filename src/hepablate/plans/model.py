"""Plan file models (format version 1). Coordinates are LPS, mm; directions are unit vectors
in LPS pointing the way the needle advances (from the skin entry towards the tip)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hepablate.core.provenance import Parameter as Parameter  # re-exported: plans hold them
from hepablate.core.provenance import Provenance
from hepablate.errors import InputError, input_error_from_validation

PLAN_FORMAT_VERSION = 1

Vec3 = tuple[float, float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Input(_Model):
    """A model of what a user asks for (placement, protocol, settings): NaN and infinity are
    rejected here; plan files are read in strict mode (`read_plan`), so `true` is no number
    and "90" no integer."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Probe(_Input):
    """An IRE needle electrode in one cycle. The active (uninsulated) part spans from
    `tip_lps_mm - exposure_mm * direction_lps` to `tip_lps_mm`."""

    id: str
    cycle: int = Field(1, ge=1, description="placement cycle this position belongs to")
    tip_lps_mm: Vec3
    direction_lps: Vec3 = Field(description="unit vector of needle advance (entry -> tip)")
    exposure_mm: float = Field(20.0, description="active exposure length (mm)")
    diameter_mm: float = Field(1.07, description="outer diameter (mm); 19 G = 1.07 mm")
    entry_lps_mm: Vec3 | None = Field(None, description="skin entry point (mm)")
    depth_mm: float | None = Field(None, description="entry-to-tip path length (mm)")


class IrePair(_Input):
    """One pulse train between two probes, in delivery order."""

    cycle: int = Field(1, ge=1)
    anode: str
    cathode: str
    voltage_v: float = Field(gt=0, le=10_000, description="pulse amplitude (V)")
    pulses: int = Field(90, ge=1, le=10_000, description="pulses in this train")
    pulse_width_us: float = Field(90.0, gt=0, le=1_000, description="pulse width (us)")
    predicted_current_a: float | None = Field(None, description="result of the forward solve")
    spacing_mm: float | None = Field(None, description="centre distance of the active parts")


class Fibre(_Input):
    """A laser fibre (its position for the first illumination): a bare fibre emits forward
    from its tip face; a cylindrical diffuser along `diffuser_length_mm` ending at the tip
    (physics.laser.emission)."""

    id: str
    tip_lps_mm: Vec3
    direction_lps: Vec3 = Field(description="unit vector of needle advance (entry -> tip)")
    emitter: Literal["bare", "diffuser"] = "bare"
    diffuser_length_mm: float | None = Field(
        None, gt=0, le=60, description="emitting length of a diffuser (mm); diffusers only"
    )
    core_diameter_um: float = Field(300.0, gt=0, le=2000)
    numerical_aperture: float | None = Field(
        None, gt=0, lt=1, description="None: the device table's value"
    )
    wavelength_nm: float = 1064.0
    entry_lps_mm: Vec3 | None = None
    depth_mm: float | None = None


class Illumination(_Input):
    """One illumination of one fibre. Illuminations sharing a `step` run simultaneously; a
    pull-back moves the tip back along the fibre by `pullback_mm` from its first position."""

    step: int = Field(1, ge=1)
    fibre: str
    power_w: float = Field(gt=0, le=1_000, description="laser power (W)")
    duration_s: float = Field(gt=0, le=86_400, description="illumination time (s)")
    energy_j: float | None = Field(None, description="power_w * duration_s (filled if absent)")
    pullback_mm: float = Field(0.0, ge=0, le=500)


class IreSimulationSettings(_Input):
    conductivity_model: Literal["nonlinear", "constant"] = "nonlinear"
    temperature_dependence: bool = False
    zone_threshold_v_per_cm: float | None = Field(
        None, description="IRE threshold; default from the tissue table"
    )
    grid_spacing_mm: float = Field(1.0, gt=0)
    roi_padding_mm: float = Field(
        25.0, description="padding of the planning grid around probes and target (mm)"
    )
    thermal: bool = True


class LaserSimulationSettings(_Input):
    grid_spacing_mm: float = Field(1.0, gt=0)
    roi_padding_mm: float = 25.0
    time_step_s: float = Field(1.0, gt=0)
    damage_criterion: Literal["arrhenius", "cem43"] = "arrhenius"
    optical_scale: dict[str, float] = Field(
        default_factory=dict,
        description="multipliers on tissue-table optical properties, e.g. {'mu_a': 1.2}",
    )
    cooldown_s: float = Field(
        60.0, ge=0, description="time simulated after the last illumination (damage still grows)"
    )
    optical_updates_per_step: int = Field(
        2, ge=0, description="light re-solves per step with coagulated optical properties"
    )
    light_padding_mm: float = Field(
        30.0, gt=0, description="light is solved within this distance of the fibre tips (mm)"
    )
    optical_sensitivity: bool = Field(
        True, description="also report the zone at the ends of the optical property ranges"
    )
    initial_temperature_c: float | None = Field(
        None,
        ge=0.0,
        le=60.0,
        description="tissue temperature at the start (degC); None: the tissue table's blood "
        "temperature (in vivo). Ex-vivo bench experiments start at room or bath temperature",
    )
    perfusion: bool = Field(
        True,
        description="False for ex-vivo tissue: no blood perfusion and no metabolic heat, and the "
        "body surface and vessels are held at initial_temperature_c (ambient) instead of blood",
    )


class Metrics(_Model):
    target_coverage: float | None = Field(None, description="fraction of tumour + margin in zone")
    tumour_coverage: float | None = None
    min_margin_mm: float | None = Field(
        None, description="smallest tumour-surface-to-zone-boundary distance; <0 if uncovered"
    )
    ablation_volume_ml: float | None = None
    non_target_liver_ml: float | None = None
    coverage_probability: float | None = Field(
        None, description="P(target_coverage >= threshold) under placement error (Monte Carlo)"
    )
    extra: dict[str, float] = Field(default_factory=dict)


class PlanWarning(_Model):
    level: Literal["info", "warning", "error"]
    code: str
    message: str


class GridSpec(_Model):
    """The grid a plan was evaluated on, in the case's patient frame (LPS, mm): voxel (i, j, k)
    lies at ``origin_lps_mm + direction @ (spacing_mm * (i, j, k))``. `direction` holds the
    3 x 3 direction cosines row by row (its columns are the i, j, k axes in LPS)."""

    origin_lps_mm: Vec3
    spacing_mm: Vec3
    shape_ijk: tuple[int, int, int]
    direction: tuple[float, float, float, float, float, float, float, float, float] = (
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
    )


class EvaluationSettings(_Model):
    """What `evaluate` needs besides the engine settings; null means the data-file default
    (criteria.yaml, planning.yaml). An evaluated plan records the values it used."""

    required_coverage: float | None = Field(
        None, gt=0, le=1, description="target coverage a feasible plan needs (fraction)"
    )
    placement_error_mm: float | None = Field(
        None, ge=0, description="RMS 3D placement error for coverage_probability (mm)"
    )
    monte_carlo_samples: int | None = Field(None, ge=0, le=100_000)
    seed: int = 0
    path_safety_distance_mm: float | None = Field(
        None, ge=0, description="clearance a needle path keeps from no-go structures (mm)"
    )


class PlanningRecord(_Model):
    """What the planner did, kept with the plan: its options, search statistics and notes
    (alternatives tried, raises refused, why a target could not be covered).
    `fingerprint` is the SHA-256 of the placement and protocol the planner chose: `evaluate`
    keeps the record only while the plan still has them (`plan_fingerprint`)."""

    planner: str
    fingerprint: str
    options: dict[str, Any] = Field(default_factory=dict)
    stats: dict[str, float] = Field(default_factory=dict)
    notes: list[PlanWarning] = Field(default_factory=list)


class CriterionResult(_Model):
    """One acceptance criterion evaluated on a plan (criteria.yaml): the metric's value, the
    limit it is held to, and whether it passed. A failed `error` criterion makes the plan
    infeasible."""

    code: str
    metric: str
    value: float | None
    limit: float
    direction: Literal["min", "max"] = Field(description="min: value >= limit; max: <= limit")
    level: Literal["info", "warning", "error"]
    passed: bool
    message: str = ""
    unit: str = ""


class CaseRef(_Model):
    case_id: str
    path: str | None = None
    target: str | None = None
    margin_mm: float | None = None

    @classmethod
    def of(cls, case: Any) -> CaseRef:
        """The reference to a loaded `hepablate.case.Case`."""
        return cls(
            case_id=case.case_id,
            path=None if case.root is None else str(case.root),
            target=case.target_id,
            margin_mm=case.margin_mm,
        )


def _schema_requires_version(schema: dict[str, Any]) -> None:
    # Plan files must carry format_version (see `Plan._version_given`).
    required = schema.setdefault("required", [])
    if "format_version" not in required:
        required.insert(0, "format_version")


class Plan(_Model):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_schema_requires_version)

    format_version: int = PLAN_FORMAT_VERSION
    modality: Literal["ire", "laser"]
    case: CaseRef | None = None
    status: Literal["unevaluated", "feasible", "infeasible"] = "unevaluated"
    status_reason: str = ""
    probes: list[Probe] = Field(default_factory=list)
    pairs: list[IrePair] = Field(default_factory=list)
    fibres: list[Fibre] = Field(default_factory=list)
    illuminations: list[Illumination] = Field(default_factory=list)
    ire_simulation: IreSimulationSettings | None = None
    laser_simulation: LaserSimulationSettings | None = None
    evaluation: EvaluationSettings | None = None
    grid: GridSpec | None = Field(
        None, description="grid the plan was evaluated on; null: built from the case"
    )
    metrics: Metrics = Field(default_factory=Metrics)
    criteria: list[CriterionResult] = Field(default_factory=list)
    warnings: list[PlanWarning] = Field(default_factory=list)
    planning: PlanningRecord | None = None
    runtime_s: float | None = None
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _version_given(self, info: ValidationInfo) -> Plan:
        # A plan file must say which format it is in; plans built in code get the current one.
        if info.mode == "json" and "format_version" not in self.model_fields_set:
            raise ValueError(
                f"format_version is missing (expected {PLAN_FORMAT_VERSION} for this hepablate)"
            )
        return self

    @field_validator("probes", "pairs", "fibres", "illuminations")
    @classmethod
    def _modality_fields(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        modality = str(info.data.get("modality"))
        own = {"ire": ("probes", "pairs"), "laser": ("fibres", "illuminations")}.get(modality)
        if v and own is not None and info.field_name not in own:
            kind = "laser" if modality == "ire" else "IRE"
            raise ValueError(
                f"belongs to {kind} plans; this plan's modality is '{modality}' "
                f"(remove '{info.field_name}' or change 'modality')"
            )
        return v

    @field_validator("format_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != PLAN_FORMAT_VERSION:
            raise ValueError(
                f"plan format_version {v} not supported (expected {PLAN_FORMAT_VERSION})"
            )
        return v


#: The largest plan file read (a plan with hundreds of probes is a few hundred kB).
MAX_PLAN_BYTES = 16 << 20


def read_plan(path: str | Path) -> Plan:
    """Read and validate a plan file (strict JSON: no booleans or strings as numbers, no
    NaN in inputs, `format_version` required), then check the work it asks for against
    `hepablate.plans.limits`."""
    from hepablate.case.spec import read_text_strict
    from hepablate.plans.limits import check_plan_limits

    p = Path(path)
    if not p.exists():
        raise InputError("plan file not found", source=str(p))
    text = read_text_strict(p, "plan", MAX_PLAN_BYTES)
    if "\\u0000" in text.lower():
        raise InputError("holds a NUL character (\\u0000); expected text", source=str(p))
    try:
        plan = Plan.model_validate_json(text, strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        if err["type"] == "json_invalid":
            detail = str(err.get("ctx", {}).get("error", err["msg"]))
            raise InputError(f"not valid JSON ({detail[:160]})", source=str(p)) from None
        raise input_error_from_validation(exc, source=str(p)) from None
    check_plan_limits(plan, source=str(p))
    return plan


def plan_fingerprint(plan: Plan) -> str:
    """SHA-256 of what a plan delivers: modality, placement and protocol (results such as
    predicted currents and energies excluded)."""
    import hashlib

    doc = {
        "modality": plan.modality,
        "probes": [p.model_dump(mode="json") for p in plan.probes],
        "pairs": [
            p.model_dump(mode="json", exclude={"predicted_current_a", "spacing_mm"})
            for p in plan.pairs
        ],
        "fibres": [f.model_dump(mode="json") for f in plan.fibres],
        "illuminations": [
            i.model_dump(mode="json", exclude={"energy_j"}) for i in plan.illuminations
        ],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def write_plan(plan: Plan, path: str | Path) -> Path:
    p = Path(path)
    p.write_text(plan.model_dump_json(indent=2, exclude_none=False) + "\n")
    return p
