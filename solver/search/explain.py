"""Explanations in a person's terms: why a plan was chosen, or which limits conflict.

For an infeasible question, the limits a person set (fixed fields, the GPU count, the deadline,
the budget) are relaxed by re-solving: the search itself, with its exact bounds, answers each
relaxed question in about the time of a feasible one (the relaxed space is never enumerated).
Deletion-based minimisation (Junker's QuickXplain idea in its simplest, linear form) drops each
limit that the others still conflict without, leaving a minimal conflicting set; for each
limit in it, the best value the rest of that set allows says what would make the question
feasible: the fewest accelerators, the fastest plan, the cheapest plan. Memory and the
interconnect are physics, never relaxed: when no layout the search saw fits in memory, the
smallest footprint it saw is quoted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from solver.estimate import Estimate
from solver.search.rows import DEFAULT_MAX_GPUS
from solver.search.table import Rows
from solver.specs import Limits, TrainingJob
from solver.stepmodel.memory import GIB

if TYPE_CHECKING:
    from solver.plan import Plan

#: The limits a person sets, in the order they are relaxed, and the objective whose optimum
#: says what each would have to be.
RELAXABLE = (("fixed", "gpus"), ("gpus", "gpus"), ("deadline", "time"), ("budget", "cost"))
#: Re-solves ``(limits, objective)`` without explaining (``solve._search``).
Resolver = Callable[[Limits, str], "Plan"]


def why_this_plan(est: Estimate, limits: Limits, objective: str) -> list[str]:
    """The limits that bind (or nearly), and what the plan spends its time on."""
    lines = []
    used, cap = est.memory_gib_per_gpu, est.memory_capacity_gib
    lines.append(f"memory: {used:.1f} of {cap:.0f} GiB per accelerator")
    if limits.deadline_days is not None and limits.risk == "high":
        lines.append(f"deadline: {est.judged_days('high'):.1f} wall-clock days at the high "
                     f"end of the error band, of {limits.deadline_days:g}")
    elif limits.deadline_days is not None:
        lines.append(f"deadline: {est.wall_clock_days:.1f} of {limits.deadline_days:g} days "
                     "(wall-clock)")
    if limits.budget_usd is not None:
        lines.append(f"budget: ${est.cost_usd:,.0f} of ${limits.budget_usd:,.0f}")
    if limits.max_gpus is not None:
        lines.append(f"gpus: {est.layout.gpus:,} of at most {limits.max_gpus:,}")
    if limits.gpus is not None:
        lines.append(f"gpus: exactly {limits.gpus:,}")
    parts = sorted(est.time_breakdown_s.items(), key=lambda kv: -kv[1])
    total = sum(v for _, v in parts) or 1.0
    shares = ", ".join(f"{k} {v / total:.0%}" for k, v in parts[:3])
    lines.append(f"step time {est.step_time_s:.2f} s: {shares}")
    if limits.gpus is None and limits.max_gpus is None:
        lines.append(f"objective {objective}: every other layout of at most "
                     f"{DEFAULT_MAX_GPUS:,} accelerators (the search's cap when no GPU count "
                     "is given) is no better")
    else:
        lines.append(f"objective {objective}: every other layout in the search space is no "
                     "better")
    return lines


def _set(limits: Limits) -> list[str]:
    """The relaxable limits this question sets."""
    given = {"fixed": bool(limits.fixed),
             "gpus": limits.gpus is not None or limits.max_gpus is not None,
             "deadline": limits.deadline_days is not None,
             "budget": limits.budget_usd is not None}
    return [name for name, _ in RELAXABLE if given[name]]


def _only(limits: Limits, keep: Sequence[str]) -> Limits:
    """``limits`` with the relaxable limits outside ``keep`` dropped."""
    dropped: dict[str, object] = {}
    if "fixed" not in keep:
        dropped["fixed"] = {}
    if "gpus" not in keep:
        dropped.update(gpus=None, max_gpus=None)
    if "deadline" not in keep:
        dropped["deadline_days"] = None
    if "budget" not in keep:
        dropped["budget_usd"] = None
    return dataclasses.replace(limits, **dropped)  # type: ignore[arg-type]


def infeasible(job: TrainingJob, limits: Limits, names: Sequence[str], resolve: Resolver,
               within: Callable[[Limits], Rows | None]) -> list[str]:
    """Why no plan exists: a minimal set of conflicting limits and what each would have to be
    (given all the other limits set, and, when that is not enough or says less, given only the
    rest of the conflict), and, when the GPU count is in the conflict (or nothing else is),
    the smallest memory footprint of the layouts within the GPU count and fixed fields
    (``within`` evaluates them all)."""
    given = _set(limits)
    conflict = list(given)
    for name in list(conflict):  # deletion: keep a limit only if the rest do not conflict
        rest = [f for f in conflict if f != name]
        if resolve(_only(limits, rest), "gpus").estimate is None:
            conflict = rest
    lines: list[str] = []
    fewest = None
    for name, objective in RELAXABLE:
        if name not in conflict:
            continue
        others = [f for f in given if f != name]
        plan = resolve(_only(limits, others), objective)
        alone = [f for f in conflict if f != name]
        if alone != others:  # the conflict is smaller than what was set
            bare = resolve(_only(limits, alone), objective)
            plan = plan if plan.estimate is not None else bare
        else:
            bare = plan
        if name == "gpus":
            fewest = plan
        lines.append(_relief(name, plan, bare, limits, others, alone))
    physics = "gpus" in conflict or not conflict
    lines[:0] = _physics(within(_only(limits, ["fixed", "gpus"])) if physics else None, names,
                         fewest)
    if not lines:
        lines.append(f"shape: no layout of {job.model.name} on at most {DEFAULT_MAX_GPUS:,} "
                     "of these accelerators both satisfies the divisibility rules (heads, "
                     "layers, experts, sequence length, global batch) and fits in memory")
    return lines


def _physics(rows: Rows | None, names: Sequence[str], fewest: Plan | None) -> list[str]:
    """Memory and interconnect, quoted when no layout the search saw met them."""
    if rows is None or len(rows) == 0:
        return []
    r, lines = rows.result, []
    if not np.any(r.fits_memory):
        i = int(np.argmin(r.memory.total))
        text = (f"memory: the smallest footprint within the GPU count is "
                f"{r.memory.total[i] / GIB:,.0f} GiB per accelerator on "
                f"{names[int(rows.x.accel[i])]} ({r.capacity_bytes[i] / GIB:.0f} GiB "
                "available)")
        if fewest is not None and fewest.estimate is not None:
            text += (f"; a layout that fits needs at least {fewest.estimate.layout.gpus:,} "
                     "accelerators")
        lines.append(text)
    if not np.any(r.placeable):
        lines.append("interconnect: the layouts left need groups beyond the scale-up domain "
                     "on an accelerator whose scale-out bandwidth is not published")
    return lines


def _within(names: Sequence[str]) -> str:
    return f"within the other limits ({', '.join(names)})" if names else "with no other limit"


def _relief(name: str, plan: Plan, bare: Plan, limits: Limits, others: Sequence[str],
            alone: Sequence[str]) -> str:
    """What limit ``name`` would have to be: from ``plan``, the best the other limits allow,
    and from ``bare``, the best the rest of the minimal conflict allows when that is less."""
    e = plan.estimate
    if e is None:
        return f"{name}: conflicts with the other limits, and relaxing it alone is not enough"
    if name == "gpus":
        limit = (f"exactly {limits.gpus:,}" if limits.gpus is not None
                 else f"at most {limits.max_gpus:,}")
        if limits.gpus is not None and e.layout.gpus < limits.gpus:
            return (f"gpus: no layout of exactly {limits.gpus:,} accelerators meets the other "
                    "limits (the global batch and the model's shape cap the parallel "
                    f"degrees); the fewest that do: {e.layout.gpus:,}")
        return f"gpus: the other limits need at least {e.layout.gpus:,} accelerators " \
            f"(limit: {limit})"
    if name == "deadline":
        judged = (", judged at the high end of its error band" if limits.risk == "high"
                  else "")

        def days(p: Plan) -> float:
            assert p.estimate is not None
            return p.estimate.judged_days(limits.risk)

        text = f"deadline: the fastest plan {_within(others)} takes {days(plan):,.1f} days"
        if bare is not plan and bare.estimate is not None:
            text += f"; {_within(alone).removeprefix('within ')}: {days(bare):,.1f}"
        return text + f" (deadline: {limits.deadline_days:g} days{judged})"
    if name == "budget":
        text = f"budget: the cheapest plan {_within(others)} costs ${e.cost_usd:,.0f}"
        if bare is not plan and bare.estimate is not None:
            text += f"; {_within(alone).removeprefix('within ')}: ${bare.estimate.cost_usd:,.0f}"
        return text + f" (budget: ${limits.budget_usd:,.0f})"
    fixed = ", ".join(f"{k}={v}" for k, v in limits.fixed.items())
    return f"fixed: no layout with {fixed} meets the other limits; free these fields"
