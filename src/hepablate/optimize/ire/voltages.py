"""Voltages (steps 3 and 4 of the search): the constant model's common voltage scale per
cycle, confirmation with the engine's nonlinear solve, the repair of a confirmed plan (pairs
over the current limit turned down, the pairs bordering a shortfall raised), and predicted
thermal damage at vessels and bile ducts as a constraint (trains split in two, raises
refused)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hepablate.evaluation import evaluate_zone
from hepablate.optimize.ire.model import ConfirmedPlan, CycleLayout, PairFields, probes_key
from hepablate.optimize.ire.shortfall import ShortfallGroup, shortfall_groups
from hepablate.physics.ire.session import simulate_cycles
from hepablate.plans.model import IrePair, Probe

if TYPE_CHECKING:
    from hepablate.optimize.ire.options import Limits
    from hepablate.optimize.ire.planner import IrePlanner


# ---- fast model ------------------------------------------------------------------------------


def rule_voltage(lim: Limits, a: Probe, b: Probe) -> float:
    """The spacing rule's voltage for a pair (its low end, V/cm x spacing)."""
    from hepablate.placement.geometry import probe_spacing_mm

    return lim.v_per_cm_low * probe_spacing_mm(a, b) / 10.0


def fast_voltages(
    pl: IrePlanner, cycles: list[CycleLayout], coverage_goal: float
) -> tuple[list[IrePair], float, PairFields]:
    """Pairs with voltages from the constant model: per cycle, the common scale of the
    spacing-rule voltages that brings the cycle's region part to `coverage_goal`, at most
    the scale that brings the first pair to the generator limit. Returns the pairs, the
    largest scale needed (inf if the limits cannot reach it) and the pairs' constant-model
    fields on the target region (for the repair: `bordering_pairs`)."""
    from hepablate.placement.geometry import probe_spacing_mm

    lim = pl.lim
    pairs: list[IrePair] = []
    worst = 0.0
    thr = lim.threshold_v_per_cm
    pair_fields: PairFields = {}
    for cyc in cycles:
        basis = pl.engine.unit_basis(cyc.probes)
        pl.record.stats["engine_layouts_evaluated"] += 1
        rule = []
        part = cyc.part if cyc.part.any() else pl.region
        tum = part & pl.structures[pl.case.target_key]
        sel = part | tum
        fields = []  # per pair: |E| at the rule voltage on the part's voxels
        for i, j in cyc.pairs:
            a, b = cyc.probes[i], cyc.probes[j]
            v0 = rule_voltage(lim, a, b)
            e = pl.engine.pair_field_constant(basis, a.id, b.id, v0)
            rule.append((a, b, v0))
            fields.append(np.asarray(e)[sel])
            pair_fields[(cyc.cycle, a.id, b.id)] = (v0, np.asarray(e, np.float32)[pl.region])
        f = np.stack(fields) if fields else np.zeros((0, int(sel.sum())), np.float32)
        in_part, in_tum = part[sel], tum[sel]
        emax = f.max(axis=0) if len(f) else np.zeros(int(sel.sum()), np.float32)
        need = thr / np.maximum(emax[in_part], 1e-6)
        alpha = float(np.quantile(need, coverage_goal)) if need.size else 1.0
        if in_tum.any():
            # The tumour itself must be covered entirely, not just 99 % of the region.
            alpha = max(alpha, float((thr / np.maximum(emax[in_tum], 1e-6)).max()))
        alpha = max(alpha, 1.0)
        caps = np.array([lim.max_voltage_v / v0 for _, _, v0 in rule])
        # Pairs wider than the rule allows at the generator limit (cell diagonals) get at
        # most the limit; they do not cap the others.
        in_rule = caps[caps >= 1.0 - 1e-9]
        common = (
            min(alpha, float((in_rule if len(in_rule) else caps).min())) if len(caps) else alpha
        )
        scales = np.full(len(caps), common)
        worst = max(worst, alpha if common >= alpha - 1e-9 else np.inf)
        for (a, b, v0), sc in zip(rule, scales, strict=True):
            pairs.append(
                IrePair(
                    cycle=cyc.cycle,
                    anode=a.id,
                    cathode=b.id,
                    voltage_v=round(min(float(sc) * v0, lim.max_voltage_v), 0),
                    pulses=lim.pulses,
                    pulse_width_us=lim.pulse_width_us,
                    spacing_mm=round(probe_spacing_mm(a, b), 1),
                )
            )
    return pairs, worst, pair_fields


