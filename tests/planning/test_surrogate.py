"""The compiled Monte Carlo surrogate agrees with its reference implementation and with the
analytic field of two long parallel line charges."""

import numpy as np
import pytest

from hepablate.optimize.surrogate import (
    covered_fraction,
    field_max_v_per_cm,
    pair_field_v_per_cm,
)
from hepablate.plans.model import Probe


def _layout(rng: np.random.Generator) -> tuple[list[Probe], list[tuple[str, str, float, int]]]:
    probes = []
    for cyc in (1, 2):
        for i, (x, y) in enumerate([(-8, -8), (8, -8), (8, 8), (-8, 8)]):
            d = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, 3)
            probes.append(
                Probe(
                    id=f"P{i + 1}",
                    cycle=cyc,
                    tip_lps_mm=(x + rng.normal(), y + rng.normal(), 10.0 - 12.0 * (cyc - 1)),
                    direction_lps=tuple(d / np.linalg.norm(d)),
                    exposure_mm=15.0 + 5 * cyc,
                )
            )
    pairs = [
        (a, c, float(v), cyc)
        for cyc in (1, 2)
        for (a, c), v in zip(
            [("P1", "P2"), ("P2", "P3"), ("P3", "P4"), ("P4", "P1"), ("P1", "P3")],
            rng.uniform(1500, 3000, 5),
            strict=True,
        )
    ]
    return probes, pairs


def _reference_max(pts, probes, pairs, offsets=None):
    by = {(p.cycle, p.id): p for p in probes}
    out = np.zeros(len(pts))
    for a, c, v, cyc in pairs:
        pa, pc = by[(cyc, a)], by[(cyc, c)]
        if offsets is not None:
            pa = pa.model_copy(
                update={"tip_lps_mm": tuple(np.asarray(pa.tip_lps_mm) + offsets[(cyc, a)])}
            )
            pc = pc.model_copy(
                update={"tip_lps_mm": tuple(np.asarray(pc.tip_lps_mm) + offsets[(cyc, c)])}
            )
        out = np.maximum(out, pair_field_v_per_cm(pts, pa, pc, v))
    return out


def test_compiled_field_matches_reference_including_points_inside_needles():
    rng = np.random.default_rng(3)
    probes, pairs = _layout(rng)
    pts = rng.uniform([-20, -20, -25], [20, 20, 15], size=(5000, 3))
    # Points on and just inside the needles' active parts.
    for p in probes[:4]:
        tip = np.asarray(p.tip_lps_mm)
        d = np.asarray(p.direction_lps)
        pts = np.vstack([pts, tip - 5.0 * d, tip - 7.0 * d + 0.2 * np.cross(d, [1.0, 0, 0])])
    ref = _reference_max(pts, probes, pairs)
    got = field_max_v_per_cm(pts, probes, pairs)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)
    offsets = {(p.cycle, p.id): rng.normal(0, 1.2, 3) for p in probes}
    ref_moved = _reference_max(pts, probes, pairs, offsets)
    np.testing.assert_allclose(
        field_max_v_per_cm(pts, probes, pairs, offsets), ref_moved, rtol=1e-9, atol=1e-9
    )
    assert not np.allclose(ref_moved, ref)  # the offsets do move the probes
    for thr in (400.0, 650.0, 900.0):
        assert covered_fraction(pts, probes, pairs, thr, offsets) == pytest.approx(
            float((ref_moved >= thr).mean()), abs=1e-12
        )


def test_long_parallel_needles_match_two_line_charges():
    """Far from the ends of two long needles the model is two infinite line charges +-q: the
    potential difference between the surface points (one radius out, perpendicular to the
    plane of the pair) is (q / pi eps) ln(sqrt(D^2 + r^2) / r), and the field between the
    lines (q / 2 pi eps) (1 / x + 1 / (D - x))."""
    r, gap, v = 0.535, 15.0, 2000.0
    a = Probe(id="A", tip_lps_mm=(0.0, 0.0, 0.0), direction_lps=(0, 0, 1), exposure_mm=2000.0)
    c = Probe(id="B", tip_lps_mm=(gap, 0.0, 0.0), direction_lps=(0, 0, 1), exposure_mm=2000.0)
    x = np.array([2.0, 5.0, 7.5, 11.0])
    pts = np.stack([x, np.zeros_like(x), np.full_like(x, -1000.0)], axis=1)
    e = field_max_v_per_cm(pts, [a, c], [("A", "B", v, 1)])
    q_over_2pi_eps = v / (2.0 * np.log(np.hypot(gap, r) / r))  # V
    analytic_v_per_cm = q_over_2pi_eps * (1 / x + 1 / (gap - x)) * 10.0
    np.testing.assert_allclose(e, analytic_v_per_cm, rtol=1e-3)
