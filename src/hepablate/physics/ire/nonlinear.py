"""Compiled per-cell steps of the Picard iteration for sigma(E) (see `problem.py`).

The same formulas as `params.sigma_of_field` and `params.sigma_log_slope` (a test checks
that they agree), fused into single passes over the cells: at 1 M cells the NumPy versions
made a dozen temporaries per iteration and cost about 40 ms, a third of a linear solve.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hepablate.physics.kernels import _variant, use_parallel


def _field_magnitude_py(f, e_prev, out):
    """out = |f| / 100 (V/m -> V/cm); returns (sum (out - e_prev)^2, sum out^2), with
    e_prev ignored when it is empty."""
    n = out.size
    chunks = 64
    d2 = np.zeros(chunks)
    m2 = np.zeros(chunks)
    step = (n + chunks - 1) // chunks
    has_prev = e_prev.size == n
    for c in nb.prange(chunks):
        sd = 0.0
        sm = 0.0
        for t in range(c * step, min(n, (c + 1) * step)):
            e = np.sqrt(f[0, t] * f[0, t] + f[1, t] * f[1, t] + f[2, t] * f[2, t]) / 100.0
            out[t] = e
            sm += e * e
            if has_prev:
                d = e - e_prev[t]
                sd += d * d
        d2[c] = sd
        m2[c] = sm
    return d2.sum(), m2.sum()


def _relax_sigma_py(emag, sig, sigma0, sigma1, e_rev, e_irr, tf, relax, damp, last, shrink, grow):
    """sig += damp min(relax, 1 / (1 + d ln sigma / d ln E)) (sigma(E) tf - sig), in place.

    `last` holds each cell's previous update; where the update changes sign the cell's
    `damp` factor shrinks, elsewhere it grows back towards 1 (shrink = grow = 1 leaves the
    plain relaxation). This breaks the period-2 cycles that the Newton-type relaxation alone
    can fall into where sigma(E) bends sharply."""
    n = sig.size
    scalar_tf = tf.size == 1
    for t in nb.prange(n):
        e = emag[t]
        width = max(e_irr[t] - e_rev[t], 1e-9)
        s = min(max((e - e_rev[t]) / width, 0.0), 1.0)
        span = sigma1[t] - sigma0[t]
        base = sigma0[t] + span * (s * s * (3.0 - 2.0 * s))
        slope = span * 6.0 * s * (1.0 - s) / width * e / base
        factor = tf[0] if scalar_tf else tf[t]
        delta = base * factor - sig[t]
        if delta * last[t] < 0.0:
            damp[t] *= shrink
        else:
            damp[t] = min(1.0, damp[t] * grow)
        last[t] = delta
        w = min(relax, 1.0 / (1.0 + slope)) * damp[t]
        sig[t] += w * delta


_FUNCS = {"magnitude": _field_magnitude_py, "relax": _relax_sigma_py}
_KERNELS = {
    par: {
        name: nb.njit(parallel=par, cache=True)(_variant(f, "_par" if par else "_ser"))
        for name, f in _FUNCS.items()
    }
    for par in (False, True)
}
_EMPTY = np.zeros(0)
#: Per-cell step factors once the iteration stagnates (see `relax_sigma`).
SHRINK = 0.5
GROW = 1.25


def field_magnitude(
    field_v_per_m: np.ndarray, previous_v_per_cm: np.ndarray | None, out: np.ndarray
) -> tuple[float, float]:
    """|E| in V/cm into `out`; returns (|out - previous|_2, |out|_2)."""
    prev = _EMPTY if previous_v_per_cm is None else previous_v_per_cm
    d2, m2 = _KERNELS[use_parallel(out.size)]["magnitude"](field_v_per_m, prev, out)
    return float(np.sqrt(d2)), float(np.sqrt(m2))


def relax_sigma(
    emag_v_per_cm: np.ndarray,
    sigma: np.ndarray,
    sigma0: np.ndarray,
    sigma1: np.ndarray,
    e_rev: np.ndarray,
    e_irr: np.ndarray,
    temp_factor: np.ndarray | float,
    relax: float,
    damp: np.ndarray | None = None,
    last: np.ndarray | None = None,
    adaptive: bool = False,
) -> None:
    """One relaxed Picard update of `sigma` (S/m) in place. Pass the same `damp` (start at
    ones) and `last` (start at zeros) arrays to every step of one iteration; with `adaptive`
    a cell whose update changes sign has its step shrunk (SHRINK), others regrow (GROW)."""
    tf = np.atleast_1d(np.asarray(temp_factor, dtype=np.float64))
    damp = np.ones(sigma.size) if damp is None else damp
    last = np.zeros(sigma.size) if last is None else last
    _KERNELS[use_parallel(sigma.size)]["relax"](
        emag_v_per_cm,
        sigma,
        sigma0,
        sigma1,
        e_rev,
        e_irr,
        tf,
        float(relax),
        damp,
        last,
        SHRINK if adaptive else 1.0,
        GROW if adaptive else 1.0,
    )
