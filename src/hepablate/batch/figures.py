"""Summary figures of a batch's results table (PNG, matplotlib's Agg backend).

- ``coverage_vs_NAME.png`` for each swept value NAME (a column ``options.*``, ``tissue.*`` or
  ``device.*`` with more than one value): target coverage against the value, one line per
  case (and per combination of the other swept values);
- ``coverage_by_case.png``: each finished row's target coverage, grouped by case, feasible
  and infeasible plans marked apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

MAX_LINES = 12


def _swept(frame: pd.DataFrame) -> list[str]:
    cols = [c for c in frame.columns if c.split(".", 1)[0] in ("options", "tissue", "device")]
    return [c for c in cols if frame[c].map(str).nunique() > 1]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _numeric(values: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def write_figures(frame: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write the figures of the module docstring into `out_dir`; returns their paths (none
    when no row finished)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    if "target_coverage" not in frame.columns:
        return []
    done = frame[(frame["state"] == "done") & frame["target_coverage"].notna()]
    if done.empty:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    swept = _swept(done)
    for name in swept:
        others = [c for c in swept if c != name]
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
        numeric = _numeric(done[name])
        cats = sorted(done[name].map(str).unique())
        groups = done.groupby(["case_name", *others], dropna=False, sort=True)
        for i, (label, g) in enumerate(groups):
            if i >= MAX_LINES:
                break
            if numeric:
                x = pd.to_numeric(g[name])
                order = x.argsort()
                xs, ys = x.iloc[order], g["target_coverage"].iloc[order]
            else:
                xs = g[name].map(str).map(cats.index)
                order = xs.argsort()
                xs, ys = xs.iloc[order], g["target_coverage"].iloc[order]
            parts = label if isinstance(label, tuple) else (label,)
            text = " ".join(
                [str(parts[0])]
                + [f"{o.rsplit('.', 1)[-1]}={v}" for o, v in zip(others, parts[1:], strict=True)]
            )
            ax.plot(xs, 100 * ys, marker="o", label=text)
        if not numeric:
            ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right")
        ax.set_xlabel(name)
        ax.set_ylabel("target coverage (%)")
        ax.set_title(f"Target coverage vs {name.rsplit('.', 1)[-1]}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = out / f"coverage_vs_{_safe(name)}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    cases = sorted(done["case_name"].unique())
    for status, colour in (("feasible", "tab:green"), ("infeasible", "tab:red")):
        sub = done[done["status"] == status]
        if sub.empty:
            continue
        x = sub["case_name"].map(cases.index)
        ax.scatter(x, 100 * sub["target_coverage"], color=colour, label=status, alpha=0.7)
    ax.set_xticks(range(len(cases)), cases, rotation=30, ha="right")
    ax.set_ylabel("target coverage (%)")
    ax.set_title(f"Target coverage by case ({len(done)} finished rows)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "coverage_by_case.png"
    fig.savefig(path)
    plt.close(fig)
    written.append(path)
    return written
