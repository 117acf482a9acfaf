"""Laser ablation physics: light diffusion (1064 nm), Pennes bioheat, thermal damage, and the
forward model of a laser plan (fibres and illuminations -> temperature, damage, zone)."""

from hepablate.physics.laser.evaluation import (
    LaserEvaluation,
    evaluate_laser_plan,
    simulate_laser_cli,
)
from hepablate.physics.laser.simulate import LaserResult, resolve_protocol, simulate_laser

__all__ = [
    "LaserEvaluation",
    "LaserResult",
    "evaluate_laser_plan",
    "resolve_protocol",
    "simulate_laser",
    "simulate_laser_cli",
]
