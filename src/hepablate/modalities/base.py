"""The interface of a modality: plan, run the engine on a plan, assess, write outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel

from hepablate.anatomy.tissues import TissueTable
from hepablate.case.model import Case
from hepablate.core.progress import Progress
from hepablate.devices.catalog import DeviceTable
from hepablate.evaluation.evaluation import Assessment, EngineRun, Evaluation
from hepablate.evaluation.metrics import ZoneMetrics
from hepablate.plans.model import EvaluationSettings, Plan


class Modality(Protocol):
    """One treatment modality (IRE, laser). `hepablate.evaluate` and `hepablate.plan` call
    these; no caller branches on the modality."""

    name: str
    label: str
    options_model: type[BaseModel]
    """The planner's options (validated from keyword arguments or CLI options)."""

    def plan(
        self,
        case: Case,
        options: BaseModel,
        *,
        tissues: TissueTable,
        devices: DeviceTable,
        progress: Progress | None,
        command: str,
    ) -> Evaluation:
        """Search a placement and protocol; the result is `evaluate`'s of the chosen plan."""
        ...

    def run_engine(
        self,
        case: Case,
        plan: Plan,
        settings: EvaluationSettings,
        *,
        tissues: TissueTable,
        devices: DeviceTable,
        progress: Progress | None,
        engine: Any,
        source: str | None,
    ) -> EngineRun:
        """The modality's forward model on the plan (raises InputError for a bad plan)."""
        ...

    def assess(
        self,
        case: Case,
        run: EngineRun,
        region: np.ndarray,
        zone_metrics: ZoneMetrics,
        settings: EvaluationSettings,
    ) -> Assessment:
        """Coverage probability and the modality's own diagnosis of the zone."""
        ...

    def write_outputs(
        self, out_dir: Path, case: Case, evaluation: Evaluation, *, report: bool
    ) -> list[Path]:
        """plan.json, the zone and maps as NIfTI (DICOM SEG for DICOM cases), the report."""
        ...
