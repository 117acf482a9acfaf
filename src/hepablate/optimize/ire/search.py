"""The search loop (what `IrePlanner.run` does): candidate layouts, fast voltages,
confirmation and repair, best plan kept; after each confirmed layout that falls short the
search state is renewed (tighter reach estimate, tumour weighted, probes allowed shallower)
and the next candidates are tried. See the package docstring for the steps."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from hepablate.optimize.ire.diagnosis import (
    no_layout_reason,
    search_summary,
    thermal_plan_warnings,
)
from hepablate.optimize.ire.layouts import candidate_layouts
from hepablate.optimize.ire.model import (
    Candidate,
    ConfirmedPlan,
    CycleLayout,
    IrePlanOutcome,
    SearchState,
)
from hepablate.optimize.ire.probes import unit_dir
from hepablate.optimize.ire.voltages import (
    confirm,
    covered,
    fast_voltages,
    over_limit,
    rank,
    repair,
    shortfall,
    thermal_relief,
)
from hepablate.placement.paths import candidate_directions
from hepablate.plans.model import PlanWarning

if TYPE_CHECKING:
    from hepablate.optimize.ire.planner import IrePlanner

#: Zone reach estimate (fraction of the spacing) for targets no single placement covers:
#: their pairs run at the generator limit, where the engine's nonlinear zone reaches 0.47 to
#: 0.5 x spacing beyond the outer pairs (2 x 3 and square layouts at 17 to 20 mm and 3000 V,
#: homogeneous liver, 1 mm grid).
LARGE_TARGET_REACH = 0.5

#: Zone reach estimates tried, in turn, when no layout of a large target fits the search's
#: estimate: the engine then decides how much is covered.
RELAXED_REACH_FACTORS = (0.55, 0.6, 0.7)

#: Candidate layouts confirmed with the engine at most.
MAX_ATTEMPTS = 4
#: Further candidates confirmed once the search goes on to angled probes because parallel
#: paths were blocked (issue 12).
ANGLED_ATTEMPTS = 2


def run_search(pl: IrePlanner) -> IrePlanOutcome:
    required = pl.required
    search_goal = 1.0 - 0.5 * (1.0 - required)  # aim a little above the requirement
    state = SearchState.initial(pl.lim, angled=pl.opts.allow_angled)
    exclude: set[tuple] = set()
    best: ConfirmedPlan | None = None
    attempts = 0
    max_attempts = MAX_ATTEMPTS
    pl.progress.start("planning IRE", total=MAX_ATTEMPTS)
    pending: list[Candidate] = []
    cands, single_fits = candidate_layouts(pl, state, exclude)
    large = not single_fits
    if large:
        state = large_target_state(pl, state)
        cands, _ = candidate_layouts(pl, state, exclude)
    if not cands and not state.angled and paths_blocked(pl):
        state = go_angled(pl, state)
        cands, _ = candidate_layouts(pl, state, exclude)
    while attempts < max_attempts:
        if attempts > 0:
            cands, _ = candidate_layouts(pl, state, exclude)
        if not cands:
            cands, state = fall_back_candidates(pl, state, pending, exclude, large)
        if not cands and not state.angled and paths_blocked(pl):
            state = go_angled(pl, state)
            max_attempts = max(max_attempts, attempts + ANGLED_ATTEMPTS)
            cands, _ = candidate_layouts(pl, state, exclude)
        if not cands:
            break
        # Untried layouts of every round stay available as fall-backs.
        pending = cands[1:] + pending
        attempts += 1
        pl.progress.advance()
        _, cycles, key = cands[0]
        exclude.add(key)
        conf = try_layout(pl, state, cycles, required, search_goal, first=attempts == 1)
        for c in [conf, *pl.record.thermal_fallbacks]:
            if best is None or rank(pl.lim, c, required) > rank(pl.lim, best, required):
                best = c
        assert best is not None
        if rank(pl.lim, best, required)[0]:
            break  # covered, within the current limit, no thermal damage at vessels/ducts
        state = after_shortfall(pl, state, conf)
        if attempts == max_attempts and not state.angled and paths_blocked(pl):
            # Parallel layouts fell short while others had blocked paths: angled probes may
            # pass the structures that blocked those (through other windows). The blocked
            # layouts were never tried, so the search starts again from its first estimates.
            fresh = SearchState.initial(pl.lim, angled=True)
            state = go_angled(pl, large_target_state(pl, fresh) if large else fresh)
            max_attempts += ANGLED_ATTEMPTS
    pl.progress.finish()
    pl.record.stats["search_attempts"] = attempts
    if state.angled and best is not None:
        pl.record.stats.update(angle_stats(best))
    return outcome(pl, state, best, attempts, required)


# ---- renewing the search state -----------------------------------------------------------------


def paths_blocked(pl: IrePlanner) -> dict[str, int]:
    """What blocked needle paths of parallel layouts (structures, the entry region), leaving
    out the layout rules (spacing, cycles) that angled probes do not relax."""
    rules = ("probe spacing", "angled probe spacing")
    return {
        k: n
        for k, n in pl.record.blocked.items()
        if k not in rules and not k.startswith("more than")
    }


def go_angled(pl: IrePlanner, state: SearchState) -> SearchState:
    """Parallel needle paths were blocked: from now on a probe whose parallel path is blocked
    may be angled (`probes.place_angled`), within `max_probe_angle_deg` and the spacing rules
    for non-parallel pairs (`probes.angled_ok`). Recorded for the plan's notes."""
    why = ", ".join(
        f"{k} ({n} layout{'s' if n > 1 else ''})"
        for k, n in sorted(paths_blocked(pl).items(), key=lambda kv: -kv[1])[:4]
    )
    pl.record.angled_reason = f"parallel needle paths were blocked by {why}"
    pl.record.stats["angled_after_blocked"] = 1
    return replace(state, angled=True)


