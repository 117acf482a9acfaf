"""Published liver ablation experiments and their reproduction by the forward models
(data: data/validation_experiments.yaml; method and results: docs/validation.md)."""

from hepablate.validation.experiments import (
    IreExperiment,
    LaserExperiment,
    ValidationSuite,
    load_validation_suite,
)

__all__ = ["IreExperiment", "LaserExperiment", "ValidationSuite", "load_validation_suite"]
