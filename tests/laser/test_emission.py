"""Fibre emission (bare forward-peaked, cylindrical diffuser) and the grid-independent tip
temperature (physics.laser.emission)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepablate.anatomy.tissues import load_tissue_table
from hepablate.devices.catalog import load_device_table
from hepablate.errors import InputError
from hepablate.phantoms.builder import BlockSpec, build_block
from hepablate.physics.laser.emission import (
    Emitter,
    emission_points,
    source_density,
    surface_points,
)
from hepablate.physics.laser.protocol import resolve_protocol
from hepablate.physics.laser.simulate import simulate_laser
from hepablate.plans.model import Fibre, Illumination, LaserSimulationSettings

D = np.array([0.0, 0.0, 1.0])


def _mu_t() -> float:
    o = load_tissue_table().tissues["liver"].optical_1064nm
    return 0.1 * float(o.mu_a_per_cm.value + o.mu_s_reduced_per_cm.value)


def test_bare_fibre_source_is_forward_of_the_tip_by_about_one_mean_free_path():
    mu_t = _mu_t()
    pts, w = emission_points(np.zeros(3), D, Emitter("bare"), mu_t, 1.0)
    assert w.sum() == pytest.approx(1.0)
    z = pts @ D
    assert z.min() > 0.0  # nothing behind the tip face
    # Mean depth of an exponential truncated at 5 mean free paths.
    mfp = 1.0 / mu_t
    expect = mfp * (1 - 6 * math.exp(-5) / (1 - math.exp(-5)))
    assert float(w @ z) == pytest.approx(expect, rel=0.02)
    # The beam widens with depth by its half-angle in tissue.
    r = np.linalg.norm(pts[:, :2], axis=1)
    assert r[z > 3 * mfp].mean() > r[z < mfp].mean()


def test_diffuser_source_is_uniform_along_its_section_ending_at_the_tip():
    pts, w = emission_points(np.zeros(3), D, Emitter("diffuser", length_mm=20.0), _mu_t(), 1.0)
    z = pts @ D
    assert z.min() == pytest.approx(-20.0) and z.max() == pytest.approx(0.0)
    assert float(w @ z) == pytest.approx(-10.0)
    assert np.allclose(w, w[0])


def test_source_density_injects_the_power_exactly():
    rng = np.random.default_rng(1)
    ijk = rng.uniform(3, 12, size=(50, 3))
    w = rng.uniform(0, 1, 50)
    s = source_density((16, 16, 16), ijk, w / w.sum(), 2.5, 0.5**3)
    assert float(s.sum()) * 0.5**3 == pytest.approx(2.5)


def test_tip_temperature_surface_is_at_the_radius():
    for em in (Emitter("bare"), Emitter("diffuser", length_mm=10.0)):
        for surf in surface_points(np.ones(3), D, em, 2.0):
            if em.kind == "bare":
                assert np.allclose(np.linalg.norm(surf - 1.0, axis=1), 2.0)
            else:
                assert np.allclose(np.linalg.norm((surf - 1.0)[:, :2], axis=1), 2.0)


def test_diffuser_length_is_required_and_only_for_diffusers():
    dev = load_device_table()
    ill = [Illumination(fibre="F1", power_w=3.0, duration_s=400.0)]
    with pytest.raises(InputError, match="emitting length") as e:
        resolve_protocol(
            [Fibre(id="F1", tip_lps_mm=(0, 0, 0), direction_lps=(0, 0, 1), emitter="diffuser")],
            ill,
            dev,
        )
    assert e.value.field == "fibres.0.diffuser_length_mm"
    with pytest.raises(InputError, match="no diffuser length"):
        resolve_protocol(
            [Fibre(id="F1", tip_lps_mm=(0, 0, 0), direction_lps=(0, 0, 1), diffuser_length_mm=5)],
            ill,
            dev,
        )


def _single(spacing_mm: float, tip=(0.0, 0.0, 0.0), power_w=3.0, duration_s=120.0, **fibre):
    case = build_block(BlockSpec(size_mm=(44.0, 44.0, 64.0), spacing_mm=(spacing_mm,) * 3))
    f = Fibre(id="F1", tip_lps_mm=tip, direction_lps=(0.0, 0.0, 1.0), **fibre)
    settings = LaserSimulationSettings(
        grid_spacing_mm=spacing_mm,
        roi_padding_mm=18.0,
        cooldown_s=0.0,
        optical_sensitivity=False,
        initial_temperature_c=20.0,
        perfusion=False,
    )
    return simulate_laser(
        case,
        [f],
        [Illumination(fibre="F1", power_w=power_w, duration_s=duration_s)],
        settings=settings,
        tissues=load_tissue_table(),
        devices=load_device_table(),
    )


def test_tip_temperature_converges_with_the_grid_and_does_not_jump_with_the_tip():
    fine = _single(0.5)
    coarse = _single(1.0)
    moved = _single(1.0, tip=(0.5, 0.5, 0.37))  # 0.8 mm off the voxel centre
    rise = {k: r.tip_max_c[0] - 20.0 for k, r in (("f", fine), ("c", coarse), ("m", moved))}
    assert rise["f"] > 20.0  # a real heating, not a cold probe point
    assert abs(rise["c"] / rise["f"] - 1) < 0.05, rise
    assert abs(rise["m"] / rise["c"] - 1) < 0.05, rise


def test_diffuser_lesion_is_elongated_along_the_fibre_and_bare_lesion_is_not():
    diff = _single(1.0, power_w=7.0, duration_s=300.0, emitter="diffuser", diffuser_length_mm=20.0)
    bare = _single(1.0, power_w=3.0, duration_s=300.0)

    def extents(r):
        idx = np.argwhere(r.zone)
        lps = r.grid.index_to_lps(idx[:, ::-1].astype(float))
        span = lps.max(axis=0) - lps.min(axis=0) + 1.0
        return span[2], max(span[0], span[1]), lps

    length, width, lps = extents(diff)
    assert length > 1.5 * width, (length, width)
    assert lps[:, 2].mean() == pytest.approx(-10.0, abs=1.5)  # centred on the section
    length, width, lps = extents(bare)
    assert 0.85 < length / width < 1.25
    assert lps[:, 2].mean() > 0.0  # the bare fibre's lesion sits ahead of its tip
    # The same power spread along 20 mm keeps the tissue next to the applicator far cooler.
    cool = _single(1.0, power_w=3.0, duration_s=300.0, emitter="diffuser", diffuser_length_mm=20.0)
    assert cool.tip_max_c[0] < bare.tip_max_c[0] - 20.0
