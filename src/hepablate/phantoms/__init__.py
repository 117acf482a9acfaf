"""Deterministic synthetic cases built in code (no randomness unless seeded)."""

from hepablate.phantoms.builder import (
    IRE_PLANNING_SUITE,
    BlockSpec,
    PhantomSpec,
    TubeSpec,
    TumourSpec,
    build_block,
    build_phantom,
    ire_example_spec,
    ire_suite_spec,
    laser_example_spec,
)
from hepablate.phantoms.torso import (
    SEGMENTS,
    TUMOUR_POSITIONS,
    TorsoAnatomy,
    TorsoSpec,
    TorsoTumour,
    build_torso,
    build_torso_anatomy,
    torso_spec,
)

__all__ = [
    "TorsoSpec",
    "TorsoTumour",
    "TorsoAnatomy",
    "torso_spec",
    "build_torso",
    "build_torso_anatomy",
    "TUMOUR_POSITIONS",
    "SEGMENTS",
    "PhantomSpec",
    "TumourSpec",
    "TubeSpec",
    "BlockSpec",
    "build_phantom",
    "build_block",
    "ire_example_spec",
    "ire_suite_spec",
    "IRE_PLANNING_SUITE",
    "laser_example_spec",
]
