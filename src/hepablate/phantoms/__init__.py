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

__all__ = [
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
