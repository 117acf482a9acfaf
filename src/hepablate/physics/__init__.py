"""Physics engines on the planning grid: IRE (`hepablate.physics.ire`) and laser
(`hepablate.physics.laser`), with shared grid, solver and bioheat pieces."""

from hepablate.physics.grid import planning_grid, resample_structures
from hepablate.physics.solvers import FvOperator, SpdSolver
from hepablate.physics.thermal import PennesSolver

__all__ = ["planning_grid", "resample_structures", "FvOperator", "SpdSolver", "PennesSolver"]
