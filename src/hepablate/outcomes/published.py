"""The published series (src/hepablate/data/published_series.yaml) the audit compares with.

Every figure in the data file is copied from the NICE documents in the seeds, with the table
or section it comes from; `comparators` map reported figures onto the audit's measures.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

MEASURES = (
    "complete_ablation",
    "ltp",
    "local_recurrence",
    "distant_recurrence",
    "mortality",
    "bleeding",
    "infection",
    "damage_surrounding_tissue",
    "arrhythmia",
    "needle_tract_seeding",
    "complications_any",
)


class Comparator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measure: str
    events: int = Field(ge=0)
    n: int = Field(gt=0)
    unit: str
    modality: str | None = None
    derived: bool = False
    note: str | None = None
    quote: str | None = None  # the seed's words, where the count is not printed as "x/n"

    @model_validator(mode="after")
    def _check(self) -> Comparator:
        if self.measure not in MEASURES:
            raise ValueError(f"unknown measure {self.measure!r}")
        if self.events > self.n:
            raise ValueError("events > n")
        return self


class Study(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    citation: str
    reference_number: int
    section: str
    modality: str
    n_patients: int
    comparators: list[Comparator] = []
    reported: list[dict[str, Any]] = []

    def comparators_for(self, modality: str) -> list[Comparator]:
        return [c for c in self.comparators if (c.modality or self.modality) == modality]


class PublishedSeries(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: int
    documents: dict[str, dict[str, Any]]
    studies: list[Study]

    def pooled(
        self, modality: str, measure: str
    ) -> tuple[int, int, list[tuple[Study, Comparator]]]:
        """Sum of events and denominators over the studies reporting `measure` for `modality`."""
        rows = [
            (s, c)
            for s in self.studies
            for c in s.comparators_for(modality)
            if c.measure == measure
        ]
        return sum(c.events for _, c in rows), sum(c.n for _, c in rows), rows


@lru_cache(maxsize=1)
def load_published_series() -> PublishedSeries:
    text = resources.files("hepablate.data").joinpath("published_series.yaml").read_text()
    return PublishedSeries.model_validate(yaml.safe_load(text))
