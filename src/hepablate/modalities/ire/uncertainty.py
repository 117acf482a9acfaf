"""The IRE zone under the uncertainty of the lethal-field threshold (issue 13, item 4).

Patient and animal studies put the threshold anywhere from about 465 to 750 V/cm (tissues.yaml
ranges, with sources). Each tissue's threshold is taken as triangular over its range with the
mode at its default, one quantile shared by all tissues (a patient's cells are as sensitive
throughout). For a fixed field the voxel is then ablated in a fraction F(E) of the samples,
so the zone ablated in at least a fraction p of them (the *confident zone*) is the field at or
above each tissue's p-quantile threshold, and the *possible zone* (ablated in at least 1 - p)
the field above its (1 - p)-quantile; no re-solve is needed. p is planning.yaml
`confident_zone_fraction` (0.9).

Not sampled (yet): the conductivity model sigma(E), which moves the field itself and needs a
re-solve per sample (docs/validation.md gives its effect on the validation experiments).
"""

from __future__ import annotations

import math

import numpy as np

from hepablate.anatomy.tissues import TissueTable


def triangular_quantile(lo: float, mode: float, hi: float, q: float) -> float:
    """The q-quantile of the triangular distribution on [lo, hi] with the given mode."""
    if hi <= lo:
        return float(mode)
    f_mode = (mode - lo) / (hi - lo)
    if q <= f_mode:
        return lo + math.sqrt(q * (hi - lo) * (mode - lo))
    return hi - math.sqrt((1.0 - q) * (hi - lo) * (hi - mode))


def threshold_quantiles(tissues: TissueTable, q: float) -> np.ndarray:
    """Per tissue index (`TissueTable.tissue_names` order): the q-quantile of the IRE threshold
    (V/cm); a tissue without a range keeps its default."""
    out = []
    for name in tissues.tissue_names:
        th = tissues.tissues[name].electrical.ire_threshold_v_per_cm
        rng = th.range
        if rng is None:
            out.append(float(th.value))
        else:
            out.append(triangular_quantile(float(rng[0]), float(th.value), float(rng[1]), q))
    return np.asarray(out, float)


def band_zones(
    field_max_v_per_cm: np.ndarray, tissue_index: np.ndarray, tissues: TissueTable, p: float
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """(confident zone, possible zone, the thresholds used per tissue name) for a field map
    and its tissue index map (-1 outside the body: never ablated)."""
    hi = threshold_quantiles(tissues, p)
    lo = threshold_quantiles(tissues, 1.0 - p)
    inside = tissue_index >= 0
    t = np.where(inside, tissue_index, 0).astype(np.intp)
    confident = inside & (field_max_v_per_cm >= hi[t])
    possible = inside & (field_max_v_per_cm >= lo[t])
    used = {
        f"{name}.{k}": round(float(v[i]), 1)
        for i, name in enumerate(tissues.tissue_names)
        for k, v in (("confident", hi), ("possible", lo))
    }
    return confident, possible, used
