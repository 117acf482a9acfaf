"""The IRE forward problem on a planning grid: electric potential, field, currents, cell kill
and Joule heating for a placement of needle electrodes and a pulse protocol.

Model (details, sources and verification in docs/physics-ire.md):
- Quasi-static potential ``div(sigma grad u) = 0`` in the body part of the planning grid,
  zero flux at the grid boundary and the body surface; 7-point finite volumes.
- Electrodes: the smoothed line-source well model of `electrodes.py`; the active probes are
  held at +U and 0 V, the other probes of the cycle are floating conductors (zero net current,
  unknown potential): the generator disconnects them but their metal still shorts the field.
- Conductivity: `constant` (baseline) or `nonlinear` sigma(E) (smoothed step between the
  reversible and irreversible thresholds of each tissue), solved by under-relaxed Picard
  iteration; optionally times ``1 + alpha (T - T_b)``.
- Per pair: |E|, current; cumulative: max |E| over pairs, Peleg-Fermi survival (product over
  pairs), IRE and reversible zones.
- Joule heating: time-averaged source ``sigma |E|^2 * pulse_width * pulse_rate`` during each
  train (pairs in delivery order, then a cooling period), Pennes bioheat, Arrhenius damage.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage as ndi

from hepablate.anatomy.tissues import TissueTable, tissue_map
from hepablate.anatomy.vocabulary import BILE_DUCTS, VESSELS, base_name
from hepablate.case.model import Case
from hepablate.core.cache import ByteBudgetCache
from hepablate.core.progress import NullProgress, Progress
from hepablate.core.volume import Volume
from hepablate.devices.catalog import DeviceTable
from hepablate.effect.models import (
    ArrheniusParams,
    PelegFermiParams,
    arrhenius_rate_per_s,
    peleg_fermi_survival,
)
from hepablate.errors import InputError
from hepablate.physics.grid import planning_grid, resample_structures
from hepablate.physics.ire.electrodes import ElectrodeModel, build_electrodes
from hepablate.physics.ire.nonlinear import field_magnitude, relax_sigma
from hepablate.physics.ire.params import (
    IrePhysicsDefaults,
    TissueArrays,
    load_ire_physics_defaults,
    sigma_of_field,
)
from hepablate.physics.ire.validate import probe_axis, validate_ire_plan
from hepablate.physics.kernels import blas_single_thread
from hepablate.physics.multigrid import GridMultigrid
from hepablate.physics.solvers import FvOperator
from hepablate.physics.thermal import PennesSolver
from hepablate.plans.model import IrePair, IreSimulationSettings, PlanWarning, Probe

#: Relative CG tolerance of the unit-basis solves. Picard solves are inexact: their tolerance
#: is PICARD_RTOL_FACTOR times the last relative change of current or field, between
#: PICARD_RTOL_MIN and PICARD_RTOL_MAX, and convergence needs the last solve at
#: PICARD_RTOL_FINAL or tighter (measured on the 1 mm benchmark: 30 % fewer V-cycles than a
#: factor of 0.01 capped at 1e-3, currents within 0.03 %).
BASIS_RTOL = 1e-6
#: The nonlinear solve uses the basis only as its starting point and for the floating-probe
#: steps, so it needs fewer digits.
BASIS_START_RTOL = 1e-4
PICARD_RTOL_MAX = 1e-2
PICARD_RTOL_MIN = 1e-5
PICARD_RTOL_FACTOR = 0.03
PICARD_RTOL_FINAL = 3e-4

#: Memory (bytes) for remembered nonlinear pair solutions (`IreProblem._pair_memo`): a
#: planner confirms the same pair again when only other pairs of its cycle changed or when
#: the trains are split (neither changes the pair's field, which does not depend on the number
#: of pulses or on the delivery order).
PAIR_MEMO_BYTES = 512 * 2**20

#: Memory (bytes) for remembered unit bases (`IreProblem.unit_basis`): a planner solves the
#: basis of a cycle for its fast model and needs the same one to confirm the cycle.
BASIS_CACHE_BYTES = 640 * 2**20


def _geometry_key(probes: Sequence[Probe]) -> tuple:
    """What a cycle's electrical solution depends on besides the voltages."""
    return tuple(
        (p.id, tuple(p.tip_lps_mm), tuple(p.direction_lps), p.exposure_mm, p.diameter_mm)
        for p in probes
    )


