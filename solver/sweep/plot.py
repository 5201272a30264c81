"""The sweep's plot: percentile bands of wall-clock days by accelerator (the ``plot`` extra).

For each accelerator, over the first numeric grid axis (tokens, a deadline, a GPU cap), the
band from P10 to P90 of the wall-clock days of the points with a plan, and the P50 as a line
(``summary.percentiles``). An axis laid out with ``log = true``, or spanning a factor of 10 or
more, is drawn on a log scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from solver.errors import SpecError

if TYPE_CHECKING:
    from solver.sweep.result import SweepResult


def plot_days(result: SweepResult, path: str | Path, *, title: str | None = None) -> Path:
    from solver.pareto import check_plot_path, require_matplotlib

    path = check_plot_path(path)
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullLocator

    axis = next((a for a in result.spec.grid if a.numeric and len(a.values) > 1), None)
    if axis is None:
        raise SpecError("plot: expected a numeric [grid] axis with several values to draw the "
                        "days along (tokens, a deadline, a GPU cap)")
    rows = [r for r in result.rows if isinstance(r.get("wall_clock_days"), (int, float))
            and r.get("accelerator") is not None]
    if not rows:
        raise SpecError("plot: no point has a plan to draw")
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    for name in sorted({r["accelerator"] for r in rows}):
        xs, bands = [], []
        for x in axis.shown:
            days = [r["wall_clock_days"] for r in rows
                    if r["accelerator"] == name and r.get(axis.key) == x]
            if days:
                xs.append(float(x))
                bands.append(np.percentile(days, (10, 50, 90)))
        if not xs:
            continue
        b = np.array(bands)
        line = ax.plot(xs, b[:, 1], marker="o", markersize=3, label=name)[0]
        ax.fill_between(xs, b[:, 0], b[:, 2], color=line.get_color(), alpha=0.2, linewidth=0)
    values = [float(v) for v in axis.shown]
    if axis.log or (min(values) > 0 and max(values) / min(values) >= 10):
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xticks(values, labels=[_short(v) for v in values])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1
                                               else f"{v:.2g}"))
    ax.set_xlabel(axis.key)
    ax.set_ylabel("wall-clock days (line: P50; band: P10-P90)")
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(title="accelerator", fontsize=8, title_fontsize=8)
    ax.set_title(title or f"{Path(result.spec.path).name}: {len(result.rows)} points",
                 fontsize=10)
    fig.savefig(path, dpi=150)
    return path


def _short(value: float) -> str:
    """``2e12`` -> ``2T``, ``4096`` -> ``4,096``: tick labels (token counts, GPUs, days)."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:,.4g}"
