"""``solver.pareto``: the trade-off between training time and cost (or GPU count, or energy).

Method (epsilon-constraint, every point proven by the solver): each point is
``solve(objective=SECOND, deadline_days=BOUND)`` -- the plan that minimises the second axis
among those that finish within its time bound, ties broken towards the faster plan, so each
point is Pareto-optimal. The two ends come first: the fastest plan (``objective="time"``,
then re-solved for the second axis at that time) and the cheapest (no bound beyond the
user's deadline). Between two neighbouring points A (faster) and B, the bound is first the
geometric midpoint of their times and, if that holds nothing better than A, just below B's
time; a solve that returns a plan no better than A on the second axis proves that no front
point lies below its bound, and once that bound is just below B the interval is closed.
The widest open interval (in log time) is refined first, until every interval is closed
(the front is then *complete*: every Pareto-optimal trade-off, up to ties) or ``points``
points are found (a *sample*: each point optimal for its bound, the gaps between them not
searched). Details and limits: ``docs/export.md``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solver.costs import CostModel
from solver.errors import SpecError
from solver.estimate import SCHEMA_VERSION, Estimate, json_number
from solver.plan import Plan
from solver.search.solve import solve
from solver.specs import Limits, TrainingJob

SECOND_AXES = ("cost", "gpus", "energy")
#: Relative gap under which two times or two second-axis values count as equal.
REL = 1e-9
DEFAULT_POINTS = 12
PLOT_SUFFIXES = (".png", ".svg")
AXIS_LABELS = {"time": "wall-clock time (days)", "cost": "cost (USD)",
               "gpus": "accelerators", "energy": "energy (MWh)"}


def axis_value(est: Estimate, axis: str) -> float:
    """The value of ``est`` on ``axis``: days, USD, accelerators or MWh."""
    return {"time": est.wall_clock_days, "cost": est.cost_usd, "gpus": float(est.layout.gpus),
            "energy": est.energy_mwh}[axis]


@dataclass(frozen=True)
class ParetoFront:
    """Points sorted by time (fastest first), each a ``Plan`` optimal for its bound."""

    axes: tuple[str, str]
    points: tuple[Plan, ...]
    bounds_days: tuple[float | None, ...]
    status: str  # "complete", "sampled", "infeasible" or "unknown"
    explanation: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    solves: int = 0
    solve_time_s: float = 0.0

    def values(self, axis: str) -> list[float]:
        return [axis_value(p.estimate, axis) for p in self.points if p.estimate]

    def to_dict(self) -> dict[str, Any]:
        points = []
        for plan, bound in zip(self.points, self.bounds_days, strict=True):
            data = plan.to_dict()
            # Rounded as the estimates are (rounding keeps estimate <= bound).
            data["bound"] = {"deadline_days": None if bound is None else json_number(bound)}
            points.append(data)
        return {
            "schema_version": SCHEMA_VERSION,
            "axes": list(self.axes),
            "points": points,
            "status": self.status,
            "explanation": list(self.explanation),
            "notes": list(self.notes),
            "solves": self.solves,
            "solve_time_s": round(self.solve_time_s, 3),
        }

    def plot(self, path: str | Path, *, title: str | None = None) -> Path:
        """Draw the front to ``path`` (.png or .svg); needs matplotlib (``gpuplan[plot]``)."""
        return plot_front(self, path, title=title)


@dataclass
class _Interval:
    fast: Plan
    slow: Plan
    empty_up_to: float  # days: no plan better than ``fast`` finishes within this time
    below_slow_next: bool = False  # the midpoint was empty: try just below ``slow``

    def width(self) -> float:
        return math.log(_days(self.slow) / self.empty_up_to)


def _est(plan: Plan) -> Estimate:
    assert plan.estimate is not None
    return plan.estimate


def _days(plan: Plan) -> float:
    """Wall-clock days: the time a deadline (and so each point's bound) is judged on."""
    return _est(plan).wall_clock_days


def pareto(job: TrainingJob, limits: Limits | None = None, *,
           axes: tuple[str, str] | list[str] = ("time", "cost"), points: int = DEFAULT_POINTS,
           time_limit_s: float = 60.0, workers: int = 2, seed: int = 0,
           cost_model: str | CostModel | None = None,
           cost_params: Mapping[str, Any] | None = None,
           progress: Callable[[str], None] | None = None) -> ParetoFront:
    """The Pareto front of training time against ``axes[1]`` (cost, gpus or energy).

    ``limits`` as for ``solve``; its ``deadline_days`` bounds the slow end. ``points`` caps
    the number of points (at least 2); ``time_limit_s`` applies to each solve.
    """
    started = time.perf_counter()
    axes = (*axes,)
    if len(axes) != 2 or axes[0] != "time" or axes[1] not in SECOND_AXES:
        raise SpecError("axes: expected time,cost or time,gpus (or time,energy), got "
                        f"{','.join(map(str, axes))!r}")
    if not isinstance(points, int) or isinstance(points, bool) or points < 2:
        raise SpecError(f"points: expected an integer >= 2, got {points!r}")
    second = axes[1]
    limits = limits or Limits()
    say = progress or (lambda message: None)
    run = _Runner(job, limits, time_limit_s=time_limit_s, workers=workers, seed=seed,
                  cost_model=cost_model, cost_params=cost_params)
    notes = run.notes
    fastest = run("time", None)
    if fastest.estimate is None:
        return ParetoFront(axes=(axes[0], second), points=(), bounds_days=(),
                           status=fastest.status, explanation=fastest.explanation,
                           notes=tuple(notes), solves=run.solves,
                           solve_time_s=time.perf_counter() - started)
    t_fast = _days(fastest)
    top = run(second, t_fast * (1 + REL))
    if top.estimate is None or _days(top) > t_fast * (1 + 2 * REL):
        top = fastest  # cannot happen when both solves are optimal; keep the proven fastest
    found: dict[tuple[Any, ...], tuple[Plan, float | None]] = {_key(top): (top, t_fast)}
    say(f"fastest: {t_fast:,.1f} days")
    cheapest = run(second, None)
    if cheapest.estimate is not None:
        found.setdefault(_key(cheapest), (cheapest, limits.deadline_days))
        say(f"cheapest on {second}: {_days(cheapest):,.1f} days")
    open_: list[_Interval] = []
    if cheapest.estimate is not None and _better(cheapest, top, second):
        open_.append(_Interval(top, cheapest, t_fast))
    _fill(found, open_, points, run, second, say)
    kept = _non_dominated([p for p, _ in found.values()], second)
    dropped = len(found) - len(kept)
    if dropped:
        notes.append(f"{dropped} dominated point(s) dropped (a solve that was not proven "
                     "optimal)")
    order = sorted(kept, key=lambda p: (_days(p), axis_value(_est(p), second)))
    bounds = {id(p): b for p, b in found.values()}
    status = "sampled" if open_ else "complete"
    if status == "sampled":
        notes.append(f"sampled: {len(order)} points (the cap); each is optimal for its time "
                     "bound, the gaps between them were not searched")
    return ParetoFront(axes=(axes[0], second), points=tuple(order),
                       bounds_days=tuple(bounds[id(p)] for p in order), status=status,
                       notes=tuple(notes), solves=run.solves,
                       solve_time_s=time.perf_counter() - started)


class _Runner:
    """One ``solve`` per call, under a tighter deadline when given; counts the solves and
    gathers their notes (once each)."""

    def __init__(self, job: TrainingJob, limits: Limits, *, time_limit_s: float, workers: int,
                 seed: int, cost_model: str | CostModel | None,
                 cost_params: Mapping[str, Any] | None) -> None:
        self.job, self.limits, self.time_limit_s = job, limits, time_limit_s
        self.options: dict[str, Any] = {"workers": workers, "seed": seed,
                                        "cost_model": cost_model, "cost_params": cost_params}
        self.solves = 0
        self.notes: list[str] = []

    def __call__(self, objective: str, deadline: float | None) -> Plan:
        self.solves += 1
        limits = self.limits
        bounded = limits if deadline is None else dataclasses.replace(
            limits, deadline_days=_tighter(deadline, limits.deadline_days))
        plan = solve(self.job, bounded, objective=objective, time_limit_s=self.time_limit_s,
                     **self.options)
        extra = [f"a solve hit its {self.time_limit_s:g} s limit: its point is the best "
                 "found, not proven optimal"] if plan.status == "feasible" else []
        for line in [*extra, *plan.notes]:
            if line not in self.notes:
                self.notes.append(line)
        return plan


def _fill(found: dict[tuple[Any, ...], tuple[Plan, float | None]], open_: list[_Interval],
          points: int, run: _Runner, second: str, say: Callable[[str], None]) -> None:
    """Bisect the widest open interval (in log days) until none is left or ``points`` are
    found; ``found`` and ``open_`` are updated in place (what stays open: a sampled front)."""
    while open_ and len(found) < points:
        open_.sort(key=lambda iv: iv.width())
        iv = open_.pop()
        lo, hi = iv.empty_up_to, _days(iv.slow)
        below = iv.below_slow_next or math.sqrt(lo * hi) >= hi * (1 - 1e-3)
        bound = hi * (1 - REL) if below else math.sqrt(lo * hi)
        plan = run(second, bound)
        say(f"{len(found)} points; bound {bound:,.1f} days")
        if plan.estimate is not None and _better(plan, iv.fast, second):
            found.setdefault(_key(plan), (plan, bound))
            open_.append(_Interval(iv.fast, plan, lo))
            open_.append(_Interval(plan, iv.slow, _days(plan)))
        elif not below:
            # Nothing better than ``fast`` within ``bound``: only (bound, slow) is left.
            open_.append(_Interval(iv.fast, iv.slow, bound, below_slow_next=True))
        # else: no plan lies strictly between fast and slow on the front: closed.


def _tighter(a: float, b: float | None) -> float:
    return a if b is None else min(a, b)


def _key(plan: Plan) -> tuple[Any, ...]:
    assert plan.estimate is not None
    return tuple(sorted(plan.estimate.layout_dict().items()))


def _better(a: Plan, b: Plan, axis: str) -> bool:
    """``a`` is strictly better than ``b`` on ``axis`` (beyond rounding)."""
    assert a.estimate is not None and b.estimate is not None
    va, vb = axis_value(a.estimate, axis), axis_value(b.estimate, axis)
    return va < vb - REL * max(1.0, abs(vb))


def _non_dominated(plans: list[Plan], second: str) -> list[Plan]:
    def dominates(a: Plan, b: Plan) -> bool:
        ta, tb = _days(a), _days(b)
        no_worse = ta <= tb * (1 + REL) and not _better(b, a, second)
        return no_worse and (ta < tb * (1 - REL) or _better(a, b, second))

    return [p for p in plans if not any(dominates(q, p) for q in plans if q is not p)]


# ---------------------------------------------------------------------------- drawing


def check_plot_path(path: str | Path) -> Path:
    """``path`` as a ``Path`` if it ends in .png or .svg, else ``SpecError``."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise SpecError(f"plot: expected a file name ending in .png or .svg, got {str(path)!r}")
    return path


def require_matplotlib() -> None:
    """``SpecError`` with the install command when matplotlib (``gpuplan[plot]``) is missing."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise SpecError("plot: drawing needs matplotlib, which is not installed; "
                        "pip install 'gpuplan[plot]'") from None