# ---- confirmation ----------------------------------------------------------------------------


def confirm(pl: IrePlanner, probes: list[Probe], pairs: list[IrePair]) -> ConfirmedPlan:
    """The engine's nonlinear solve of every cycle (`simulate_cycles`, the one `evaluate`
    runs too); the zone, the field, the predicted currents, temperatures and thermal damage,
    and the zone's metrics. A cycle whose probes and pulse trains did not change since a
    recent confirmation (a repair that raises pairs of other cycles, or splits their trains)
    is not solved again: cycles are independent in the engine."""
    before = pl.session.solves
    runs = simulate_cycles(pl.session, probes, pairs)
    pl.record.stats["nonlinear_solves"] += pl.session.solves - before
    m = evaluate_zone(
        runs.zone,
        pl.structures,
        pl.case.target_key,
        pl.case.margin_mm,
        pl.grid.spacing_mm,
        region=pl.region,
    )
    return ConfirmedPlan(
        probes,
        runs.pairs,
        runs.zone,
        runs.field_max_v_per_cm,
        m,
        pl.region,
        runs.results,
        runs.temperature_max_c,
        runs.thermal_omega,
        *thermal_damage(pl, runs.thermal_omega),
    )


# ---- acceptance ------------------------------------------------------------------------------


def covered(conf: ConfirmedPlan, required: float) -> bool:
    """Acceptance: `required` of tumour + margin and the whole tumour in the zone."""
    return conf.metrics.target_coverage >= required and conf.metrics.tumour_coverage >= 1.0 - 1e-9


def over_limit(lim: Limits, pairs: list[IrePair]) -> list[int]:
    """Indices of the pairs whose predicted current exceeds the generator's limit."""
    return [
        i
        for i, p in enumerate(pairs)
        if p.predicted_current_a is not None and p.predicted_current_a > lim.max_current_a
    ]


def rank(lim: Limits, conf: ConfirmedPlan, required: float) -> tuple:
    """Higher is better: accepted without predicted thermal damage at a vessel or duct,
    then accepted, then tumour and target coverage, then less thermal damage."""
    ok = covered(conf, required) and not over_limit(lim, conf.pairs)
    return (
        ok and not conf.thermal_hits,
        ok,
        conf.metrics.tumour_coverage,
        conf.metrics.target_coverage,
        -sum(conf.thermal_hits.values()),
    )


def shortfall(pl: IrePlanner, conf: ConfirmedPlan) -> list[ShortfallGroup]:
    """Where the confirmed plan leaves the target below threshold (`shortfall_groups`)."""
    return shortfall_groups(
        conf.region,
        conf.zone,
        conf.field_max_v_per_cm,
        pl.structures,
        pl.case.target_key,
        pl.grid.spacing_mm,
    )


# ---- thermal damage at vessels and ducts -----------------------------------------------------


def thermal_damage(pl: IrePlanner, omega: np.ndarray | None) -> tuple[dict[str, float], float]:
    """ml of each vessel's and bile duct's lumen plus one-voxel wall where the predicted
    Arrhenius Omega reaches the planning threshold (the engine's `thermal_damage_vessel`
    and `thermal_damage_bile_duct` rule), and the largest Omega there."""
    if omega is None:
        return {}, 0.0
    omega = np.asarray(omega)
    dmg = omega >= pl.defaults.thermal_damage_omega.value
    vox = pl.grid.voxel_volume_ml
    out = {}
    peak = 0.0
    for k, wall in pl.walls.items():
        peak = max(peak, float(omega[wall].max()))
        n = int(np.count_nonzero(dmg & wall))
        if n:
            out[k] = n * vox
    return out, peak


