"""IRE model choice on evidence: the liver sigma(E) variant and the IRE threshold fitted on the
calibration experiments of `validation_experiments.yaml`, checked on the validation ones.

In a homogeneous block with voltage-driven electrodes the field does not depend on the scale of
sigma, only on the shape of sigma(E) (ratio sigma1/sigma0 and the ramp); the zone then depends
on that shape and on the threshold. The baseline sigma0 sets only the current, and the
experiments here report no liver currents, so sigma0 is not fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hepablate.anatomy.tissues import TissueTable, load_tissue_table
from hepablate.validation.experiments import IreExperiment
from hepablate.validation.reproduce import ConductivityModel, IreField

#: The liver sigma(E) variants compared; each picks values already in tissues.yaml (value or an
#: end of its literature range), so every number has its source there.
SIGMA_VARIANTS = ("table", "sel2005", "constant")

#: Threshold scan of the fit (V/cm): covers the 465-750 V/cm clinical range and below.
THRESHOLD_SCAN_V_PER_CM = np.arange(300.0, 800.0 + 1e-9, 5.0)


def sigma_variant_table(
    variant: str, base: TissueTable | None = None
) -> tuple[TissueTable, ConductivityModel]:
    """(tissue table, model name) of a liver sigma(E) variant.

    table: the tissue table's values (Go-Smart: 0.08 -> 0.32 S/m, ramp 350 -> 700 V/cm);
    sel2005: the ends of the table ranges from Sel et al. 2005 / Miklavcic et al. 2000
    (0.067 -> 0.241 S/m, ramp 362 -> 637 V/cm); constant: sigma0, no electroporation rise."""
    t = (base or load_tissue_table()).model_copy(deep=True)
    if variant in ("table", "constant"):
        return t, "constant" if variant == "constant" else "nonlinear"
    if variant != "sel2005":
        raise ValueError(f"unknown sigma variant {variant!r}; expected one of {SIGMA_VARIANTS}")
    el = t.tissues["liver"].electrical
    for q, end in (
        (el.sigma_baseline_s_per_m, 0),
        (el.sigma_electroporated_s_per_m, 0),
        (el.e_reversible_v_per_cm, 1),
        (el.e_irreversible_v_per_cm, 0),
    ):
        assert q.range is not None
        q.value = float(q.range[end])
    return t, "nonlinear"


def relative_errors(exp: IreExperiment, dims_mm: dict[str, float]) -> list[float]:
    """(predicted - measured) / measured for every dimension the paper measured."""
    out = []
    for name in ("width_mm", "depth_mm", "height_mm"):
        m = getattr(exp.measured, name)
        if m is not None:
            out.append((dims_mm[name] - m.value_mm) / m.value_mm)
    return out


@dataclass
class ThresholdFit:
    variant: str
    threshold_v_per_cm: float
    rms_relative_error: float
    scan: list[tuple[float, float]]  # (threshold, rms relative error)


def fit_threshold(
    variant: str,
    fields: Sequence[tuple[IreExperiment, IreField]],
    scan: np.ndarray = THRESHOLD_SCAN_V_PER_CM,
) -> ThresholdFit:
    """The threshold minimising the RMS relative error of all measured dimensions of the
    given (calibration) experiments."""
    rows = []
    for thr in scan:
        errs = [e for exp, f in fields for e in relative_errors(exp, f.dimensions_mm(float(thr)))]
        rows.append((float(thr), float(np.sqrt(np.mean(np.square(errs))))))
    best = min(rows, key=lambda r: r[1])
    return ThresholdFit(variant, best[0], best[1], rows)