def large_target_state(pl: IrePlanner, state: SearchState) -> SearchState:
    """No single placement covers the target: its voltages will go to the generator limit,
    where the engine's zone reaches about half the spacing beyond the outer pairs
    (LARGE_TARGET_REACH), and the middles of 17 to 20 mm cells stay below threshold unless the
    cells' diagonals are energised too (up to the device's maximum spacing). Fewest
    repositionings first (`candidate_layouts`)."""
    wide_mm = float(pl.lim.spacing_device_max_mm or pl.lim.spacing_max_mm)
    state = replace(
        state,
        pair_max_mm=max(state.pair_max_mm, wide_mm),
        reach_factor=max(state.reach_factor, LARGE_TARGET_REACH),
    )
    pl.record.stats["large_target"] = 1
    if state.pair_max_mm > pl.lim.spacing_max_mm + 1e-9:
        pl.record.stats["pair_max_spacing_mm"] = state.pair_max_mm
    return state


def after_shortfall(pl: IrePlanner, state: SearchState, conf: ConfirmedPlan) -> SearchState:
    """The state for the next round after a confirmed layout fell short: a tighter reach
    estimate, the exposure extended beyond the region, and where the shortfall is in the
    tumour (a weak spot of the layout, typically the middle of a cell) the tumour weighted
    so that the next layouts put energised pairs through it; where it is in the tumour or
    next to a no-go structure, probes whose deep end would come too close to it may stay in
    the layout, placed as much shallower as needed (e.g. a central probe in a tumour that
    abuts a vessel beyond the tips), instead of dropping such layouts."""
    tumour_short = conf.metrics.tumour_coverage < 1.0 - 1e-9
    tumour_weight = min(2.0 * state.tumour_weight, 4.0) if tumour_short else state.tumour_weight
    near = sum(g.volume_ml for g in shortfall(pl, conf) if g.structure is not None)
    shallower = tumour_short or near >= 0.5 * conf.metrics.uncovered_target_ml
    return replace(
        state,
        reach_factor=state.reach_factor * 0.8,
        axial_reach=max(state.axial_reach - 2.0, -4.0),
        tumour_weight=tumour_weight,
        max_back_fraction=0.9 if shallower else state.max_back_fraction,
    )


def fall_back_candidates(
    pl: IrePlanner,
    state: SearchState,
    pending: list[Candidate],
    exclude: set[tuple],
    large: bool,
) -> tuple[list[Candidate], SearchState]:
    """Candidates when none fits this round's state: the plain fit (no tumour weight), the
    untried layouts of earlier rounds, and for a large target wider reach estimates (the
    estimate is only a heuristic: the nonlinear zone reaches further at higher voltages, so
    the engine decides how much is covered); with the state they were found with."""
    cands = unweighted_if_none(pl, state, [], exclude)
    if not cands:
        # Nothing fits the tighter reach estimate: fall back on the next-best layouts of the
        # previous round.
        cands = [c for c in pending if c[2] not in exclude]
    if not cands and large:
        for rf in RELAXED_REACH_FACTORS:
            if rf <= state.reach_factor + 1e-9:
                continue
            relaxed = replace(state, reach_factor=rf)
            cands = unweighted_if_none(
                pl, relaxed, candidate_layouts(pl, relaxed, exclude)[0], exclude
            )
            if cands:
                pl.record.stats["reach_factor_relaxed"] = rf
                return cands, relaxed
    return cands, state


