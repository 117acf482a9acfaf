"""Figures of the audit report (matplotlib PNG): Kaplan-Meier curves and funnel plots."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from hepablate.outcomes.audit import DAYS_PER_MONTH, binomial_control_limits
from hepablate.outcomes.survival import KaplanMeier

GROUP_COLOURS = {
    "overall": "#222222",
    "ire": "#1f77b4",
    "laser": "#d62728",
    "microwave": "#2ca02c",
    "radiofrequency": "#ff7f0e",
}


def _png(fig: Any, tight: bool = True) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buf.getvalue()


def km_figure(curves: dict[str, KaplanMeier], title: str, labels: dict[str, str]) -> bytes:
    """Kaplan-Meier curves per group (`labels`: group -> legend name), in months; the
    overall curve with its confidence band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for g, km in curves.items():
        t = np.concatenate([[0.0], km.times, [km.max_time]]) / DAYS_PER_MONTH
        s = np.concatenate([[1.0], km.survival, [km.survival[-1] if km.survival.size else 1.0]])
        c = GROUP_COLOURS.get(g, "#555555")
        ax.step(
            t,
            s,
            where="post",
            color=c,
            lw=2.2 if g == "overall" else 1.4,
            label=f"{labels.get(g, g)} (n={km.n}, events={km.n_events_total})",
        )
        if g == "overall" and km.times.size:
            lo = np.concatenate([[1.0], km.lower, [km.lower[-1]]])
            hi = np.concatenate([[1.0], km.upper, [km.upper[-1]]])
            ax.fill_between(
                t,
                np.nan_to_num(lo),
                np.nan_to_num(hi, nan=1.0),
                step="post",
                color=c,
                alpha=0.12,
                lw=0,
            )
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel("months after first ablation")
    ax.set_ylabel("probability")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return _png(fig)


def funnel_figure(rows: list[dict[str, Any]], modality_label: str, titles: dict[str, str]) -> bytes:
    """One panel per measure: the unit (red) against the published series (grey), with exact
    binomial 95% and 99.8% limits around the pooled rate; `titles`: measure -> panel title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    k = len(rows)
    ncol = 3 if k > 4 else k
    nrow = int(np.ceil(k / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 2.7 * nrow), squeeze=False)
    for ax in axes.flat[k:]:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows, strict=False):
        p0 = r["published"]["pooled_rate"]
        ns = [s["n"] for s in r["published"]["studies"]] + [r["unit"]["n"]]
        nmax = max(ns) * 1.3
        grid = np.unique(np.geomspace(5, max(nmax, 10), 40).astype(int))
        for cov, style in ((0.95, "--"), (0.998, ":")):
            if not 0.0 < p0 < 1.0:
                break  # degenerate: no limits around a pooled rate of 0 or 1
            lo, hi = binomial_control_limits(p0, grid, cov)
            ax.plot(grid, 100 * lo, "k" + style, lw=0.8)
            ax.plot(
                grid,
                100 * hi,
                "k" + style,
                lw=0.8,
                label=f"{100 * cov:g}% limits" if cov == 0.95 else "99.8% limits",
            )
        ax.axhline(100 * p0, color="grey", lw=0.8, label="pooled published rate")
        for s in r["published"]["studies"]:
            ax.plot(s["n"], 100 * s["events"] / s["n"], "o", color="#7f7f7f", ms=4)
        u = r["unit"]
        if u["n"]:
            ax.plot(u["n"], 100 * u["rate"], "D", color="#d62728", ms=7, label="this unit")
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())  # log minor ticks cost seconds to lay out
        ax.set_title(titles.get(r["measure"], r["measure"]).split(" (")[0], fontsize=9)
        ax.set_xlabel("denominator", fontsize=8)
        ax.set_ylabel("%", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=6, loc="best")
    fig.suptitle(f"{modality_label}: this unit (red) against published series (grey)", fontsize=10)
    fig.subplots_adjust(
        left=0.07, right=0.98, bottom=0.08, top=0.92 if nrow > 1 else 0.82, hspace=0.55, wspace=0.3
    )
    return _png(fig, tight=False)
