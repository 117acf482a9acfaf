"""Validation suite: reproduce the published experiments of
src/hepablate/data/validation_experiments.yaml with the forward models, compare the predicted
zones with the measured ones, and (IRE) fit the liver threshold and sigma(E) variant on the
calibration experiments. Prints one JSON document.

    .venv/bin/python benchmarks/validation/run_validation.py                 # 1 mm grids
    .venv/bin/python benchmarks/validation/run_validation.py --spacing 2     # quick
    .venv/bin/python benchmarks/validation/run_validation.py --write-doc     # + docs/validation.md

--write-doc replaces the generated part of docs/validation.md (between the
`<!-- generated:start -->` and `<!-- generated:end -->` markers) with the tables of this run,
and records the machine and its load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from hepablate.anatomy.tissues import load_tissue_table
from hepablate.validation import load_validation_suite
from hepablate.validation.calibrate import SIGMA_VARIANTS, fit_threshold, sigma_variant_table
from hepablate.validation.experiments import IreExperiment, LaserExperiment, Spread
from hepablate.validation.reproduce import IreField, reproduce_ire, reproduce_laser

DOC = Path(__file__).resolve().parents[2] / "docs" / "validation.md"
START, END = "<!-- generated:start -->", "<!-- generated:end -->"


def _err(pred: float | tuple[float, float], meas: Spread) -> dict:
    """Error of a prediction (a value, or an interval where the protocol is bracketed)."""
    m = meas.value_mm
    if isinstance(pred, tuple):
        lo, hi = pred
        e = 0.0 if lo <= m <= hi else (lo - m if m < lo else hi - m)
        shown = f"{lo:.1f}–{hi:.1f}"
    else:
        e = pred - m
        shown = f"{pred:.1f}"
    return {
        "measured": meas.describe(),
        "measured_mm": m,
        "predicted": shown,
        "error_mm": round(e, 1),
        "error_pct": round(100.0 * e / m, 1),
    }


def ire_rows(
    fields: dict[str, list[IreField]], exps: list[IreExperiment], thr: float
) -> list[dict]:
    rows = []
    for exp in exps:
        fs = fields[exp.id]
        dims = [f.dimensions_mm(thr) for f in fs]
        row: dict = {"id": exp.id, "role": exp.role, "dims": {}}
        for name in ("width_mm", "depth_mm", "height_mm"):
            meas = getattr(exp.measured, name)
            if meas is None:
                continue
            vals = [d[name] for d in dims]
            pred = vals[0] if len(vals) == 1 else (min(vals), max(vals))
            row["dims"][name] = _err(pred, meas)
        row["currents_a"] = [round(c, 1) for f in fs for c in f.currents_a]
        row["voltages_v"] = [f.voltage_v for f in fs]
        rows.append(row)
    return rows


def run_ire(spacing_mm: float, threshold_v_per_cm: float | None) -> dict:
    suite = load_validation_suite()
    base = load_tissue_table()
    default_thr = float(base.tissues["liver"].electrical.ire_threshold_v_per_cm.value)
    cal = [e for e in suite.ire if e.role == "calibration"]
    out: dict = {"variants": {}, "default_threshold_v_per_cm": default_thr}
    for variant in SIGMA_VARIANTS:
        tissues, model = sigma_variant_table(variant, base)
        t0 = time.perf_counter()
        fields = {
            e.id: [reproduce_ire(e, v, spacing_mm, tissues, model) for v in e.voltages_v()]
            for e in suite.ire
        }
        fit = fit_threshold(variant, [(e, f) for e in cal for f in fields[e.id]])
        rows_fit = ire_rows(fields, suite.ire, fit.threshold_v_per_cm)
        val_errs = [
            abs(d["error_pct"])
            for r in rows_fit
            if r["role"] == "validation"
            for d in r["dims"].values()
        ]
        out["variants"][variant] = {
            "model": model,
            "fitted_threshold_v_per_cm": fit.threshold_v_per_cm,
            "calibration_rms_relative_error": round(fit.rms_relative_error, 3),
            "validation_median_abs_error_pct": round(statistics.median(val_errs), 1),
            "validation_max_abs_error_pct": round(max(val_errs), 1),
            "rows_at_fitted_threshold": rows_fit,
            "solve_s": round(time.perf_counter() - t0, 2),
            "fields": fields,
        }
    chosen = min(
        out["variants"], key=lambda v: out["variants"][v]["calibration_rms_relative_error"]
    )
    out["lowest_calibration_error_variant"] = chosen

    thr = threshold_v_per_cm if threshold_v_per_cm is not None else default_thr
    out["table_threshold_v_per_cm"] = thr
    out["rows"] = ire_rows(out["variants"]["table"]["fields"], suite.ire, thr)
    for v in out["variants"].values():
        del v["fields"]
    return out


def run_laser(spacing_mm: float) -> list[dict]:
    rows = []
    for exp in load_validation_suite().laser:
        p = reproduce_laser(exp, spacing_mm)
        row: dict = {
            "id": exp.id,
            "dims": {},
            "tip_max_c": round(p.tip_max_c, 1),
            "zone_volume_ml": round(p.zone_volume_ml, 2),
            "runtime_s": round(p.runtime_s, 2),
            "notes": p.notes,
        }
        for name, val in (("length_mm", p.length_mm), ("diameter_mm", p.diameter_mm)):
            meas = getattr(exp.measured, name)
            if meas is not None:
                row["dims"][name] = _err(val, meas)
        if exp.measured.fused is not None:
            row["fused"] = {"measured": exp.measured.fused, "predicted": p.fused}
        rows.append(row)
    return rows


def median_abs(rows: list[dict]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name in ("width_mm", "depth_mm", "height_mm", "length_mm", "diameter_mm"):
        v = [abs(r["dims"][name]["error_pct"]) for r in rows if name in r["dims"]]
        if v:
            out[name] = round(statistics.median(v), 1)
    allv = [abs(d["error_pct"]) for r in rows for d in r["dims"].values()]
    out["all"] = round(statistics.median(allv), 1) if allv else None
    return out


def _protocol_ire(e: IreExperiment) -> str:
    p = e.protocol
    v = f"{p.voltage_v:g} V" if p.voltage_v is not None else "V not given"
    return (
        f"{p.probes} × {p.gauge} G, {p.spacing_mm:g} mm apart, {p.exposure_mm:g} mm exposed, "
        f"{v}, {p.pulses} × {p.pulse_width_us:g} µs"
    )


def _protocol_laser(e: LaserExperiment) -> str:
    p = e.protocol
    s = f", {p.spacing_mm:g} mm apart" if p.spacing_mm else ""
    t = e.start_temperature_c
    cond = "in vivo" if e.in_vivo else f"ex vivo from {t:g} °C" if t is not None else "ex vivo"
    if not e.in_vivo and e.protocol.start_temperature_c is None:
        cond += " (assumed)"
    return f"{p.fibres} × {p.fibre_type}{s}, {p.power_w:g} W × {p.duration_s:g} s, {cond}"


def markdown(result: dict) -> str:
    suite = load_validation_suite()
    ire, las = result["ire"], result["laser"]
    lines = [
        START,
        "",
        f"Generated by `benchmarks/validation/run_validation.py --write-doc` "
        f"(grid {result['spacing_mm']:g} mm) on {result['machine']}, load average "
        f"{result['load_avg_1min']} at the start, {result['wall_s']:.0f} s in all.",
        "",
        f"### IRE (liver threshold {ire['table_threshold_v_per_cm']:g} V/cm, tissue-table "
        "sigma(E))",
        "",
        "| experiment | role | protocol | dimension | measured (mm) | predicted (mm) | error mm | error % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ire["rows"]:
        e = suite.get(r["id"])
        assert isinstance(e, IreExperiment)
        for name, d in r["dims"].items():
            lines.append(
                f"| {r['id']} | {r['role']} | {_protocol_ire(e)} | {name[:-3]} | {d['measured']} "
                f"| {d['predicted']} | {d['error_mm']:+.1f} | {d['error_pct']:+.1f} |"
            )
    mi = median_abs(ire["rows"])
    lines += [
        "",
        "Median absolute error (IRE, all dimensions): "
        f"**{mi['all']} %** ({', '.join(f'{k[:-3]} {v} %' for k, v in mi.items() if k != 'all')}).",
        "",
        "#### Calibration of the liver sigma(E) and threshold",
        "",
        "| sigma(E) variant | fitted threshold V/cm | calibration RMS rel. error | validation median abs error % | validation max abs error % |",
        "|---|---|---|---|---|",
    ]
    for name, v in ire["variants"].items():
        lines.append(
            f"| {name} ({v['model']}) | {v['fitted_threshold_v_per_cm']:g} | "
            f"{v['calibration_rms_relative_error']:.3f} | {v['validation_median_abs_error_pct']} | "
            f"{v['validation_max_abs_error_pct']} |"
        )
    lines += [
        "",
        f"Lowest calibration error: `{ire['lowest_calibration_error_variant']}`; the default "
        "kept is argued under Discussion.",
        "",
        "### Laser (tissue-table optics, bare fibres forward-peaked, diffusers line sources; no charring)",
        "",
        "| experiment | protocol | dimension | measured (mm) | predicted (mm) | error mm | error % | tip °C (max, 2 mm from the emitter) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in las:
        e = suite.get(r["id"])
        assert isinstance(e, LaserExperiment)
        for name, d in r["dims"].items():
            lines.append(
                f"| {r['id']} | {_protocol_laser(e)} | {name[:-3]} | {d['measured']} | "
                f"{d['predicted']} | {d['error_mm']:+.1f} | {d['error_pct']:+.1f} | {r['tip_max_c']:.0f} |"
            )
        if "fused" in r:
            f = r["fused"]
            ok = "agrees" if f["measured"] == f["predicted"] else "**disagrees**"
            lines.append(
                f"| {r['id']} | {_protocol_laser(e)} | fusion | {'yes' if f['measured'] else 'no'} "
                f"| {'yes' if f['predicted'] else 'no'} | {ok} | | {r['tip_max_c']:.0f} |"
            )
    ml = median_abs(las)
    lines += [
        "",
        "Median absolute error (laser, all lengths): "
        f"**{ml['all']} %** ({', '.join(f'{k[:-3]} {v} %' for k, v in ml.items() if k != 'all')}).",
        "",
        END,
    ]
    return "\n".join(lines)


def machine() -> str:
    """CPU model (from /proc/cpuinfo where there is one) and core count."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=1.0, help="grid spacing (mm)")
    ap.add_argument("--threshold", type=float, default=None, help="liver IRE threshold (V/cm)")
    ap.add_argument("--write-doc", action="store_true")
    a = ap.parse_args()
    load0 = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    result = {
        "benchmark": "validation_suite",
        "spacing_mm": a.spacing,
        "machine": machine(),
        "load_avg_1min": load0,
        "ire": run_ire(a.spacing, a.threshold),
        "laser": run_laser(a.spacing),
    }
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result["median_abs_error_pct"] = {
        "ire": median_abs(result["ire"]["rows"]),
        "laser": median_abs(result["laser"]),
    }
    print(json.dumps(result, indent=2))
    if a.write_doc:
        text = DOC.read_text()
        i, j = text.index(START), text.index(END) + len(END)
        DOC.write_text(text[:i] + markdown(result) + text[j:])


if __name__ == "__main__":
    main()