def unweighted_if_none(
    pl: IrePlanner, state: SearchState, cands: list[Candidate], exclude: set[tuple]
) -> list[Candidate]:
    """`cands`, or if there are none and the tumour is weighted, the candidates of the plain
    fit at this reach (no layout puts pairs through a tumour this large)."""
    if not cands and state.tumour_weight > 1.0:
        return candidate_layouts(pl, replace(state, tumour_weight=1.0), exclude)[0]
    return cands


# ---- one candidate ---------------------------------------------------------------------------


def try_layout(
    pl: IrePlanner,
    state: SearchState,
    cycles: list[CycleLayout],
    required: float,
    search_goal: float,
    first: bool = False,
) -> ConfirmedPlan:
    """Fast voltages, confirmation (trains split against thermal damage) and, if the plan is
    not accepted, the repair (kept only where it pays); traced in the record."""
    lim = pl.lim
    pairs, alpha, fields = fast_voltages(pl, cycles, search_goal)
    probes = [p for c in cycles for p in c.probes]
    conf = thermal_relief(pl, confirm(pl, probes, pairs))
    ok = covered(conf, required) and not over_limit(lim, conf.pairs)
    if first:
        pl.record.stats["fast_choice_confirmed"] = float(ok and np.isfinite(alpha))
    trace = {
        "layouts": [(c.layout.n, float(c.layout.spacing_mm)) for c in cycles],
        "reach_factor": round(state.reach_factor, 3),
        "tumour_weight": state.tumour_weight,
        "alpha": round(alpha, 3),
        "fast_coverage_ok": bool(ok),
        "coverage": round(conf.metrics.target_coverage, 4),
        "tumour_coverage": round(conf.metrics.tumour_coverage, 4),
    }
    if not ok:
        fixed = repair(pl, conf, required, fields)
        # Keep raised voltages only where they pay: a repair that does not improve the plan
        # would only add current and heating.
        if over_limit(lim, conf.pairs) or rank(lim, fixed, required) > rank(lim, conf, required):
            conf = fixed
        trace["repaired_coverage"] = round(conf.metrics.target_coverage, 4)
        trace["repaired_tumour_coverage"] = round(conf.metrics.tumour_coverage, 4)
    trace["thermal_damage_ml"] = {k: round(v, 3) for k, v in conf.thermal_hits.items()}
    pl.record.trace.append(trace)
    return conf


# ---- the outcome -----------------------------------------------------------------------------


def angle_stats(best: ConfirmedPlan) -> dict[str, float]:
    """How many probes deviate from their cycle's mean direction, and the largest angle
    between two probes of a cycle."""
    n_ang, worst = 0, 0.0
    for c in sorted({p.cycle for p in best.probes}):
        ds = [unit_dir(p.direction_lps) for p in best.probes if p.cycle == c]
        mean = unit_dir(np.sum(ds, axis=0))
        ang = [float(np.degrees(np.arccos(np.clip(x @ mean, -1, 1)))) for x in ds]
        spread = max(float(np.degrees(np.arccos(np.clip(x @ y, -1, 1)))) for x in ds for y in ds)
        n_ang += sum(a > 0.05 for a in ang) if spread > 0.05 else 0
        worst = max(worst, spread)
    return {"angled_probes": n_ang, "max_angle_between_probes_deg": round(worst, 1)}


def outcome(
    pl: IrePlanner,
    state: SearchState,
    best: ConfirmedPlan | None,
    attempts: int,
    required: float,
) -> IrePlanOutcome:
    """The best plan (or none), with the search's notes: what it did about thermal damage at
    vessels and ducts and, for a target it did not cover, what it searched within. The
    plan's metrics, warnings and status are `evaluate`'s."""
    lim = pl.lim
    rec = pl.record
    if best is None:
        found = candidate_directions(
            pl.region_pts.mean(axis=0),
            pl.paths,
            pl.defaults.max_tilt_deg.value,
            pl.entry,
            pl.opts.patient_position,
        )
        reason = no_layout_reason(
            grid=pl.grid,
            region=pl.region,
            region_pts=pl.region_pts,
            tumour=pl.structures[pl.case.target_key],
            lim=lim,
            pair_max_mm=state.pair_max_mm,
            max_cycles=pl.max_cycles,
            safety_mm=pl.safety_mm,
            blocked=rec.blocked,
            direction_found=bool(found),
        )
        if state.angled:
            reason = reason.replace("parallel probes", "parallel or angled probes", 1)
        reason += opening_text(pl)
        return IrePlanOutcome(None, reason, [], pl.grid, pl.structures, pl.region, lim, rec.stats)
    notes = approach_notes(pl, state, best)
    notes += thermal_plan_warnings(
        best,
        attempts,
        thermal_damage_omega=pl.defaults.thermal_damage_omega.value,
        refusals=rec.thermal_refusals,
        fallbacks=rec.thermal_fallbacks,
        split_train_trials=rec.stats.get("split_train_trials", 0),
    )
    reason = ""
    if not covered(best, required) or over_limit(lim, best.pairs):
        reason = search_summary(
            best,
            lim=lim,
            pair_max_mm=state.pair_max_mm,
            max_cycles=pl.max_cycles,
            refusals=rec.thermal_refusals,
        )
        notes.append(PlanWarning(level="info", code="search_summary", message=reason))
    return IrePlanOutcome(best, reason, notes, pl.grid, pl.structures, pl.region, lim, rec.stats)