@dataclass
class PairResult:
    """Result of one pulse train. `current_a` is the current through the pair (A)."""

    cycle: int
    anode: str
    cathode: str
    voltage_v: float
    current_a: float
    over_limit: bool
    nonlinear_iterations: int
    floating_potentials_v: dict[str, float] = field(default_factory=dict)
    converged: bool = True
    current_end_of_train_a: float | None = None


@dataclass
class UnitBasis:
    """Constant-conductivity unit solutions of one set of probes.

    Solution e has probe e at 1 V and all other probes at 0 V. `conductance_matrix_s[i, e]` is
    the current (A) leaving probe i into the tissue in solution e (symmetric, rows sum to 0).
    `fields_v_per_m[e]` is E (3, n_active cells; grid i, j, k axes) of solution e including the
    near-field correction; by linearity any set of probe potentials V gives ``sum V_e E_e``.
    """

    probes: list[Probe]
    electrodes: ElectrodeModel
    conductance_matrix_s: np.ndarray
    fields_v_per_m: np.ndarray
    potentials_v: np.ndarray
    node_currents_a: np.ndarray
    solver: GridMultigrid
    setup_s: float
    solve_s: float

    @property
    def probe_ids(self) -> list[str]:
        return [p.id for p in self.probes]

    def nbytes(self) -> int:
        """Approximate memory held (arrays of the basis and of its solver's levels)."""

        def arrays(obj: object) -> int:
            return sum(v.nbytes for v in vars(obj).values() if isinstance(v, np.ndarray))

        total = self.fields_v_per_m.nbytes + self.potentials_v.nbytes + self.node_currents_a.nbytes
        total += arrays(self.solver) + sum(arrays(lev) for lev in self.solver.levels)
        return total + sum(a.nbytes for a in self.solver._g64)

    def index(self, probe_id: str) -> int:
        try:
            return self.probe_ids.index(probe_id)
        except ValueError:
            raise InputError(f"no probe '{probe_id}' in this basis", field="probe") from None

    def pair_potentials(self, anode: str, cathode: str, voltage_v: float) -> np.ndarray:
        """Probe potentials (V) with the anode at `voltage_v`, the cathode at 0 and every other
        probe floating (zero net current, from the conductance matrix)."""
        a, c = self.index(anode), self.index(cathode)
        n = len(self.probes)
        v = np.zeros(n)
        v[a] = voltage_v
        free = [i for i in range(n) if i not in (a, c)]
        if free:
            g = self.conductance_matrix_s
            v[free] = np.linalg.solve(g[np.ix_(free, free)], -g[free, a] * voltage_v)
        return v


@dataclass
class IreResult:
    """Forward-solve result on `grid` (arrays in k, j, i order)."""

    grid: Volume
    field_max_v_per_cm: np.ndarray
    zone: np.ndarray
    reversible_zone: np.ndarray
    survival: np.ndarray
    pair_results: list[PairResult]
    warnings: list[PlanWarning]
    zone_threshold_v_per_cm: float | None
    temperature_max_c: np.ndarray | None = None
    thermal_omega: np.ndarray | None = None
    pair_fields_v_per_cm: list[np.ndarray] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    linear_solves: int = 0

    @property
    def zone_volume_ml(self) -> float:
        return float(self.zone.sum()) * self.grid.voxel_volume_ml

    @property
    def survival_zone(self) -> np.ndarray:
        """Voxels with predicted survival below the tissue table's threshold."""
        return self.survival < self._survival_threshold

    _survival_threshold: float = 0.1


