"""Laser ablation physics: light diffusion (1064 nm), Pennes bioheat, thermal damage, the
forward model of a laser plan (fibres and illuminations -> temperature, damage, zone), and its
safety, sensitivity and robustness analysis."""

from hepablate.physics.laser.protocol import resolve_protocol
from hepablate.physics.laser.simulate import LaserResult, simulate_laser

__all__ = ["LaserResult", "resolve_protocol", "simulate_laser"]
