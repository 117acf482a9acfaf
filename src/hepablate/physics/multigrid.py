"""Geometric multigrid for the cell-centred diffusion operator with electrode well terms.

The operator of the IRE field problem on the active cells of a grid is

    (A u)_c = sum_faces g_f (u_c - u_n) + (W diag(wi) W^T u)_c

with face conductances ``g_f = h 2 s_c s_n / (s_c + s_n)`` (harmonic mean, S) and the
electrode term of `electrodes.py` (W: normalised kernel weights of the well nodes, wi: well
indices, S). `GridMultigrid` solves ``A u = b`` by conjugate gradients preconditioned with one
symmetric multigrid V-cycle, matrix-free on the (k, j, i) grid with numba kernels:

- Coarsening by 2 in each direction (cell-centred; odd sizes keep a half-empty last cell).
- Coarse operators rediscretised: a coarse face conductance is half the sum of the four fine
  face conductances it covers (for a constant coefficient this is exactly the coarse-grid
  finite-volume operator), and the electrode weights are summed over the children of each
  coarse cell (the total weight of each node is kept).
- Transfers: trilinear cell-centred prolongation P (weights 27/64 ... 1/64), renormalised
  over active coarse cells so that a constant is interpolated exactly next to the body
  surface, and restriction R = P^T. Trilinear P with its transpose satisfies the order rule
  m_P + m_R > 2 for second-order problems (Hemker 1990; Trottenberg, Oosterlee and Schueller,
  Multigrid, 2001, section 2.8), which piecewise-constant transfers do not.
- Smoother: red-black Gauss-Seidel on the 7-point part; the electrode couplings (which join
  cells of one colour) are lagged within a half-sweep and accounted for by an l1 diagonal
  (their absolute row sum added to the diagonal), which keeps every half-sweep convergent
  (Baker, Falgout, Kolev and Yang, SIAM J Sci Comput 33:2864, 2011). Pre-smoothing runs red
  then black, post-smoothing black then red, so the V-cycle is a symmetric preconditioner.
- Coarsest level (at most COARSEST_CELLS cells): dense Cholesky.

Why not algebraic multigrid: pyamg's smoothed aggregation needs the same number of iterations
but its cycle costs about 0.24 s at 1 M cells on the 2-core machine (sparse matrices, one
thread), and the hierarchy cannot be refreshed cheaply when the conductivity changes in every
nonlinear iteration. Here a new conductivity costs one pass over the faces per level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numba as nb
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from hepablate.physics.kernels import _variant, blas_single_thread, use_parallel

#: Stop coarsening at this many cells (dense Cholesky below).
COARSEST_CELLS = 600
#: Precision of the V-cycle (the preconditioner); CG itself runs in float64. Single precision
#: halves the memory traffic of the bandwidth-bound kernels; the preconditioner only has to
#: be accurate to a few digits.
WORK_DTYPE = np.float32


# ---- kernels (written once, compiled serial and parallel) ---------------------------------
def _faces_py(sig, h, gx, gy, gz):
    nk, nj, ni = sig.shape
    for k in nb.prange(nk):
        for j in range(nj):
            for i in range(ni):
                a = sig[k, j, i]
                gx[k, j, i] = 0.0
                gy[k, j, i] = 0.0
                gz[k, j, i] = 0.0
                if a <= 0.0:
                    continue
                if i + 1 < ni:
                    b = sig[k, j, i + 1]
                    if b > 0.0:
                        gx[k, j, i] = h * 2.0 * a * b / (a + b)
                if j + 1 < nj:
                    b = sig[k, j + 1, i]
                    if b > 0.0:
                        gy[k, j, i] = h * 2.0 * a * b / (a + b)
                if k + 1 < nk:
                    b = sig[k + 1, j, i]
                    if b > 0.0:
                        gz[k, j, i] = h * 2.0 * a * b / (a + b)


def _coarsen_faces_py(gx, gy, gz, cx, cy, cz):
    nk, nj, ni = gx.shape
    nkc, njc, nic = cx.shape
    for kc in nb.prange(nkc):
        for jc in range(njc):
            for ic in range(nic):
                sx = 0.0
                sy = 0.0
                sz = 0.0
                for dk in range(2):
                    k = 2 * kc + dk
                    if k >= nk:
                        continue
                    for dj in range(2):
                        j = 2 * jc + dj
                        if j >= nj:
                            continue
                        if 2 * ic + 1 < ni:
                            sx += gx[k, j, 2 * ic + 1]
                for dk in range(2):
                    k = 2 * kc + dk
                    if k >= nk:
                        continue
                    for di in range(2):
                        i = 2 * ic + di
                        if i >= ni:
                            continue
                        if 2 * jc + 1 < nj:
                            sy += gy[k, 2 * jc + 1, i]
                for dj in range(2):
                    j = 2 * jc + dj
                    if j >= nj:
                        continue
                    for di in range(2):
                        i = 2 * ic + di
                        if i >= ni:
                            continue
                        if 2 * kc + 1 < nk:
                            sz += gz[2 * kc + 1, j, i]
                cx[kc, jc, ic] = 0.5 * sx
                cy[kc, jc, ic] = 0.5 * sy
                cz[kc, jc, ic] = 0.5 * sz


def _inv_diag_py(gx, gy, gz, extra, active, out):
    """out = 1 / (sum of the face conductances + extra) on active cells, 0 elsewhere."""
    nk, nj, ni = gx.shape
    for k in nb.prange(nk):
        for j in range(nj):
            for i in range(ni):
                s = gx[k, j, i] + gy[k, j, i] + gz[k, j, i] + extra[k, j, i]
                if i > 0:
                    s += gx[k, j, i - 1]
                if j > 0:
                    s += gy[k, j - 1, i]
                if k > 0:
                    s += gz[k - 1, j, i]
                out[k, j, i] = 1.0 / s if (active[k, j, i] and s > 0.0) else 0.0


def _stencil_py(u, gx, gy, gz, out, sign, base):
    """out = base + sign * (7-point part of A) u."""
    nk, nj, ni = u.shape
    for k in nb.prange(nk):
        for j in range(nj):
            for i in range(ni):
                uc = u[k, j, i]
                s = 0.0
                if i > 0:
                    s += gx[k, j, i - 1] * (uc - u[k, j, i - 1])
                if i + 1 < ni:
                    s += gx[k, j, i] * (uc - u[k, j, i + 1])
                if j > 0:
                    s += gy[k, j - 1, i] * (uc - u[k, j - 1, i])
                if j + 1 < nj:
                    s += gy[k, j, i] * (uc - u[k, j + 1, i])
                if k > 0:
                    s += gz[k - 1, j, i] * (uc - u[k - 1, j, i])
                if k + 1 < nk:
                    s += gz[k, j, i] * (uc - u[k + 1, j, i])
                out[k, j, i] = base[k, j, i] + sign * s


def _rb_sweep_py(u, b, gx, gy, gz, inv_diag, colour):
    nk, nj, ni = u.shape
    for k in nb.prange(nk):
        for j in range(nj):
            i0 = (k + j + colour) % 2
            for i in range(i0, ni, 2):
                idg = inv_diag[k, j, i]
                if idg == 0.0:
                    continue
                uc = u[k, j, i]
                s = 0.0
                if i > 0:
                    s += gx[k, j, i - 1] * (uc - u[k, j, i - 1])
                if i + 1 < ni:
                    s += gx[k, j, i] * (uc - u[k, j, i + 1])
                if j > 0:
                    s += gy[k, j - 1, i] * (uc - u[k, j - 1, i])
                if j + 1 < nj:
                    s += gy[k, j, i] * (uc - u[k, j + 1, i])
                if k > 0:
                    s += gz[k - 1, j, i] * (uc - u[k - 1, j, i])
                if k + 1 < nk:
                    s += gz[k, j, i] * (uc - u[k + 1, j, i])
                u[k, j, i] = uc + (b[k, j, i] - s) * idg


_W1 = np.array([0.25, 0.75, 0.75, 0.25])


def _restrict_py(r, inv_s, active_c, rc, w1, t1, t2):
    """rc = P^T r: the transpose of `_prolong_py`, applied one axis at a time (the weights
    are a tensor product; the normalisation is per fine cell, the mask per coarse cell)."""
    nk, nj, ni = r.shape
    nkc, njc, nic = rc.shape
    for k in nb.prange(nk):
        for j in range(nj):
            for ic in range(nic):
                s = 0.0
                for di in range(4):
                    i = 2 * ic - 1 + di
                    if 0 <= i < ni:
                        s += w1[di] * r[k, j, i] * inv_s[k, j, i]
                t1[k, j, ic] = s
    for k in nb.prange(nk):
        for jc in range(njc):
            for ic in range(nic):
                t2[k, jc, ic] = 0.0
            for dj in range(4):
                j = 2 * jc - 1 + dj
                if 0 <= j < nj:
                    w = w1[dj]
                    for ic in range(nic):
                        t2[k, jc, ic] += w * t1[k, j, ic]
    for kc in nb.prange(nkc):
        for jc in range(njc):
            for ic in range(nic):
                s = 0.0
                if active_c[kc, jc, ic]:
                    for dk in range(4):
                        k = 2 * kc - 1 + dk
                        if 0 <= k < nk:
                            s += w1[dk] * t2[k, jc, ic]
                rc[kc, jc, ic] = s


def _gradient_py(u, index, h, out):
    """out[:, index[c]] = cell-centred gradient (i, j, k components, per metre) of the grid
    potential `u` at active cells (index >= 0): central differences over the active
    neighbours, one-sided next to inactive cells."""
    nk, nj, ni = u.shape
    for k in nb.prange(nk):
        for j in range(nj):
            for i in range(ni):
                c = index[k, j, i]
                if c < 0:
                    continue
                uc = u[k, j, i]
                for comp in range(3):
                    s = 0.0
                    cnt = 0
                    if comp == 0:
                        if i > 0 and index[k, j, i - 1] >= 0:
                            s += uc - u[k, j, i - 1]
                            cnt += 1
                        if i + 1 < ni and index[k, j, i + 1] >= 0:
                            s += u[k, j, i + 1] - uc
                            cnt += 1
                    elif comp == 1:
                        if j > 0 and index[k, j - 1, i] >= 0:
                            s += uc - u[k, j - 1, i]
                            cnt += 1
                        if j + 1 < nj and index[k, j + 1, i] >= 0:
                            s += u[k, j + 1, i] - uc
                            cnt += 1
                    else:
                        if k > 0 and index[k - 1, j, i] >= 0:
                            s += uc - u[k - 1, j, i]
                            cnt += 1
                        if k + 1 < nk and index[k + 1, j, i] >= 0:
                            s += u[k + 1, j, i] - uc
                            cnt += 1
                    out[comp, c] = s / max(cnt, 1) / h


def _prolong_py(ec, inv_s, active_c, u):
    """u += P ec: trilinear cell-centred interpolation over the active coarse cells."""
    nk, nj, ni = u.shape
    nkc, njc, nic = ec.shape
    for k in nb.prange(nk):
        kc0 = k // 2
        kc1 = kc0 + (1 if k % 2 == 1 else -1)
        for j in range(nj):
            jc0 = j // 2
            jc1 = jc0 + (1 if j % 2 == 1 else -1)
            for i in range(ni):
                isv = inv_s[k, j, i]
                if isv == 0.0:
                    continue
                ic0 = i // 2
                ic1 = ic0 + (1 if i % 2 == 1 else -1)
                s = 0.0
                for a in range(2):
                    kk = kc0 if a == 0 else kc1
                    if kk < 0 or kk >= nkc:
                        continue
                    wa = 0.75 if a == 0 else 0.25
                    for bb in range(2):
                        jj = jc0 if bb == 0 else jc1
                        if jj < 0 or jj >= njc:
                            continue
                        wb = wa * (0.75 if bb == 0 else 0.25)
                        for c in range(2):
                            ii = ic0 if c == 0 else ic1
                            if ii < 0 or ii >= nic:
                                continue
                            if active_c[kk, jj, ii]:
                                s += wb * (0.75 if c == 0 else 0.25) * ec[kk, jj, ii]
                u[k, j, i] += isv * s


def _interp_norm_py(active_f, active_c, inv_s):
    """inv_s = 1 / (sum of trilinear weights over active coarse cells), 0 off the domain."""
    nk, nj, ni = active_f.shape
    nkc, njc, nic = active_c.shape
    for k in nb.prange(nk):
        kc0 = k // 2
        kc1 = kc0 + (1 if k % 2 == 1 else -1)
        for j in range(nj):
            jc0 = j // 2
            jc1 = jc0 + (1 if j % 2 == 1 else -1)
            for i in range(ni):
                inv_s[k, j, i] = 0.0
                if not active_f[k, j, i]:
                    continue
                ic0 = i // 2
                ic1 = ic0 + (1 if i % 2 == 1 else -1)
                s = 0.0
                for a in range(2):
                    kk = kc0 if a == 0 else kc1
                    if kk < 0 or kk >= nkc:
                        continue
                    wa = 0.75 if a == 0 else 0.25
                    for bb in range(2):
                        jj = jc0 if bb == 0 else jc1
                        if jj < 0 or jj >= njc:
                            continue
                        wb = wa * (0.75 if bb == 0 else 0.25)
                        for c in range(2):
                            ii = ic0 if c == 0 else ic1
                            if ii < 0 or ii >= nic:
                                continue
                            if active_c[kk, jj, ii]:
                                s += wb * (0.75 if c == 0 else 0.25)
                if s > 0.0:
                    inv_s[k, j, i] = 1.0 / s


def _dot_py(a, b):
    n = a.size
    fa = a.ravel()
    fb = b.ravel()
    chunks = 64
    part = np.zeros(chunks)
    step = (n + chunks - 1) // chunks
    for c in nb.prange(chunks):
        s = 0.0
        for t in range(c * step, min(n, (c + 1) * step)):
            s += fa[t] * fb[t]
        part[c] = s
    return part.sum()


def _axpy2_py(x, r, p, q, alpha):
    """x += alpha p; r -= alpha q; returns |r|^2."""
    n = x.size
    fx = x.ravel()
    fr = r.ravel()
    fp = p.ravel()
    fq = q.ravel()
    chunks = 64
    part = np.zeros(chunks)
    step = (n + chunks - 1) // chunks
    for c in nb.prange(chunks):
        s = 0.0
        for t in range(c * step, min(n, (c + 1) * step)):
            fx[t] += alpha * fp[t]
            v = fr[t] - alpha * fq[t]
            fr[t] = v
            s += v * v
        part[c] = s
    return part.sum()


def _xpby_py(z, p, beta):
    """p = z + beta p."""
    fz = z.ravel()
    fp = p.ravel()
    n = fz.size
    for t in nb.prange(n):
        fp[t] = fz[t] + beta * fp[t]


_FUNCS = {
    "faces": _faces_py,
    "coarsen": _coarsen_faces_py,
    "inv_diag": _inv_diag_py,
    "stencil": _stencil_py,
    "sweep": _rb_sweep_py,
    "restrict": _restrict_py,
    "gradient": _gradient_py,
    "prolong": _prolong_py,
    "norm": _interp_norm_py,
    "dot": _dot_py,
    "axpy2": _axpy2_py,
    "xpby": _xpby_py,
}
_KERNELS = {
    par: {
        name: nb.njit(parallel=par, cache=True)(_variant(f, "_par" if par else "_ser"))
        for name, f in _FUNCS.items()
    }
    for par in (False, True)
}


#: Levels from this many cells up run the parallel kernels (a parallel region costs about
#: 20 us; below this the serial kernel is as fast).
PARALLEL_MIN_CELLS = 32_768


def _k(n: int) -> dict:
    return _KERNELS[use_parallel(n, PARALLEL_MIN_CELLS)]


# ---- levels --------------------------------------------------------------------------------
@dataclass
class _Electrodes:
    """Electrode weights on one level: rows are the flat grid cells `cells`."""

    cells: np.ndarray
    w: sp.csr_matrix
    wt: sp.csr_matrix

    def apply(self, u_flat: np.ndarray, wi: np.ndarray) -> np.ndarray:
        """(W diag(wi) W^T u) on `cells`."""
        return self.w @ (wi * (self.wt @ u_flat[self.cells]))


class _Level:
    def __init__(self, active: np.ndarray) -> None:
        self.shape = active.shape
        self.active = active
        self.gx = np.zeros(self.shape, WORK_DTYPE)
        self.gy = np.zeros(self.shape, WORK_DTYPE)
        self.gz = np.zeros(self.shape, WORK_DTYPE)
        self.inv_diag = np.zeros(self.shape, WORK_DTYPE)
        self.inv_s: np.ndarray | None = None  # interpolation normalisation (fine side)
        self.el: _Electrodes | None = None
        # Work arrays of the V-cycle (each level is visited once per cycle).
        self.x = np.zeros(self.shape, WORK_DTYPE)
        self.b = np.zeros(self.shape, WORK_DTYPE)
        self.r = np.zeros(self.shape, WORK_DTYPE)
        self.t1: np.ndarray | None = None  # restriction temporaries (fine side)
        self.t2: np.ndarray | None = None
        self.zero: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))


def _coarse_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple((s + 1) // 2 for s in shape)  # type: ignore[return-value]


def _coarsen_active(active: np.ndarray) -> np.ndarray:
    cs = _coarse_shape(active.shape)
    pad = np.zeros(tuple(2 * c for c in cs), dtype=bool)
    pad[: active.shape[0], : active.shape[1], : active.shape[2]] = active
    return np.asarray(pad.reshape(cs[0], 2, cs[1], 2, cs[2], 2).any(axis=(1, 3, 5)))


def _coarsen_cells(cells: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    k, j, i = np.unravel_index(cells, shape)
    cs = _coarse_shape(shape)
    return np.ravel_multi_index((k // 2, j // 2, i // 2), cs)


class GridMultigrid:
    """CG with a geometric multigrid V-cycle for ``A u = b`` (see the module docstring).

    `active` (k, j, i) marks the cells of the problem; vectors passed to `solve` are on the
    active cells in the order of ``np.flatnonzero(active)``. `w` (n_active x n_nodes) holds the
    electrode kernel weights. Call `update(sigma, wi)` whenever the conductivity changes.
    """

    def __init__(self, active: np.ndarray, h_m: float, w: sp.spmatrix | None) -> None:
        self.h_m = float(h_m)
        self.cells = np.flatnonzero(active.ravel())
        self.levels: list[_Level] = [_Level(active.copy())]
        while self.levels[-1].active.sum() > COARSEST_CELLS and min(self.levels[-1].shape) > 1:
            fine = self.levels[-1]
            coarse = _Level(_coarsen_active(fine.active))
            fine.inv_s = np.zeros(fine.shape, WORK_DTYPE)
            fine.t1 = np.zeros((fine.shape[0], fine.shape[1], coarse.shape[2]), WORK_DTYPE)
            fine.t2 = np.zeros((fine.shape[0], coarse.shape[1], coarse.shape[2]), WORK_DTYPE)
            _k(fine.n)["norm"](fine.active, coarse.active, fine.inv_s)
            self.levels.append(coarse)
        self._n_nodes = 0 if w is None else int(w.shape[1])
        if w is not None and self._n_nodes:
            wc = sp.csr_matrix(w)
            coo = wc.tocoo()
            flat = self.cells[coo.row]
            shape = self.levels[0].shape
            for lev in self.levels:
                uniq, local = np.unique(flat, return_inverse=True)
                m = sp.csr_matrix((coo.data, (local, coo.col)), shape=(uniq.size, self._n_nodes))
                m.sum_duplicates()
                lev.el = _Electrodes(uniq, m, m.T.tocsr())
                flat = _coarsen_cells(flat, shape)
                shape = _coarse_shape(shape)
        self.wi = np.zeros(self._n_nodes)
        self._chol = None
        self._coarse_index: np.ndarray | None = None
        self._index: np.ndarray | None = None
        self._sig_grid: np.ndarray | None = None
        # The operator CG works with keeps float64 face conductances (the V-cycle's copies
        # are WORK_DTYPE).
        shape0 = self.levels[0].shape
        self._g64 = tuple(np.zeros(shape0) for _ in range(3))
        self._zero64 = np.zeros(shape0)
        self.iterations: list[int] = []
        self.solve_seconds: list[float] = []
        self.cycles = 0

    # -- operator ----------------------------------------------------------------------------
    def update(self, sigma_cells: np.ndarray, wi: np.ndarray | None = None) -> None:
        """Set the cell conductivities (S/m, active-cell order) and well indices (S)."""
        with blas_single_thread():
            self._update(sigma_cells, wi)

    def _update(self, sigma_cells: np.ndarray, wi: np.ndarray | None) -> None:
        top = self.levels[0]
        if self._sig_grid is None:
            self._sig_grid = np.zeros(top.shape)
        sig = self._sig_grid
        sig.ravel()[self.cells] = sigma_cells
        kern = _k(top.n)
        g64 = self._g64
        kern["faces"](sig, self.h_m, *g64)
        top.gx[...] = g64[0]
        top.gy[...] = g64[1]
        top.gz[...] = g64[2]
        self.wi = np.zeros(self._n_nodes) if wi is None else np.asarray(wi, float)
        for li, lev in enumerate(self.levels):
            if li > 0:
                fine = self.levels[li - 1]
                _k(lev.n)["coarsen"](fine.gx, fine.gy, fine.gz, lev.gx, lev.gy, lev.gz)
            extra = self._zero(lev)
            if lev.el is not None:
                # l1 diagonal: the electrode term's row sum (its entries are >= 0).
                extra.ravel()[lev.el.cells] = np.asarray(lev.el.w @ self.wi)
            _k(lev.n)["inv_diag"](lev.gx, lev.gy, lev.gz, extra, lev.active, lev.inv_diag)
            if lev.el is not None:
                extra.ravel()[lev.el.cells] = 0.0
        self._factor_coarsest()

    def _factor_coarsest(self) -> None:
        lev = self.levels[-1]
        idx = np.flatnonzero(lev.inv_diag.ravel() > 0)
        self._coarse_index = idx
        shape = lev.shape
        pos = np.full(lev.n, -1)
        pos[idx] = np.arange(idx.size)
        a = np.zeros((idx.size, idx.size))
        flat = np.arange(lev.n).reshape(shape)
        for axis, g in ((2, lev.gx), (1, lev.gy), (0, lev.gz)):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis] = slice(0, shape[axis] - 1)
            hi[axis] = slice(1, None)
            gf = g[tuple(lo)].ravel()
            p, q = pos[flat[tuple(lo)].ravel()], pos[flat[tuple(hi)].ravel()]
            ok = (gf > 0) & (p >= 0) & (q >= 0)
            p, q, gf = p[ok], q[ok], gf[ok]
            np.add.at(a, (p, p), gf)
            np.add.at(a, (q, q), gf)
            np.add.at(a, (p, q), -gf)
            np.add.at(a, (q, p), -gf)
        if lev.el is not None:
            w = np.zeros((idx.size, self._n_nodes))
            rows = pos[lev.el.cells]
            dense = lev.el.w.toarray()
            keep = rows >= 0
            w[rows[keep]] = dense[keep]
            a += (w * self.wi) @ w.T
        self._chol = sla.cho_factor(a, lower=True)

    def _apply_level(self, lev: _Level, u: np.ndarray) -> np.ndarray:
        out = np.empty(lev.shape)
        _k(lev.n)["stencil"](u, lev.gx, lev.gy, lev.gz, out, 1.0, self._zero(lev))
        if lev.el is not None:
            out.ravel()[lev.el.cells] += lev.el.apply(u.ravel(), self.wi)
        return out

    def _zero(self, lev: _Level) -> np.ndarray:
        if lev.zero is None:
            lev.zero = np.zeros(lev.shape, WORK_DTYPE)
        return lev.zero

    def _residual(
        self, lev: _Level, u: np.ndarray, b: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        r = np.empty(lev.shape, b.dtype) if out is None else out
        _k(lev.n)["stencil"](u, lev.gx, lev.gy, lev.gz, r, -1.0, b)
        if lev.el is not None:
            r.ravel()[lev.el.cells] -= lev.el.apply(u.ravel(), self.wi)
        return r

    # -- V-cycle -----------------------------------------------------------------------------
    def _sweep(self, lev: _Level, u: np.ndarray, b: np.ndarray, colour: int) -> None:
        kern = _k(lev.n)
        if lev.el is not None:
            # Electrode couplings lagged over the half-sweep (the l1 diagonal covers them).
            y = lev.el.apply(u.ravel(), self.wi)
            bf = b.ravel()
            bf[lev.el.cells] -= y
            kern["sweep"](u, b, lev.gx, lev.gy, lev.gz, lev.inv_diag, colour)
            bf[lev.el.cells] += y
        else:
            kern["sweep"](u, b, lev.gx, lev.gy, lev.gz, lev.inv_diag, colour)

    def _vcycle(self, li: int, b: np.ndarray) -> np.ndarray:
        lev = self.levels[li]
        if li == len(self.levels) - 1:
            x = lev.x
            x.fill(0.0)
            idx = self._coarse_index
            x.ravel()[idx] = sla.cho_solve(self._chol, b.ravel()[idx].astype(np.float64))
            return x
        x = lev.x
        x.fill(0.0)
        self._sweep(lev, x, b, 0)
        self._sweep(lev, x, b, 1)
        r = self._residual(lev, x, b, lev.r)
        coarse = self.levels[li + 1]
        rc = coarse.b
        _k(lev.n)["restrict"](r, lev.inv_s, coarse.active, rc, _W1, lev.t1, lev.t2)
        ec = self._vcycle(li + 1, rc)
        _k(lev.n)["prolong"](ec, lev.inv_s, coarse.active, x)
        self._sweep(lev, x, b, 1)
        self._sweep(lev, x, b, 0)
        return x

    def precondition(self, r: np.ndarray) -> np.ndarray:
        """One V-cycle applied to a residual on the full grid (k, j, i)."""
        self.cycles += 1
        top = self.levels[0]
        top.b[...] = r
        return self._vcycle(0, top.b).astype(np.float64)

    def apply(self, u: np.ndarray) -> np.ndarray:
        """A u on the full grid (float64)."""
        return self._residual64(u, self._zero64, sign=1.0)

    def _residual64(self, u: np.ndarray, b: np.ndarray, sign: float = -1.0) -> np.ndarray:
        """b + sign * A u on the full grid, in float64."""
        top = self.levels[0]
        out = np.empty(top.shape)
        _k(top.n)["stencil"](u, *self._g64, out, sign, b)
        if top.el is not None:
            out.ravel()[top.el.cells] += sign * top.el.apply(u.ravel(), self.wi)
        return out

    def gradient(self, u_cells: np.ndarray) -> np.ndarray:
        """Cell-centred gradient (3, n_active) in (i, j, k) axis order, per metre, of an
        active-cell vector (the same differences as `FvOperator.gradient`)."""
        top = self.levels[0]
        if self._index is None:
            self._index = np.full(top.n, -1, dtype=np.int64)
            self._index[self.cells] = np.arange(self.cells.size)
            self._index = self._index.reshape(top.shape)
        u = np.zeros(top.n)
        u[self.cells] = u_cells
        out = np.empty((3, self.cells.size))
        _k(top.n)["gradient"](u.reshape(top.shape), self._index, self.h_m, out)
        return out

    # -- CG ----------------------------------------------------------------------------------
    def solve(
        self,
        rhs: np.ndarray,
        x0: np.ndarray | None = None,
        rtol: float = 1e-8,
        maxiter: int = 200,
    ) -> np.ndarray:
        """Solve for active-cell vectors; stops when |b - A x| <= rtol |b|."""
        with blas_single_thread():
            return self._solve(rhs, x0, rtol, maxiter)

    def _solve(
        self, rhs: np.ndarray, x0: np.ndarray | None, rtol: float, maxiter: int
    ) -> np.ndarray:
        t0 = time.perf_counter()
        top = self.levels[0]
        kern = _k(top.n)
        b_flat = np.zeros(top.n)
        b_flat[self.cells] = rhs
        b = b_flat.reshape(top.shape)
        x_flat = np.zeros(top.n)
        if x0 is not None:
            x_flat[self.cells] = x0
        x = x_flat.reshape(top.shape)
        bnorm = float(np.sqrt(kern["dot"](b, b)))
        its = 0
        if bnorm == 0.0:
            self.iterations.append(0)
            self.solve_seconds.append(time.perf_counter() - t0)
            return np.zeros(self.cells.size)
        r = self._residual64(x, b) if x0 is not None else b.copy()
        rr = float(kern["dot"](r, r))
        tol2 = (rtol * bnorm) ** 2
        if rr > tol2:
            z = self.precondition(r)
            p = z.copy()
            rz = float(kern["dot"](r, z))
            while its < maxiter:
                its += 1
                q = self.apply(p)
                pq = float(kern["dot"](p, q))
                if pq <= 0.0:
                    raise RuntimeError("multigrid CG breakdown: operator not positive definite")
                alpha = rz / pq
                rr = float(kern["axpy2"](x, r, p, q, alpha))
                if rr <= tol2:
                    # Residual replacement: stop on the true residual, not the recurrence
                    # (they drift apart with a single-precision preconditioner).
                    r = self._residual64(x, b)
                    rr = float(kern["dot"](r, r))
                    if rr <= tol2:
                        break
                    z = self.precondition(r)
                    p = z.copy()
                    rz = float(kern["dot"](r, z))
                    continue
                z = self.precondition(r)
                rz_new = float(kern["dot"](r, z))
                kern["xpby"](z, p, rz_new / rz)
                rz = rz_new
        self.iterations.append(its)
        self.solve_seconds.append(time.perf_counter() - t0)
        return x.ravel()[self.cells].copy()