def plot_front(front: ParetoFront, path: str | Path, *, title: str | None = None) -> Path:
    """Draw ``front`` as a step line with labelled points; needs matplotlib."""
    path = check_plot_path(path)
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if not front.points:
        raise SpecError(f"plot: the front has no points to draw (status {front.status})")
    first, second = front.axes
    xs = front.values(first)
    ys = front.values(second)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    ax.step(xs, ys, where="post", color="0.6", linewidth=1, zorder=1)
    accelerators = sorted({p.estimate.layout.accelerator for p in front.points if p.estimate})
    markers = "osD^v<>p*h"
    for i, name in enumerate(accelerators):
        idx = [j for j, p in enumerate(front.points)
               if p.estimate and p.estimate.layout.accelerator == name]
        ax.scatter([xs[j] for j in idx], [ys[j] for j in idx], marker=markers[i % 10],
                   s=36, zorder=2, label=name)
    for j, p in enumerate(front.points):
        assert p.estimate is not None
        ax.annotate(f"{p.estimate.layout.gpus:,}", (xs[j], ys[j]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7, color="0.3")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(AXIS_LABELS[first])
    ax.set_ylabel(AXIS_LABELS[second])
    if second == "cost":
        ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(title="accelerator (labels: count)", fontsize=8, title_fontsize=8)
    ax.set_title(title or f"Pareto front: {AXIS_LABELS[first]} vs {AXIS_LABELS[second]}"
                 f" ({front.status}, {len(front.points)} points)", fontsize=10)
    fig.savefig(path, dpi=150)
    return path


def _money(value: float, _pos: Any = None) -> str:
    if abs(value) >= 1e9:
        return f"${value / 1e9:.3g}B"
    if abs(value) >= 1e6:
        return f"${value / 1e6:.3g}M"
    if abs(value) >= 1e3:
        return f"${value / 1e3:.3g}k"
    return f"${value:.3g}"


__all__ = ["ParetoFront", "pareto", "plot_front"]
