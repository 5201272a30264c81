"""A fleet plan for people: one row per job, one row per accelerator type (used and rented over
time), and the Gantt chart (matplotlib, the ``plot`` extra, as ``solver.pareto``'s plot)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from solver.errors import SpecError
from solver.fleet.check import event_days, owned_on, rented_on, used_on
from solver.fleet.result import OBJECTIVE_UNITS, FleetPlan, ScheduledJob
from solver.fleet.spec import FleetSpec
from solver.pareto import check_plot_path, require_matplotlib


def layout_text(j: ScheduledJob) -> str:
    """``TP2 PP1 DP32 mb1 Z1``: the parallel sizes above 1 after TP, PP, DP."""
    x = j.candidate.layout
    if x is None:
        return "-"
    parts = [f"TP{x.tp}", f"PP{x.pp}", f"DP{x.dp}"]
    parts += [f"{n}{v}" for n, v in (("CP", x.cp), ("EP", x.ep), ("VP", x.vp)) if v > 1]
    parts.append(f"mb{x.micro_batch} Z{x.zero_stage}")
    if x.recompute != "none":
        parts.append(x.recompute)
    return " ".join(parts)


def job_rows(plan: FleetPlan) -> list[list[str]]:
    head = ["job", "accelerator", "count", "layout", "start day", "end day", "days",
            "days late"]
    rows = [head]
    for j in sorted(plan.jobs, key=lambda j: (j.start_day, j.name)):
        rows.append([j.name, j.candidate.accelerator, f"{j.candidate.gpus:,}", layout_text(j),
                     f"{j.start_day:g}", f"{j.end_day:g}", f"{j.candidate.wall_clock_days:.1f}",
                     f"{j.days_late:g}" if j.days_late else "-"])
    return rows


def type_rows(spec: FleetSpec, plan: FleetPlan) -> list[list[str]]:
    """Per type, each stretch of days over which use, ownership or rental is constant."""
    rows = [["accelerator", "from day", "to day", "in use", "owned", "rented"]]
    days = event_days(spec, plan)
    for pool in spec.pools:
        name = pool.accelerator
        last: tuple[int, int, int] | None = None
        for a, b in zip(days, days[1:], strict=False):
            state = (used_on(plan, name, a), owned_on(spec, name, a), rented_on(plan, name, a))
            if state == (0, 0, 0):
                last = None
                continue
            if last == state:
                rows[-1][2] = f"{b:g}"
                continue
            rows.append([name, f"{a:g}", f"{b:g}", *(f"{v:,}" for v in state)])
            last = state
    return rows


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def text(spec: FleetSpec, plan: FleetPlan) -> str:
    """The whole report, as ``gpuplan fleet`` prints it."""
    out = [f"Status: {plan.status}"]
    if plan.jobs:
        values = ", ".join(f"{k} {plan.values[k]:,.6g} {OBJECTIVE_UNITS[k]}"
                           for k in plan.objective if k in plan.values)
        out.append(f"Objective (in order): {values}")
        gap = plan.gap()
        if gap:
            out.append(f"Gap: {gap:.2%} on the first objective not proven optimal")
        out += ["", _table(job_rows(plan)), "", _table(type_rows(spec, plan))]
        if plan.rented:
            total = sum(r.cost_usd for r in plan.rented)
            out.append(f"\nRented: ${total:,.0f} in all")
    out += [f"  {line}" for line in plan.explanation]
    out += [f"Note: {n}" for n in plan.notes]
    out.append(f"({plan.candidates:,} options; candidates {plan.candidates_s:.1f} s, schedule "
               f"{plan.solve_time_s:.1f} s)")
    return "\n".join(out)


def plot_gantt(plan: FleetPlan, path: str | Path, *, title: str | None = None,
               deadlines: Mapping[str, float] | None = None) -> Path:
    """One bar per job (from its start to its end day, labelled with the count), coloured by
    accelerator type; each job's deadline (``deadlines``, by job name) as a red tick."""
    path = check_plot_path(path)
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if not plan.jobs:
        raise SpecError(f"plot: the plan has no jobs to draw (status {plan.status})")
    jobs = sorted(plan.jobs, key=lambda j: (j.start_day, j.name), reverse=True)
    types = sorted({j.candidate.accelerator for j in jobs})
    colours = {t: f"C{i}" for i, t in enumerate(types)}
    fig = Figure(figsize=(9, 1.2 + 0.45 * len(jobs)), layout="constrained")
    ax = fig.subplots()
    for y, j in enumerate(jobs):
        c = j.candidate
        ax.barh(y, j.end_day - j.start_day, left=j.start_day, color=colours[c.accelerator],
                edgecolor="black", linewidth=0.5)
        ax.text(j.start_day + 0.3, y, f"{c.gpus:,}", va="center", fontsize=8,
                color="white")
        due = (deadlines or {}).get(j.name)
        if due is not None:
            ax.plot([due, due], [y - 0.4, y + 0.4], color="red", linewidth=1.5)
    ax.set_yticks(range(len(jobs)), [j.name for j in jobs])
    handles = [Patch(color=colours[t], label=t) for t in types]
    if deadlines:
        handles.append(Patch(color="red", label="deadline"))
    ax.set_xlabel("day")
    ax.grid(True, axis="x", linewidth=0.3, alpha=0.5)
    ax.legend(handles=handles, fontsize=8, loc="best", title="accelerator (labels: count)",
              title_fontsize=8)
    ax.set_title(title or f"Fleet schedule ({plan.status})", fontsize=10)
    fig.savefig(path, dpi=150)
    return path


__all__ = ["job_rows", "plot_gantt", "text", "type_rows"]