def thermal_worse(pl: IrePlanner, new: ConfirmedPlan, old: ConfirmedPlan) -> list[str]:
    """Vessels and ducts where `new` predicts more thermal damage than `old` (any voxel)."""
    tol = 0.5 * pl.grid.voxel_volume_ml
    return sorted(k for k, v in new.thermal_hits.items() if v > old.thermal_hits.get(k, 0.0) + tol)


def split_trains(pairs: list[IrePair], cycles: set[int]) -> list[IrePair]:
    """The same protocol with each pair of `cycles` delivered as two trains of half the
    pulses: all first halves of a cycle, then all second halves, so that every probe
    cools while the other pairs fire. Pairs already split stay as they are."""
    out: list[IrePair] = []
    for c in sorted({p.cycle for p in pairs}):
        cp = [p for p in pairs if p.cycle == c]
        keys = [(p.anode, p.cathode) for p in cp]
        if c not in cycles or len(set(keys)) < len(keys):
            out += cp
            continue
        first = [p.model_copy(update={"pulses": (p.pulses + 1) // 2}) for p in cp]
        second = [p.model_copy(update={"pulses": p.pulses // 2}) for p in cp if p.pulses > 1]
        out += first + second
    return out


def thermal_relief(
    pl: IrePlanner, conf: ConfirmedPlan, cycles: set[int] | None = None
) -> ConfirmedPlan:
    """If `conf` predicts thermal damage at a vessel or duct, the same plan with the
    trains of the cycles concerned (of `cycles`, if given) split in two (`split_trains`):
    the zone and the currents do not change (they do not depend on the number of pulses),
    the probes cool between the halves. Kept if it predicts less damage."""
    if not conf.thermal_hits:
        return conf
    order = sorted({p.cycle for p in conf.probes})
    hot = {
        c
        for c, res in zip(order, conf.results, strict=True)
        if thermal_damage(pl, getattr(res, "thermal_omega", None))[0]
        and (cycles is None or c in cycles)
    }
    pairs = split_trains(conf.pairs, hot)
    if len(pairs) == len(conf.pairs):
        return conf  # nothing left to split
    pl.record.count("split_train_trials")
    alt = confirm(pl, conf.probes, pairs)
    tol = 0.5 * pl.grid.voxel_volume_ml
    if not thermal_worse(pl, alt, conf) and (
        sum(alt.thermal_hits.values()) < sum(conf.thermal_hits.values()) - tol
        or alt.thermal_peak < conf.thermal_peak
    ):
        return alt
    return conf


# ---- repair ----------------------------------------------------------------------------------


def bordering_pairs(
    pl: IrePlanner, conf: ConfirmedPlan, caps: list[float], fields: PairFields
) -> set[int] | None:
    """Indices of the pairs that border the confirmed plan's shortfall: for each target
    voxel left below threshold, the pair with headroom (`caps`: its highest allowed
    voltage) whose constant-model field (`fields`, from `fast_voltages`) there at the raised
    voltage is strongest, if that beats the voxel's present constant-model field. None if
    the fields of these pairs are not known (then every pair counts)."""
    keys = [(p.cycle, p.anode, p.cathode) for p in conf.pairs]
    if not keys or any(k not in fields for k in keys):
        return None
    unc = (pl.region & ~conf.zone)[pl.region]
    if not unc.any():
        return set()
    now = np.stack(
        [
            fields[k][1][unc] * (p.voltage_v / fields[k][0])
            for k, p in zip(keys, conf.pairs, strict=True)
        ]
    )
    up = np.stack([fields[k][1][unc] * (c / fields[k][0]) for k, c in zip(keys, caps, strict=True)])
    head = np.array([c > p.voltage_v + 0.5 for c, p in zip(caps, conf.pairs, strict=True)])
    if not head.any():
        return set()
    potential = np.where(head[:, None], up, -1.0)
    best = np.argmax(potential, axis=0)
    gain = potential[best, np.arange(unc.sum())] > now.max(axis=0)
    return {int(i) for i in np.unique(best[gain])}


def repair(
    pl: IrePlanner, conf: ConfirmedPlan, required: float, fields: PairFields | None = None
) -> ConfirmedPlan:
    """Turn down pairs over the current limit; if coverage is short, raise the voltage of
    the pairs that border the shortfall (12 % a step, within the voltage and current
    limits; `fields`: the constant-model fields of the plan's fast voltages, without them
    every pair): raising every pair would add current and heating where nothing is short.

    Predicted thermal damage at a vessel or bile duct is a constraint: a raise that
    predicts more of it than the plan before is first tried with the raised cycles' trains
    split in two (`thermal_relief`); if that does not help, the raise is refused and the
    plan before it returned (the search goes on with other layouts). A refused plan that
    met the coverage requirement is kept in the record's `thermal_fallbacks`: it is chosen
    only if no layout meets it without the damage."""
    lim = pl.lim
    rec = pl.record
    for _ in range(3):
        over = over_limit(lim, conf.pairs)
        short = not covered(conf, required)
        if not over and not short:
            return conf
        caps = []
        for p in conf.pairs:
            cap_i = lim.max_voltage_v
            if p.predicted_current_a:
                cap_i = min(
                    cap_i,
                    p.voltage_v * 0.9 * lim.max_current_a / float(p.predicted_current_a),
                )
            caps.append(min(p.voltage_v * 1.12, cap_i))
        border = bordering_pairs(pl, conf, caps, fields or {}) if short and not over else None
        # A pair delivered as two trains is raised as one.
        border_keys = (
            None
            if border is None
            else {(conf.pairs[i].cycle, conf.pairs[i].anode, conf.pairs[i].cathode) for i in border}
        )
        pairs = []
        changed = False
        raised: list[tuple[IrePair, float]] = []
        for i, p in enumerate(conf.pairs):
            v = p.voltage_v
            if i in over:
                # Current grows faster than linearly with voltage (conductivity rises).
                v = v * 0.92 * lim.max_current_a / float(p.predicted_current_a or 1.0)
            elif (
                short
                and not over
                and (border_keys is None or (p.cycle, p.anode, p.cathode) in border_keys)
            ):
                v = max(v, caps[i])
            v = float(round(v, 0))
            changed |= abs(v - p.voltage_v) >= 1.0
            if v > p.voltage_v + 0.5:
                raised.append((p, v))
            pairs.append(p.model_copy(update={"voltage_v": v, "predicted_current_a": None}))
        if not changed:
            return conf
        rec.stats["repairs"] += 1
        if border is not None:
            rec.count("pair_boosts", len(border))
        fixed = confirm(pl, conf.probes, pairs)
        if raised and thermal_worse(pl, fixed, conf):
            fixed = thermal_relief(pl, fixed, {p.cycle for p, _ in raised})
            worse = thermal_worse(pl, fixed, conf)
            if worse:
                rec.count("raises_refused_thermal")
                rec.thermal_refusals.append(
                    {
                        "probes": probes_key(conf.probes),
                        "structures": worse,
                        "raised": [
                            (p.cycle, p.anode, p.cathode, p.voltage_v, v, p.spacing_mm)
                            for p, v in raised
                        ],
                        "coverage_kept": conf.metrics.target_coverage,
                        "coverage_refused": fixed.metrics.target_coverage,
                        "hits": dict(fixed.thermal_hits),
                    }
                )
                if covered(fixed, required) and not over_limit(lim, fixed.pairs):
                    rec.thermal_fallbacks.append(fixed)
                return conf
        conf = fixed
    return conf
