"""Physics test helpers: homogeneous blocks and probe layouts."""

from __future__ import annotations

import numpy as np

from hepablate.anatomy.tissues import load_tissue_table
from hepablate.core.volume import Volume
from hepablate.devices import load_device_table
from hepablate.physics.ire import IreProblem
from hepablate.plans.model import IreSimulationSettings, Probe


def block_problem(
    shape_kji: tuple[int, int, int],
    spacing_mm: float = 1.0,
    model: str = "constant",
    thermal: bool = False,
    **settings,
) -> IreProblem:
    """Homogeneous liver block centred on the origin (LPS, identity direction)."""
    nk, nj, ni = shape_kji
    origin = tuple(-(n - 1) * spacing_mm / 2 for n in (ni, nj, nk))
    grid = Volume(np.zeros(shape_kji, np.uint8), (spacing_mm,) * 3, origin)
    full = np.ones(shape_kji, bool)
    return IreProblem(
        grid,
        {"body": full, "liver": full.copy()},
        load_tissue_table(),
        load_device_table(),
        IreSimulationSettings(
            conductivity_model=model, thermal=thermal, grid_spacing_mm=spacing_mm, **settings
        ),
    )


def parallel_probes(
    spacing_mm: float,
    tip_z_mm: float,
    exposure_mm: float,
    y_mm: float = 0.0,
    n: int = 2,
    x0_mm: float = 0.0,
) -> list[Probe]:
    xs = [x0_mm + (i - (n - 1) / 2) * spacing_mm for i in range(n)]
    return [
        Probe(
            id=f"P{i + 1}",
            tip_lps_mm=(x, y_mm, tip_z_mm),
            direction_lps=(0.0, 0.0, 1.0),
            exposure_mm=exposure_mm,
        )
        for i, x in enumerate(xs)
    ]