def opening_text(pl: IrePlanner) -> str:
    """What would open a path (for a target with none): whether the central path from the
    target is clear in this position (then the layouts' other probes were the problem), the
    other patient positions whose central path is clear (a cheap check), or else a request
    for an entry region."""
    from hepablate.placement.approach import approaches, openings

    pos = pl.opts.patient_position
    centre = pl.region_pts.mean(axis=0)
    tilt = pl.defaults.max_tilt_deg.value
    where = pos.replace("_", " ")
    here = [a for a in approaches(centre, pl.paths, tilt, pos, pl.entry) if a.clear]
    opened = openings(centre, pl.paths, tilt, pos) if pl.entry is None else []
    out = ""
    if here:
        from hepablate.placement.paths import clear_cross_section

        frac = clear_cross_section(pl.paths, pl.region_pts, here[0].direction_lps)
        out += (
            f". In the {where} position the central path is clear ({here[0].describe()}) but "
            "the layouts' other probes were blocked by the structures above: along it, "
            f"{100 * frac:.0f} % of the target's cross-section has a clear parallel path"
        )
    if opened:
        out += ". A clear central path opens in: " + "; ".join(opened)
    elif not here:
        out += (
            f". No patient position opens a clear central path ({where} and the others "
            "checked); give an entry region (--entry), a smaller safety distance, or displace "
            "the blocking structure (e.g. hydrodissection or artificial pneumothorax)"
        )
    else:
        out += (
            "; no other patient position opens a clear central path; a smaller target "
            "margin, a smaller safety distance or displacing the blocking structure would"
        )
    return out


def approach_notes(pl: IrePlanner, state: SearchState, best: ConfirmedPlan) -> list[PlanWarning]:
    """Info notes on the plan's approach: patient position and kind of window of each cycle
    (intercostal, subcostal, direct) and whether angled probes were used and why."""
    from hepablate.placement.approach import azimuth_deg, classify, side_of, tilt_deg

    out = []
    parts = []
    for c in sorted({p.cycle for p in best.probes}):
        ps = [p for p in best.probes if p.cycle == c]
        kinds = set()
        for p in ps:
            if p.entry_lps_mm is None or p.depth_mm is None:
                continue
            d = unit_dir(p.direction_lps)
            kinds.add(classify(pl.paths, np.asarray(p.entry_lps_mm), d, p.depth_mm))
        d = unit_dir(np.sum([unit_dir(p.direction_lps) for p in ps], axis=0))
        parts.append(
            f"cycle {c}: {'/'.join(sorted(kinds)) or 'unchecked'} {side_of(-d)} (azimuth "
            f"{azimuth_deg(-d):.0f} deg, craniocaudal {tilt_deg(-d):+.0f} deg)"
        )
    pos = pl.opts.patient_position.replace("_", " ")
    out.append(
        PlanWarning(
            level="info",
            code="approach",
            message=f"patient {pos}; " + "; ".join(dict.fromkeys(parts)),
        )
    )
    if state.angled:
        st = angle_stats(best)
        why = (
            "requested (--allow-angled)"
            if pl.opts.allow_angled
            else (pl.record.angled_reason or "parallel paths were blocked")
        )
        if pl.record.stats.get("angled_budget_exhausted"):
            why += "; the angled search stopped at its path-check budget"
        if st["angled_probes"]:
            msg = (
                f"angled probes used: {int(st['angled_probes'])} probe(s) deviate from their "
                f"cycle's common direction, at most {st['max_angle_between_probes_deg']:g} deg "
                f"between two probes ({why}); every pair with an angled probe keeps its "
                "spacing along the exposure within the device limits"
            )
        else:
            msg = f"parallel probes used; angled probes were allowed ({why}) but not needed"
        out.append(PlanWarning(level="info", code="angled_probes", message=msg))
    else:
        out.append(
            PlanWarning(
                level="info",
                code="parallel_probes",
                message="parallel probes used (the search found clear parallel paths)",
            )
        )
    return out
