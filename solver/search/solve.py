"""``solver.solve``: the best layout for a job under limits, proven optimal where it can be.

Steps: numpy enumerates and evaluates every row (``rows.py``), prunes dominated ones, ranks
the rest by the objective; CP-SAT picks the best row under the limit families (``cpsat.py``);
the step model re-evaluates the pick through ``solver.evaluate`` (the judge) and every limit
is checked again. An infeasible question is re-solved over a relaxed space with the families
as assumptions, and the conflicting ones are explained (``explain.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from solver import catalog, costs, evaluation, launchers
from solver.costs import CostBasis, CostModel
from solver.errors import SpecError
from solver.estimate import Estimate, estimate_at
from solver.plan import OBJECTIVES, Plan
from solver.question import question_dict
from solver.search import cpsat, explain
from solver.search.rows import build_rows, canonical_key, pareto_keep, shape_key
from solver.search.table import FAMILIES, Rows, feasible, objective_values
from solver.specs import Accelerator, Limits, TrainingJob
from solver.stepmodel.arrays import HardwareTable
from solver.stepmodel.calibration import DEFAULT_CALIBRATION, Calibration
from solver.validate import solve_options

log = logging.getLogger(__name__)

#: Secondary objectives that break ties, documented in docs/solver.md.
TIE_BREAKS = {"time": ("cost", "gpus"), "cost": ("time", "gpus"), "gpus": ("time", "cost"),
              "energy": ("time", "gpus")}


def select_accelerators(limits: Limits, objective: str, basis: CostBasis | None = None
                        ) -> tuple[list[Accelerator], list[str]]:
    """The candidate accelerators, and notes on those left out for lack of data.

    ``basis`` prices them (default: the ``cloud`` cost model). Where a cost is needed (objective
    cost, a budget), accelerators it cannot price are left out; when none of the candidates has
    the figures the question needs, that is a ``SpecError`` saying what is missing
    (``costs.require_figures``).
    """
    basis = basis if basis is not None else costs.resolve()
    if limits.accelerators:
        chosen = {catalog.accelerator(n, field="accelerators").name: None
                  for n in limits.accelerators}
        accs = [catalog.accelerator(n) for n in chosen]
    else:
        accs = list(catalog.accelerators().values())
    notes = [basis.summary()] if basis.custom else []
    needs_price = objective == "cost" or limits.budget_usd is not None
    needs_power = objective == "energy"
    costs.require_figures(accs, basis, price=needs_price, power=needs_power)
    kept = []
    for acc in sorted(accs, key=lambda a: a.name):
        price = basis.price(acc)
        if needs_price and price.rate_usd_per_hour is None:
            notes.append(f"{acc.name}: left out, {price.why_not}")
        elif needs_power and acc.tdp_w is None:
            notes.append(f"{acc.name}: left out, {costs.no_power(acc)}")
        else:
            if basis.named and price.rate_usd_per_hour is None:
                notes.append(f"{acc.name}: no cost reported, {price.why_not}")
            kept.append(acc)
    return kept, notes


def rank_rows(rows: Rows, objective: str) -> np.ndarray:
    keys = [objective_values(rows, objective)]
    keys += [objective_values(rows, k) for k in TIE_BREAKS[objective]]
    keys.append(canonical_key(rows, np.arange(len(rows))).astype(float))
    return cpsat.objective_rank(keys)


#: Share of the time limit the step model may spend evaluating layouts; CP-SAT gets the rest
#: (at least MIN_CP_SAT_S).
EVALUATION_SHARE = 0.6
MIN_CP_SAT_S = 0.5


def _feasible_hint(rows: Rows, rank: np.ndarray) -> int | None:
    """The best-ranked row that breaks no limit: a solution CP-SAT can start from."""
    ok = feasible(rows)
    if not np.any(ok):
        return None
    return int(np.flatnonzero(ok)[np.argmin(rank[ok])])


def _judge(job: TrainingJob, rows: Rows, i: int, accs: dict[str, Accelerator],
           limits: Limits, calibration: Calibration, basis: CostBasis) -> Estimate:
    """Re-evaluate row ``i`` through ``solver.evaluate`` and check every limit."""
    names = sorted(accs)
    layout = estimate_at(rows.result, i, tuple(names)).layout
    gb = int(rows.result.global_batch[i])
    judged_job = dataclasses.replace(job, global_batch=gb)
    est = evaluation.evaluate(judged_job, layout, accelerator=accs[layout.accelerator],
                              calibration=calibration, cost_model=basis)
    broken = list(est.violations)
    if limits.gpus is not None and layout.gpus != limits.gpus:
        broken.append("gpus")
    if limits.max_gpus is not None and layout.gpus > limits.max_gpus:
        broken.append("max_gpus")
    judged = est.judged_days(limits.risk)  # wall-clock days: failures counted
    if limits.deadline_days is not None and not judged <= limits.deadline_days:
        broken.append("deadline")
    if limits.budget_usd is not None and not est.cost_usd <= limits.budget_usd:
        broken.append("budget")
    for key, value in limits.fixed.items():
        if getattr(layout, key) != value:
            broken.append(f"fixed {key}")
    if limits.launcher is not None:
        refused = launchers.why_not(limits.launcher, judged_job, layout,
                                    accs[layout.accelerator])
        if refused is not None:
            broken.append(f"launcher {limits.launcher}: {refused}")
    if broken or any(abs(mine - float(theirs[i])) > 1e-9 * max(1.0, mine) for mine, theirs in (
            (est.training_days, rows.result.training_days),
            (est.wall_clock_days, rows.result.wall_clock_days))):
        raise RuntimeError(f"gpuplan bug: the plan fails its own check: {broken}")
    return est


def solve(job: TrainingJob, limits: Limits | None = None, *, objective: str = "time",
          time_limit_s: float = 60.0, workers: int = 2, seed: int = 0, top: int = 1,
          calibration: Calibration = DEFAULT_CALIBRATION,
          progress: Callable[[str], None] | None = None,
          cost_model: str | CostModel | None = None,
          cost_params: Mapping[str, Any] | None = None) -> Plan:
    """Find the best layout of ``job`` within ``limits`` for ``objective``.

    ``objective``: time (training days), cost (USD), gpus (fewest accelerators), energy (MWh).
    ``cost_model`` (default ``cloud``) and ``cost_params`` price the plan, for the objective,
    the budget and the report alike (``solver.evaluate`` takes the same two).
    Returns a ``Plan`` whose status is optimal, feasible, infeasible or unknown, carrying the
    question it answers (``solver.question``).
    """
    plan = _search(job, limits, objective=objective, time_limit_s=time_limit_s,
                   workers=workers, seed=seed, top=top, calibration=calibration,
                   progress=progress, cost_model=cost_model, cost_params=cost_params)
    options = {"time_limit_s": time_limit_s, "top": top, "workers": workers, "seed": seed}
    return dataclasses.replace(plan, question=question_dict(
        job, limits or Limits(), objective=objective, cost_model=cost_model,
        cost_params=cost_params, options=options))


def _candidates(job: TrainingJob, limits: Limits, objective: str, basis: CostBasis
                ) -> tuple[list[Accelerator], list[str]]:
    """The accelerators the question may use (priced, powered, runnable by its launcher) and
    the notes on those left out."""
    accs, notes = select_accelerators(limits, objective, basis)
    if limits.launcher is not None:
        accs, left = launchers.runnable_accelerators(limits.launcher, job, accs)
        if limits.accelerators and left and not accs:  # every accelerator named is refused
            raise SpecError(next(iter(left.values())).replace("accelerator:", "accelerators:",
                                                              1))
        notes.append(launchers.search_note(limits.launcher, job, sorted(left)))
    return accs, notes


def _next_shapes(built: cpsat.Model, kept: Rows, chosen: int, count: int, stop_at: float,
                 workers: int, seed: int) -> list[int]:
    """``--top``: CP-SAT's best row among the shapes (``rows.shape_key``) not yet listed,
    ``count`` times; every row of a listed shape is excluded."""
    keys = shape_key(kept.x)
    excluded = np.flatnonzero(keys == keys[chosen])
    found: list[int] = []
    for _ in range(count):
        remaining = max(MIN_CP_SAT_S, stop_at - time.perf_counter())
        more = cpsat.solve(built, enforced=FAMILIES, time_limit_s=remaining, workers=workers,
                           seed=seed, exclude=excluded.tolist())
        if more.chosen is None:
            break
        excluded = np.union1d(excluded, np.flatnonzero(keys == keys[more.chosen]))
        found.append(more.chosen)
    return found


def _search(job: TrainingJob, limits: Limits | None, *, objective: str, time_limit_s: float,
            workers: int, seed: int, top: int, calibration: Calibration,
            progress: Callable[[str], None] | None,
            cost_model: str | CostModel | CostBasis | None,
            cost_params: Mapping[str, Any] | None, explain_infeasible: bool = True) -> Plan:
    """``solve`` without the question (and, for the explanation's own re-solves, without
    explaining an infeasible answer)."""
    started = time.perf_counter()
    limits = limits or Limits()
    say = progress or (lambda message: None)
    if not isinstance(job, TrainingJob):
        raise SpecError(f"job: expected a TrainingJob, got {type(job).__name__}")
    if not isinstance(limits, Limits):
        raise SpecError(f"limits: expected a Limits, got {type(limits).__name__}")
    if objective not in OBJECTIVES:
        raise SpecError(f"objective: expected one of {'|'.join(OBJECTIVES)}, got {objective!r}")
    time_limit_s, workers, seed, top = solve_options(time_limit_s, workers, seed, top)
    if limits.launcher is not None:  # a fixed field or the job the launcher cannot run
        launchers.check_fixed(limits.launcher, job, limits.fixed)
    basis = costs.resolve(cost_model, cost_params)
    accs, notes = _candidates(job, limits, objective, basis)
    by_name = {a.name: a for a in accs}
    hw = HardwareTable.build(accs, job.precision, basis)
    distinct = top > 1  # --top: the best of each of ``top`` shapes (``rows.shape_key``)
    rows = build_rows(job, accs, limits, hw, objective=objective, keep_layers=top,
                      stop_at=started + EVALUATION_SHARE * time_limit_s,
                      calibration=calibration, distinct=distinct) if accs else None
    evaluated = rows.evaluated if rows is not None else 0
    if rows is not None and len(rows):
        keep = pareto_keep(rows, 1, distinct=distinct)
        kept = rows.take(keep)
        say(f"evaluated {evaluated:,} layouts in {time.perf_counter() - started:.1f} s; "
            f"CP-SAT chooses among {len(kept):,}")
        rank = rank_rows(kept, objective)
        built = cpsat.build(kept, rank, limits, fixed=limits.fixed)
        remaining = max(MIN_CP_SAT_S, time_limit_s - (time.perf_counter() - started))
        outcome = cpsat.solve(built, enforced=FAMILIES, time_limit_s=remaining,
                              workers=workers, seed=seed, hint=_feasible_hint(kept, rank))
        if outcome.status == "optimal" and not rows.complete:
            outcome = dataclasses.replace(outcome, status="feasible")
            notes.append(f"time limit: {evaluated:,} layouts evaluated before the limit; the "
                         "plan is the best among them, not proven optimal")
        log.info("cp-sat %s over %d rows (%d evaluated)", outcome.status, len(kept), evaluated)
        if outcome.chosen is not None:
            best = _judge(job, kept, outcome.chosen, by_name, limits, calibration, basis)
            say(f"{outcome.status}: {best.layout.gpus:,} x {best.layout.accelerator}, "
                f"{best.wall_clock_days:,.1f} days (bound: rank {outcome.best_bound:.0f} of "
                f"{len(kept):,})")
            more = _next_shapes(built, kept, outcome.chosen, top - 1,
                                started + time_limit_s, workers, seed)
            alternatives = [_judge(job, kept, i, by_name, limits, calibration, basis)
                            for i in more]
            return Plan(
                status=outcome.status, objective=objective, estimate=best,
                explanation=tuple(explain.why_this_plan(best, limits, objective)),
                solve_time_s=time.perf_counter() - started, alternatives=tuple(alternatives),
                candidates=evaluated, rows=len(kept), notes=tuple(notes))
        if outcome.status == "unknown" or not rows.complete:
            return Plan(status="unknown", objective=objective, estimate=None,
                        explanation=("no plan found within the time limit",),
                        solve_time_s=time.perf_counter() - started, candidates=evaluated,
                        rows=len(kept), notes=tuple(notes))
    if rows is not None and not rows.complete:
        # The time limit stopped the evaluation before any layout was left: nothing is proven.
        return Plan(status="unknown", objective=objective, estimate=None,
                    explanation=("no plan found within the time limit",),
                    solve_time_s=time.perf_counter() - started, candidates=evaluated, rows=0,
                    notes=tuple(notes))
    if not explain_infeasible:
        return Plan(status="infeasible", objective=objective, estimate=None, explanation=(),
                    solve_time_s=time.perf_counter() - started, candidates=evaluated, rows=0)
    say("no plan satisfies every limit; finding which limits conflict")
    reasons = _conflicts(job, limits, accs, hw, basis, calibration, workers, seed,
                         started + time_limit_s, started + EVALUATION_SHARE * time_limit_s)
    return Plan(status="infeasible", objective=objective, estimate=None,
                explanation=tuple(reasons + notes), solve_time_s=time.perf_counter() - started,
                candidates=evaluated, rows=0, notes=tuple(notes))


def _conflicts(job: TrainingJob, limits: Limits, accs: list[Accelerator], hw: HardwareTable,
               basis: CostBasis, calibration: Calibration, workers: int, seed: int,
               stop_at: float, evaluate_until: float) -> list[str]:
    """``explain.infeasible`` with the search itself answering its relaxed questions (never
    explaining them in turn) and every layout within a GPU count evaluated for memory."""

    def resolve(relaxed: Limits, goal: str) -> Plan:
        left = max(MIN_CP_SAT_S, stop_at - time.perf_counter())
        return _search(job, relaxed, objective=goal, time_limit_s=left, workers=workers,
                       seed=seed, top=1, calibration=calibration, progress=None,
                       cost_model=basis, cost_params=None, explain_infeasible=False)

    def within(relaxed: Limits) -> Rows | None:
        return build_rows(job, accs, relaxed, hw, keep_layers=1, calibration=calibration,
                          stop_at=evaluate_until) if accs else None

    return explain.infeasible(job, limits, hw.names, resolve, within)