class IreProblem:
    """Tissue on a planning grid, ready for repeated IRE forward solves.

    Build with `IreProblem.from_case`; keep it while probes move (the optimiser's loop).
    """

    def __init__(
        self,
        grid: Volume,
        structures: dict[str, np.ndarray],
        tissues: TissueTable,
        devices: DeviceTable,
        settings: IreSimulationSettings,
        defaults: IrePhysicsDefaults | None = None,
    ) -> None:
        self.grid = grid
        self.structures = structures
        self.tissues = tissues
        self.devices = devices
        self.settings = settings
        self.defaults = defaults or load_ire_physics_defaults()
        self.tissue = tissue_map(structures, tissues)
        if grid.spacing_mm[0] != grid.spacing_mm[1] or grid.spacing_mm[0] != grid.spacing_mm[2]:
            raise InputError("the planning grid must be isotropic", field="grid_spacing_mm")
        self.h_mm = float(grid.spacing_mm[0])
        self.active = self.tissue >= 0
        if not self.active.any():
            raise InputError("the planning region contains no tissue", field="roi")
        self.op = FvOperator(self.active, self.h_mm * 1e-3)
        self.props = TissueArrays.from_table(tissues)
        t = self.tissue.ravel()[self.op.cells].astype(np.int64)
        self._t = t
        p = self.props
        self.sigma0 = p.sigma0_s_per_m[t]
        self.sigma1 = p.sigma1_s_per_m[t]
        self.e_rev = p.e_rev_v_per_cm[t]
        self.e_irr = p.e_irr_v_per_cm[t]
        self.alpha = p.alpha_per_c[t]
        if settings.zone_threshold_v_per_cm is not None:
            if not settings.zone_threshold_v_per_cm > 0:
                raise InputError("must be positive", field="ire_simulation.zone_threshold_v_per_cm")
            self.threshold = np.full(self.op.n, float(settings.zone_threshold_v_per_cm))
        else:
            self.threshold = p.ire_threshold_v_per_cm[t]
        self.rev_threshold = np.minimum(p.reversible_threshold_v_per_cm[t], self.threshold)
        self.t_blood_c = tissues.blood.temperature_c.value
        # (cycle geometry, anode, cathode, voltage) -> (|E| V/cm, Joule source W/m^3 or None,
        # current A, floating potentials, iterations, converged); least recently used first.
        self._pair_memo: ByteBudgetCache[tuple, tuple] = ByteBudgetCache(PAIR_MEMO_BYTES)
        self._basis_cache: ByteBudgetCache[tuple, UnitBasis] = ByteBudgetCache(
            BASIS_CACHE_BYTES, size=UnitBasis.nbytes
        )

    @property
    def pair_memo_hits(self) -> int:
        """Pair solutions served from memory so far."""
        return self._pair_memo.hits

    @property
    def basis_cache_hits(self) -> int:
        """Unit bases served from memory so far."""
        return self._basis_cache.hits

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_case(
        cls,
        case: Case,
        settings: IreSimulationSettings | None = None,
        tissues: TissueTable | None = None,
        devices: DeviceTable | None = None,
        roi_centre_lps_mm: Sequence[float] | None = None,
        roi_half_size_mm: float | Sequence[float] | None = None,
        probes: list[Probe] | None = None,
    ) -> IreProblem:
        """Planning grid around the target (bbox padded by `settings.roi_padding_mm`, grown to
        hold `probes` with the same padding), or the explicit box centre +- half size."""
        from hepablate.anatomy.tissues import load_tissue_table
        from hepablate.devices.catalog import load_device_table

        settings = settings or IreSimulationSettings()
        tissues = tissues or load_tissue_table()
        devices = devices or load_device_table()
        pad = float(settings.roi_padding_mm)
        bbox = case.grid.with_array(case.target_mask).bounding_box_lps_mm()
        if bbox is None:
            raise InputError("the target mask is empty", field="target")
        lo, hi = bbox
        if roi_half_size_mm is not None:
            half = np.broadcast_to(np.asarray(roi_half_size_mm, float), (3,))
            centre = (
                np.asarray(roi_centre_lps_mm, float)
                if roi_centre_lps_mm is not None
                else 0.5 * (lo + hi)
            )
            lo, hi = centre - half, centre + half
        else:
            if roi_centre_lps_mm is not None:
                c = np.asarray(roi_centre_lps_mm, float)
                r = 0.5 * (hi - lo)
                lo, hi = c - r, c + r
            if probes:
                pts = []
                for p in probes:
                    _, start = probe_axis(p)
                    pts += [start, np.asarray(p.tip_lps_mm, float)]
                pts_a = np.array(pts)
                lo = np.minimum(lo, pts_a.min(axis=0))
                hi = np.maximum(hi, pts_a.max(axis=0))
            lo, hi = lo - pad, hi + pad
        grid = planning_grid(case.grid, settings.grid_spacing_mm, lo, hi)
        structures = resample_structures(case.structures, case.grid, grid)
        return cls(grid, structures, tissues, devices, settings)

    # ---- constant model: unit basis -------------------------------------------------------
    def _segments(self, probes: list[Probe]) -> list[tuple[np.ndarray, np.ndarray, float]]:
        segs = []
        for p in probes:
            _, start = probe_axis(p)
            segs.append((start, np.asarray(p.tip_lps_mm, float), 0.5 * p.diameter_mm))
        return segs

    def validate(self, probes: list[Probe], pairs: list[IrePair], source: str | None = None):
        """Raise InputError for an invalid placement/protocol on this planning grid."""
        validate_ire_plan(
            probes, pairs, grid=self.grid, body=self.active, devices=self.devices, source=source
        )

    def _default_basis_rtol(self) -> float:
        # The nonlinear solve uses the basis only as its start (see BASIS_START_RTOL).
        if self.settings.conductivity_model == "constant":
            return BASIS_RTOL
        return BASIS_START_RTOL

    def unit_basis(self, probes: list[Probe], rtol: float | None = None) -> UnitBasis:
        """Constant-conductivity unit solutions for `probes` (N - 1 linear solves), solved to
        `rtol` (default: the tolerance `simulate` uses, so that a planner's fast-model basis
        serves the confirmation of the same cycle). Recent bases are remembered (up to
        BASIS_CACHE_BYTES); a remembered basis equals a fresh one (its solver is reset by
        every nonlinear solve before use)."""
        if len(probes) < 2:
            raise InputError("at least two probes are needed", field="probes")
        rtol = self._default_basis_rtol() if rtol is None else float(rtol)
        key = (_geometry_key(probes), rtol)
        hit = self._basis_cache.get(key)
        if hit is not None:
            return hit
        basis = self._unit_basis(probes, rtol)
        self._basis_cache.put(key, basis)
        return basis

    def _unit_basis(self, probes: list[Probe], rtol: float) -> UnitBasis:
        validate_ire_plan(probes, [], grid=self.grid, body=self.active, devices=self.devices)
        t0 = time.perf_counter()
        el = build_electrodes(self.grid, self.op.index, self._segments(probes))
        wi = el.well_index(self.sigma0)
        solver = GridMultigrid(self.active, self.h_mm * 1e-3, el.w)
        solver.update(self.sigma0, wi)
        t1 = time.perf_counter()
        n = len(probes)
        pots = np.empty((n, self.op.n))
        node_i = np.empty((n, el.n_nodes))
        fields = np.empty((n, 3, self.op.n), dtype=np.float32)
        for e in range(n - 1):
            v = np.zeros(n)
            v[e] = 1.0
            u = solver.solve(el.rhs(wi, v), rtol=rtol)
            pots[e] = u
            node_i[e] = el.node_currents(wi, v, u)
            f = -solver.gradient(u)
            el.add_correction(f, node_i[e], self.sigma0)
            fields[e] = f
        # All probes at 1 V give u = 1 and no current (zero-flux boundary): the last solution
        # is 1 minus the sum of the others.
        pots[n - 1] = 1.0 - pots[: n - 1].sum(axis=0)
        node_i[n - 1] = -node_i[: n - 1].sum(axis=0)
        fields[n - 1] = -fields[: n - 1].sum(axis=0)
        g = np.stack([el.probe_currents(node_i[e]) for e in range(n)], axis=1)
        g = 0.5 * (g + g.T)
        return UnitBasis(
            probes=list(probes),
            electrodes=el,
            conductance_matrix_s=g,
            fields_v_per_m=fields,
            potentials_v=pots,
            node_currents_a=node_i,
            solver=solver,
            setup_s=t1 - t0,
            solve_s=time.perf_counter() - t1,
        )

    def _constant_field(self, basis: UnitBasis, v: np.ndarray) -> np.ndarray:
        f = np.tensordot(v.astype(np.float32), basis.fields_v_per_m, axes=(0, 0))
        return f

    def pair_field_constant(
        self, basis: UnitBasis, anode_id: str, cathode_id: str, voltage_v: float
    ) -> np.ndarray:
        """|E| (V/cm) on the planning grid for one pair, constant model, others floating."""
        v = basis.pair_potentials(anode_id, cathode_id, voltage_v)
        mag = np.sqrt(np.einsum("ij,ij->j", *(2 * [self._constant_field(basis, v)]))) / 100.0
        return self.op.to_grid(mag.astype(np.float32))

    def pair_current_constant(
        self, basis: UnitBasis, anode_id: str, cathode_id: str, voltage_v: float
    ) -> float:
        v = basis.pair_potentials(anode_id, cathode_id, voltage_v)
        return float((basis.conductance_matrix_s @ v)[basis.index(anode_id)])

    # ---- nonlinear model ------------------------------------------------------------------
    def _sigma(self, e_v_per_cm: np.ndarray, temp_factor: np.ndarray | float) -> np.ndarray:
        if self.settings.conductivity_model == "constant":
            return self.sigma0 * temp_factor
        s = sigma_of_field(e_v_per_cm, self.sigma0, self.sigma1, self.e_rev, self.e_irr)
        return s * temp_factor

    def _solve_pair(
        self,
        basis: UnitBasis,
        pair: IrePair,
        temp_factor: np.ndarray | float = 1.0,
        start: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, bool, int]:
        """E (3, n) V/m, sigma (n), probe potentials, probe currents, iterations, converged,
        linear solves. Starts from the constant solution (or `start` = (u, sigma, v))."""
        el = basis.electrodes
        a = basis.index(pair.anode)
        v = basis.pair_potentials(pair.anode, pair.cathode, pair.voltage_v)
        linear = (
            self.settings.conductivity_model == "constant"
            and isinstance(temp_factor, float | int)
            and float(temp_factor) == 1.0
        )
        if linear and start is None:
            f = self._constant_field(basis, v).astype(np.float64)
            return f, self.sigma0, v, basis.conductance_matrix_s @ v, 0, True, 0
        d = self.defaults
        relax = d.nonlinear_relaxation.value
        tol = d.nonlinear_tolerance.value
        max_it = d.nonlinear_max_iterations.value
        if start is None:
            u = basis.potentials_v.T @ v
            f = self._constant_field(basis, v).astype(np.float64)
            sig = self._sigma(np.sqrt(np.einsum("ij,ij->j", f, f)) / 100.0, temp_factor)
        else:
            u, sig, v = start
            v = v.copy()
        n = len(basis.probes)
        c = basis.index(pair.cathode)
        free = [i for i in range(n) if i not in (a, c)]
        g0 = basis.conductance_matrix_s
        node_sig0 = el.node_sigma(self.sigma0)
        i_prev: float | None = None
        e_prev: np.ndarray | None = None
        converged = False
        solves = 0
        done = 0
        ip = np.zeros(n)
        rtol = PICARD_RTOL_MAX
        bufs = (np.empty(self.op.n), np.empty(self.op.n))
        damp = np.ones(self.op.n)
        last_step = np.zeros(self.op.n)
        # Per-cell adaptive damping switches on when the field change stops shrinking (a
        # period-2 cycle: seen on 1 mm planning grids, 30 iterations with the field change
        # stuck at 2.6 %); before that the plain relaxation is kept, as it converges faster.
        adaptive = False
        d_e_last = np.inf
        for it in range(1, max_it + 1):
            done = it
            wi = el.well_index(sig)
            basis.solver.update(sig, wi)
            u = basis.solver.solve(el.rhs(wi, v), x0=u, rtol=rtol)
            solves += 1
            node_i = el.node_currents(wi, v, u)
            ip = el.probe_currents(node_i)
            f = -basis.solver.gradient(u)
            el.add_correction(f, node_i, sig)
            emag = bufs[it % 2]
            diff, norm = field_magnitude(f, e_prev, emag)
            cur = float(ip[a])
            float_err = max((abs(ip[i]) for i in free), default=0.0) / max(abs(cur), 1e-30)
            d_i = abs(cur - i_prev) / abs(cur) if i_prev is not None else np.inf
            d_e = diff / max(norm, 1e-30) if e_prev is not None else np.inf
            if d_i < tol and d_e < 5 * tol and float_err < 5 * tol and rtol <= PICARD_RTOL_FINAL:
                converged = True
                break
            if it >= 3 and d_e > 0.8 * d_e_last:
                adaptive = True
            d_e_last = d_e
            rtol = float(
                np.clip(PICARD_RTOL_FACTOR * min(d_i, d_e), PICARD_RTOL_MIN, PICARD_RTOL_MAX)
            )
            if linear and float_err < 5 * tol:
                converged = True
                break
            i_prev, e_prev = cur, emag
            if free:
                # Floating potentials: Newton-like step with the baseline conductance matrix
                # scaled by the present conductivity around each probe.
                ratio = np.bincount(el.node_probe, el.node_sigma(sig) * el.node_len_m, n) / (
                    np.bincount(el.node_probe, node_sig0 * el.node_len_m, n)
                )
                s = np.sqrt(np.outer(ratio, ratio))
                g_eff = (g0 * s)[np.ix_(free, free)]
                v[free] -= np.linalg.solve(g_eff, ip[free])
            # Per-cell relaxation 1 / (1 + d ln sigma / d ln E): where the current density is
            # fixed (E ~ 1/sigma, e.g. around a needle) plain Picard oscillates once the slope
            # exceeds 1; this is the Newton step for that case and still contracts where the
            # field is fixed by the potentials.
            if self.settings.conductivity_model == "constant":
                sig = self.sigma0 * temp_factor
            else:
                sig = sig.copy() if sig is self.sigma0 else sig
                relax_sigma(
                    emag,
                    sig,
                    self.sigma0,
                    self.sigma1,
                    self.e_rev,
                    self.e_irr,
                    temp_factor,
                    relax,
                    damp,
                    last_step,
                    adaptive,
                )
        self._last_u = u
        return f, sig, v, ip, done, converged, solves

    # ---- full forward solve ---------------------------------------------------------------
    def simulate(
        self,
        probes: list[Probe],
        pairs: list[IrePair],
        progress: Progress | None = None,
        keep_pair_fields: bool = False,
    ) -> IreResult:
        """Forward-evaluate a placement and protocol (all cycles). See the module docstring."""
        with blas_single_thread():
            return self._simulate(probes, pairs, progress, keep_pair_fields)

    def _simulate(
        self,
        probes: list[Probe],
        pairs: list[IrePair],
        progress: Progress | None,
        keep_pair_fields: bool,
    ) -> IreResult:
        progress = progress or NullProgress()
        self.validate(probes, pairs)
        timings: dict[str, float] = {"basis_s": 0.0, "pairs_s": 0.0, "thermal_s": 0.0}
        n = self.op.n
        field_max = np.zeros(n)
        survival = np.ones(n)
        pf = PelegFermiParams.from_table(self.tissues)
        limit = self.devices.ire.max_current_a.value
        results: list[PairResult] = []
        warnings: list[PlanWarning] = []
        pair_fields: list[np.ndarray] = []
        sources: list[tuple[IrePair, np.ndarray]] = []
        states: list[tuple[UnitBasis, IrePair, np.ndarray, np.ndarray, np.ndarray]] = []
        solves = 0
        cycles = sorted({p.cycle for p in pairs})
        progress.start("IRE field", total=len(pairs))
        # Pair solutions are remembered unless the coupling pass needs their full state.
        memo = not self.settings.temperature_dependence
        for cyc in cycles:
            cprobes = [p for p in probes if p.cycle == cyc]
            geometry = _geometry_key(cprobes)
            basis: UnitBasis | None = None
            for pair in (p for p in pairs if p.cycle == cyc):
                key = (geometry, pair.anode, pair.cathode, float(pair.voltage_v))
                hit = self._pair_memo.get(key) if memo else None
                if hit is not None:
                    emag, q, cur, fl, its, ok = hit
                else:
                    if basis is None:
                        t0 = time.perf_counter()
                        hits = self.basis_cache_hits
                        basis = self.unit_basis(cprobes)
                        if self.basis_cache_hits == hits:
                            solves += len(cprobes) - 1
                        self.last_solver_times = basis.solver.solve_seconds
                        self.last_solver_iterations = basis.solver.iterations
                        timings["basis_s"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    f, sig, v, ip, its, ok, ns = self._solve_pair(basis, pair)
                    solves += ns
                    timings["pairs_s"] += time.perf_counter() - t0
                    emag = np.sqrt(np.einsum("ij,ij->j", f, f)) / 100.0
                    cur = float(ip[basis.index(pair.anode)])
                    fl = {
                        pid: float(v[i])
                        for i, pid in enumerate(basis.probe_ids)
                        if pid not in (pair.anode, pair.cathode)
                    }
                    q = (
                        self._joule_source(basis, sig, emag, v, ip).astype(np.float32)
                        if self.settings.thermal
                        else None
                    )
                    if self.settings.thermal and self.settings.temperature_dependence:
                        u = getattr(self, "_last_u", basis.potentials_v.T @ v)
                        states.append((basis, pair, u, sig, v))
                    if memo:
                        self._pair_memo.put(key, (emag, q, cur, fl, its, ok))
                field_max = np.maximum(field_max, emag)
                survival *= peleg_fermi_survival(emag, pair.pulses, pf)
                results.append(
                    PairResult(
                        cycle=cyc,
                        anode=pair.anode,
                        cathode=pair.cathode,
                        voltage_v=pair.voltage_v,
                        current_a=cur,
                        over_limit=abs(cur) > limit,
                        nonlinear_iterations=its,
                        floating_potentials_v=dict(fl),
                        converged=ok,
                    )
                )
                if keep_pair_fields:
                    pair_fields.append(self.op.to_grid(emag.astype(np.float32)))
                if q is not None:
                    sources.append((pair, q))
                progress.advance()
        progress.finish()
        t_max = omega = None
        if self.settings.thermal and sources:
            t0 = time.perf_counter()
            t_max, omega, t_end = self._heat(sources)
            timings["thermal_s"] = time.perf_counter() - t0
            if self.settings.temperature_dependence:
                # One coupling pass: re-solve each pair with sigma(E, T at the end of its
                # train) to report the end-of-train current (current rises with heating).
                for r, (basis, pair, u, sig, v), t_c in zip(results, states, t_end, strict=True):
                    factor = 1.0 + self.alpha * (t_c - self.t_blood_c)
                    _, _, _, ip2, _, _, ns = self._solve_pair(
                        basis, pair, factor, start=(u, sig * factor, v)
                    )
                    solves += ns
                    r.current_end_of_train_a = float(ip2[basis.index(pair.anode)])
                    r.over_limit = r.over_limit or abs(r.current_end_of_train_a) > limit
        for r in results:
            if r.over_limit:
                worst = max(abs(r.current_a), abs(r.current_end_of_train_a or 0.0))
                warnings.append(
                    PlanWarning(
                        level="error",
                        code="current_over_limit",
                        message=f"cycle {r.cycle} pair {r.anode}-{r.cathode} at {r.voltage_v:g} V "
                        f"draws {worst:.1f} A, above the generator limit {limit:g} A",
                    )
                )
            if not r.converged:
                warnings.append(
                    PlanWarning(
                        level="warning",
                        code="nonlinear_not_converged",
                        message=f"pair {r.anode}-{r.cathode}: conductivity iteration did not "
                        f"converge in {r.nonlinear_iterations} iterations",
                    )
                )
        grid_field = self.op.to_grid(field_max.astype(np.float32))
        zone = self.op.to_grid(field_max >= self.threshold, fill=False)
        rev = self.op.to_grid(
            (field_max >= self.rev_threshold) & (field_max < self.threshold), fill=False
        )
        result = IreResult(
            grid=self.grid,
            field_max_v_per_cm=grid_field,
            zone=zone,
            reversible_zone=rev,
            survival=self.op.to_grid(survival.astype(np.float32), fill=1.0),
            pair_results=results,
            warnings=warnings,
            zone_threshold_v_per_cm=self.settings.zone_threshold_v_per_cm,
            temperature_max_c=(
                self.op.to_grid(t_max.astype(np.float32), fill=self.t_blood_c)
                if t_max is not None
                else None
            ),
            thermal_omega=self.op.to_grid(omega.astype(np.float32)) if omega is not None else None,
            pair_fields_v_per_cm=pair_fields,
            timings_s=timings,
            linear_solves=solves,
        )
        result._survival_threshold = pf.survival_threshold
        if omega is not None:
            warnings.extend(self._thermal_warnings(result))
        return result

    # ---- Joule heating --------------------------------------------------------------------
    def _joule_source(
        self,
        basis: UnitBasis,
        sig: np.ndarray,
        emag_v_per_cm: np.ndarray,
        v: np.ndarray,
        ip: np.ndarray,
    ) -> np.ndarray:
        """Joule power density sigma |E|^2 (W/m^3) during a pulse, energy-consistent.

        Sampling sigma |E|^2 at voxel centres overestimates the power of voxels cut by a
        needle (E ~ 1/rho there: +24 % in total at 1 mm, +42 % at 2 mm for two needles), so
        the source in the near-field band around the needles is scaled so that the total
        equals the electrical power sum V_e I_e delivered by the probes.
        """
        q = sig * (emag_v_per_cm * 100.0) ** 2
        vol = (self.h_mm * 1e-3) ** 3
        band = np.zeros(self.op.n, bool)
        for cells in basis.electrodes.corr_cells:
            band[cells] = True
        p_true = float(np.dot(v, ip))
        p_band = float(q[band].sum()) * vol
        p_out = float(q[~band].sum()) * vol
        if p_band > 0 and p_true > p_out:
            q[band] *= (p_true - p_out) / p_band
        return q

    def _heat(
        self, sources: list[tuple[IrePair, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Max temperature and Arrhenius Omega on the active cells, and the temperature at
        the end of each train. Heating is computed in the box where any source exceeds 1 % of
        its maximum, padded by 10 mm (elsewhere T stays at T_b)."""
        d = self.defaults
        rate = d.pulse_rate_hz.value
        dt_max = d.thermal_time_step_s.value
        cool = d.cooling_after_s.value
        qmax = max(float(q.max()) for _, q in sources)
        hot = np.zeros(self.op.n, bool)
        for _, q in sources:
            hot |= q >= 0.01 * qmax
        hot_grid = self.op.to_grid(hot, fill=False)
        pad = int(np.ceil(10.0 / self.h_mm))
        idx = np.argwhere(hot_grid)
        lo = np.maximum(idx.min(axis=0) - pad, 0)
        hi = np.minimum(idx.max(axis=0) + pad + 1, np.array(self.active.shape))
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        sub_active = self.active[box]
        sub_cells = self.op.index[box][sub_active]  # active numbers of the box's cells
        p = self.props
        t = self._t[sub_cells]
        blood = p.names.index("blood") if "blood" in p.names else -1
        rho_b = self.tissues.blood.density_kg_per_m3.value
        c_b = self.tissues.blood.heat_capacity_j_per_kg_k.value
        solver = PennesSolver(
            sub_active,
            self.h_mm * 1e-3,
            p.k_w_per_m_k[t],
            p.rho_kg_per_m3[t] * p.c_j_per_kg_k[t],
            p.perfusion_per_s[t] * rho_b * c_b,
            self.t_blood_c,
            fixed=(t == blood),
        )
        arr = ArrheniusParams.from_table(self.tissues)
        # The tabulated liver A, Ea give 2.9e-4 /s at 37 degC (Omega = 1 in an hour at body
        # temperature), so damage is integrated in excess of the baseline rate.
        base_rate = float(arrhenius_rate_per_s(self.t_blood_c, arr))
        temp = np.full(sub_cells.size, self.t_blood_c)
        t_max = temp.copy()
        omega = np.zeros(sub_cells.size)
        ends: list[np.ndarray] = []

        prev: np.ndarray | None = None

        def advance(q: np.ndarray | None, duration: float) -> None:
            nonlocal temp, t_max, omega, prev
            steps = max(1, int(np.ceil(duration / dt_max)))
            dt = duration / steps
            for i in range(steps):
                # Within a train (same source, same step) the temperature changes smoothly:
                # the linear extrapolation of the last two steps starts the solve closer.
                guess = 2.0 * temp - prev if (i > 0 and prev is not None) else None
                prev = temp
                temp = solver.step(temp, q, dt, guess)
                t_max = np.maximum(t_max, temp)
                omega = omega + np.maximum(arrhenius_rate_per_s(temp, arr) - base_rate, 0) * dt

        for pair, q in sources:
            train_s = pair.pulses / rate
            q_avg = q[sub_cells] * (pair.pulse_width_us * 1e-6) * rate
            advance(q_avg, train_s)
            full_t = np.full(self.op.n, self.t_blood_c)
            full_t[sub_cells] = temp
            ends.append(full_t)
        advance(None, cool)
        t_full = np.full(self.op.n, self.t_blood_c)
        t_full[sub_cells] = t_max
        o_full = np.zeros(self.op.n)
        o_full[sub_cells] = omega
        return t_full, o_full, ends

    def _thermal_warnings(self, result: IreResult) -> list[PlanWarning]:
        out: list[PlanWarning] = []
        assert result.thermal_omega is not None and result.temperature_max_c is not None
        thr = self.tissues.damage.arrhenius_omega_threshold.value
        damaged = result.thermal_omega >= thr
        vol = float(damaged.sum()) * self.grid.voxel_volume_ml
        tmax = float(result.temperature_max_c.max())
        if damaged.any():
            out.append(
                PlanWarning(
                    level="info",
                    code="thermal_damage",
                    message=f"Joule heating: {vol:.2f} ml reach Arrhenius Omega >= {thr:g} "
                    f"(max temperature {tmax:.1f} degC)",
                )
            )
        for group, code, label in (
            (VESSELS, "thermal_damage_vessel", "vessel"),
            (BILE_DUCTS, "thermal_damage_bile_duct", "bile duct"),
        ):
            for key, m in self.structures.items():
                if base_name(key) not in group or not m.any():
                    continue
                wall = ndi.binary_dilation(m, iterations=1)
                if (damaged & wall).any():
                    out.append(
                        PlanWarning(
                            level="warning",
                            code=code,
                            message=f"predicted thermal damage (Omega >= {thr:g}) at the {label} "
                            f"'{key}'",
                        )
                    )
        return out
