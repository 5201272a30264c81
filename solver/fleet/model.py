"""The fleet schedule as a CP-SAT model (``docs/fleet.md``, "The model").

Time is an integer count of steps of ``resolution_days``. Rounding always goes against the
plan, so that no schedule the model accepts can break a limit in real days: a job's duration
rounds up, release days and the start of an owned pool round up, deadlines, the horizon and the
end of an owned pool round down.

Per job: one optional interval per candidate (all sharing the job's start and end), exactly one
present. Per accelerator type: one cumulative over the jobs' intervals against a constant
capacity ``owned + rent cap``, from which fixed "blocker" intervals take away, over each stretch
of time, what is neither owned then nor rented in that rental period; the rented count of each
period is an integer variable, paid for whole periods. The objectives are minimised one after
the other, each later one with the earlier ones held at their values (lexicographic).

An infeasible fleet is solved again with every job's release, hard deadline and horizon, and
each type's rental cap, as assumptions (the capacity beyond the cap and the time beyond the
horizon opened); CP-SAT's ``sufficient_assumptions_for_infeasibility`` names a set of them that
cannot hold together (as ``solver/search/cpsat.py`` does for ``solve``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from solver import cpsat_run
from solver.fleet.candidates import Candidate
from solver.fleet.clock import (
    Clock,
    owned_window,
    period_cost_usd,
    period_steps,
)
from solver.fleet.result import FleetPlan, Rental, ScheduledJob
from solver.fleet.spec import FleetJob, FleetSpec, Pool

STATUS = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible",
          cp_model.INFEASIBLE: "infeasible", cp_model.UNKNOWN: "unknown",
          cp_model.MODEL_INVALID: "invalid"}
#: Share of the time left that each later objective keeps back while one is minimised (a
#: stage that proves its optimum early hands the rest on).
LATER_SHARE = 0.15


# --------------------------------------------------------------------------------------------
# The model.


@dataclass
class _Built:
    model: cp_model.CpModel
    start: dict[str, cp_model.IntVar]
    end: dict[str, cp_model.IntVar]
    chosen: dict[str, list[cp_model.IntVar]]
    rent: dict[str, list[cp_model.IntVar]]  # per type, one per rental period
    terms: dict[str, cp_model.LinearExprT]
    assumptions: dict[str, cp_model.IntVar]  # limit text -> its literal (relaxed models)
    owners: dict[str, str]  # limit text -> the job it belongs to (none for a type's cap)
    horizon: int
    period: int


def _options(spec: FleetSpec, cands: Mapping[str, Sequence[Candidate]],
             clock: Clock) -> dict[str, list[tuple[Candidate, int]]]:
    return {j.name: [(c, clock.duration(c.wall_clock_days)) for c in cands[j.name]]
            for j in spec.jobs}


class _Builder:
    """The CP-SAT model under construction, and its assumptions when ``relaxed`` (each limit
    that can conflict, named as the file names it, with the job it belongs to)."""

    def __init__(self, relaxed: bool) -> None:
        self.m = cp_model.CpModel()
        self.relaxed = relaxed
        self.assumptions: dict[str, cp_model.IntVar] = {}
        self.owners: dict[str, str] = {}

    def limit(self, text: str, job: str | None = None) -> cp_model.IntVar | None:
        if not self.relaxed:
            return None
        lit = self.m.new_bool_var(text)
        self.assumptions[text] = lit
        if job is not None:
            self.owners[text] = job
        return lit

    def post(self, ct: cp_model.Constraint, lit: cp_model.IntVar | None) -> None:
        if lit is not None:
            ct.only_enforce_if(lit)


@dataclass
class _Jobs:
    """What the jobs put into the model: their start and end, their options' literals, their
    intervals and areas per type, and the objective terms they feed."""

    start: dict[str, cp_model.IntVar]
    end: dict[str, cp_model.IntVar]
    chosen: dict[str, list[cp_model.IntVar]]
    by_type: dict[str, list[tuple[cp_model.IntervalVar, int]]]
    area_terms: dict[str, list[tuple[int, cp_model.IntVar]]]
    tardy: list[cp_model.LinearExprT]
    energy: list[cp_model.LinearExprT]


def _add_jobs(bld: _Builder, spec: FleetSpec, options: Mapping[str, Sequence[tuple[
        Candidate, int]]], clock: Clock, horizon: int, top: int) -> _Jobs:
    """Per job: a start and end, one optional interval per option (exactly one present), its
    release, the horizon, and its deadline (hard: a constraint; soft: weighted lateness)."""
    m, post, limit = bld.m, bld.post, bld.limit
    out = _Jobs({}, {}, {}, {p.accelerator: [] for p in spec.pools},
                {p.accelerator: [] for p in spec.pools}, [], [])
    for job in spec.jobs:
        s = m.new_int_var(0, top, f"start[{job.name}]")
        e = m.new_int_var(0, top, f"end[{job.name}]")
        out.start[job.name], out.end[job.name] = s, e
        lits = []
        for k, (c, dur) in enumerate(options[job.name]):
            b = m.new_bool_var(f"use[{job.name},{k}]")
            interval = m.new_optional_interval_var(s, dur, e, b, f"run[{job.name},{k}]")
            out.by_type[c.accelerator].append((interval, c.gpus))
            out.area_terms[c.accelerator].append((c.gpus * dur, b))
            lits.append(b)
            out.energy.append(round(c.energy_mwh * 1000) * b)  # kWh
        m.add_exactly_one(lits)
        out.chosen[job.name] = lits
        release = clock.up(job.release_day)
        if release > 0:
            post(m.add(s >= release), limit(f"jobs.{job.name}.release_day = "
                                            f"{job.release_day:g}", job.name))
        post(m.add(e <= horizon), limit(f"options.horizon_days = {spec.options.horizon_days:g}"
                                        f" (jobs.{job.name} must end within it)", job.name))
        if job.deadline_day is not None:
            due = clock.down(job.deadline_day)
            if job.hard_deadline:
                post(m.add(e <= due), limit(f"jobs.{job.name}.deadline_day = "
                                            f"{job.deadline_day:g} (hard)", job.name))
            else:
                late = m.new_int_var(0, top, f"late[{job.name}]")
                m.add(late >= e - due)
                out.tardy.append(job.weight * late)
    return out


def _add_pool(bld: _Builder, spec: FleetSpec, pool: Pool, jobs: _Jobs,
              cands: Mapping[str, Sequence[Candidate]], clock: Clock, top: int, period: int
              ) -> tuple[list[cp_model.IntVar], list[cp_model.LinearExprT]]:
    """One accelerator type: its rentals per period (and their cost), the capacity over time
    (owned in its window plus rented, as blockers in a cumulative with the jobs' intervals)
    and the redundant area constraint. Returns the rental variables and cost terms."""
    m = bld.m
    demand_most = sum(max((c.gpus for c in cands[j.name] if c.accelerator
                           == pool.accelerator), default=0) for j in spec.jobs)
    rent_top = max(pool.rent_max, demand_most) if bld.relaxed else pool.rent_max
    capacity = pool.owned + rent_top
    periods = -(-top // period)
    r_vars = [m.new_int_var(0, rent_top, f"rent[{pool.accelerator},{p}]")
              for p in range(periods)]
    if bld.relaxed and rent_top > pool.rent_max:
        lit = bld.limit(f"fleet.{pool.accelerator}: owned = {pool.owned}, rent_max = "
                        f"{pool.rent_max}")
        for r in r_vars:
            bld.post(m.add(r <= pool.rent_max), lit)
    cents = round(period_cost_usd(pool, spec, clock) * 100)
    cost: list[cp_model.LinearExprT] = [cents * r for r in r_vars]
    first, last = owned_window(pool, clock)
    cuts = sorted({0, top, *(p * period for p in range(periods)),
                   *(t for t in (first, last) if 0 < t < top)})
    blockers: list[tuple[cp_model.IntervalVar, cp_model.LinearExprT]] = []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        owned = pool.owned if first <= lo < last else 0
        take = capacity - owned - r_vars[lo // period]
        if rent_top == 0 and owned == capacity:
            continue
        blockers.append((m.new_fixed_size_interval_var(lo, hi - lo, f"blk{lo}"), take))
    # Redundant, for the bounds: the jobs' accelerator-steps on this type fit in what is
    # owned and rented over the whole plan (the cumulative implies it; the LP sees it).
    area = sum(steps * lit for steps, lit in jobs.area_terms[pool.accelerator])
    owned_steps = max(0, min(last, top) - min(first, top)) * pool.owned
    m.add(area <= owned_steps + period * sum(r_vars))
    items = jobs.by_type[pool.accelerator] + blockers
    if items:
        m.add_cumulative([i for i, _ in items], [d for _, d in items], capacity)
    return r_vars, cost


def build(spec: FleetSpec, cands: Mapping[str, Sequence[Candidate]], clock: Clock, *,
          relaxed: bool = False) -> _Built:
    """The model; with ``relaxed`` every limit that can conflict is an assumption."""
    bld = _Builder(relaxed)
    horizon = clock.down(spec.options.horizon_days)
    options = _options(spec, cands, clock)
    longest = {n: max((d for _, d in opts), default=0) for n, opts in options.items()}
    top = horizon + sum(longest.values()) if relaxed else horizon
    period = period_steps(spec, clock)
    jobs = _add_jobs(bld, spec, options, clock, horizon, top)
    rent: dict[str, list[cp_model.IntVar]] = {}
    cost: list[cp_model.LinearExprT] = []
    for pool in spec.pools:
        rent[pool.accelerator], pool_cost = _add_pool(bld, spec, pool, jobs, cands, clock,
                                                      top, period)
        cost += pool_cost
    makespan = bld.m.new_int_var(0, top, "makespan")
    for e in jobs.end.values():
        bld.m.add(makespan >= e)
    terms: dict[str, cp_model.LinearExprT] = {
        "tardiness": sum(jobs.tardy), "makespan": makespan, "rental_cost": sum(cost),
        "energy": sum(jobs.energy)}
    return _Built(bld.m, jobs.start, jobs.end, jobs.chosen, rent, terms, bld.assumptions,
                  bld.owners, horizon, period)


def term_value(name: str, raw: float, clock: Clock) -> float:
    """An objective's integer value in its reported unit (``result.OBJECTIVE_UNITS``)."""
    if name in ("tardiness", "makespan"):
        return clock.days(1) * raw
    if name == "rental_cost":
        return raw / 100.0
    return raw / 1000.0  # kWh -> MWh


def _solver(time_limit_s: float, workers: int, seed: int) -> cp_model.CpSolver:
    s = cp_model.CpSolver()
    s.parameters.max_time_in_seconds = max(0.1, float(time_limit_s))
    s.parameters.num_workers = int(workers)
    s.parameters.random_seed = int(seed)
    return s


def schedule(spec: FleetSpec, cands: Mapping[str, Sequence[Candidate]], *,
             time_limit_s: float | None = None) -> FleetPlan:
    """Schedule ``spec``'s jobs over their ``cands``; the plan is checked (``check.py``)."""
    from solver.fleet import check

    started = time.perf_counter()
    opts = spec.options
    limit_s = opts.time_limit_s if time_limit_s is None else time_limit_s
    clock = Clock(opts.resolution_days)
    order = opts.objective
    count = sum(len(cands[j.name]) for j in spec.jobs)
    empty = [j.name for j in spec.jobs if not cands[j.name]]
    if empty:
        why = [f"jobs.{n}: no layout fits on {', '.join(spec.allowed(spec_job(spec, n)))} "
               "within the fleet's accelerators (owned + rent_max) and the job's limits"
               for n in empty]
        return FleetPlan("infeasible", order, {}, {}, explanation=tuple(why), candidates=count,
                         solve_time_s=time.perf_counter() - started)
    built = build(spec, cands, clock)
    values: dict[str, float] = {}
    bounds: dict[str, float] = {}
    statuses: list[str] = []
    solution: dict[cp_model.IntVar, int] | None = None
    hint_vars = [*built.start.values(), *(b for bs in built.chosen.values() for b in bs)]
    for k, name in enumerate(order):
        left = limit_s - (time.perf_counter() - started)
        s = _solver(left * (1 - LATER_SHARE * (len(order) - 1 - k)), opts.workers, opts.seed)
        built.model.clear_hints()
        if solution is not None:
            for v in hint_vars:
                built.model.add_hint(v, solution[v])
        built.model.minimize(built.terms[name])
        code = cpsat_run.solve(s, built.model)
        status = STATUS.get(code, "unknown")
        if status == "invalid":
            raise RuntimeError(f"gpuplan bug: CP-SAT fleet model invalid: "
                               f"{built.model.validate()}")
        if status in ("infeasible", "unknown") and solution is None:
            if status == "infeasible":
                return FleetPlan("infeasible", order, {}, {}, explanation=tuple(
                    explain(spec, cands, clock, limit_s - (time.perf_counter() - started))),
                    candidates=count, solve_time_s=time.perf_counter() - started)
            return FleetPlan("unknown", order, {}, {}, explanation=(
                "no schedule found within the time limit",), candidates=count,
                solve_time_s=time.perf_counter() - started)
        if status not in ("optimal", "feasible"):  # a later stage ran out of time
            statuses.append("feasible")
            break
        raw = int(round(s.objective_value))
        values[name] = term_value(name, raw, clock)
        bounds[name] = term_value(name, math.ceil(s.best_objective_bound - 1e-6), clock)
        statuses.append(status)
        solution = {v: int(s.value(v)) for v in hint_vars}
        solution.update({v: int(s.value(v)) for vs in built.rent.values() for v in vs})
        built.model.add(built.terms[name] <= raw)
    assert solution is not None
    notes = []
    if any(st != "optimal" for st in statuses) or len(statuses) < len(order):
        notes.append(f"time limit: the schedule is the best found in {limit_s:g} s, not "
                     "proven optimal (objective.bounds: the proven lower bounds)")
    plan = _plan(spec, cands, clock, built, solution, order, values, bounds,
                 "optimal" if all(st == "optimal" for st in statuses)
                 and len(statuses) == len(order) else "feasible", count, notes, started)
    check.capacity(spec, plan)
    return plan


def spec_job(spec: FleetSpec, name: str) -> FleetJob:
    return next(j for j in spec.jobs if j.name == name)


def _plan(spec: FleetSpec, cands: Mapping[str, Sequence[Candidate]], clock: Clock,
          built: _Built, sol: Mapping[cp_model.IntVar, int], order: tuple[str, ...],
          values: dict[str, float], bounds: dict[str, float], status: str, count: int,
          notes: list[str], started: float) -> FleetPlan:
    jobs = []
    for job in spec.jobs:
        k = next(i for i, b in enumerate(built.chosen[job.name]) if sol[b])
        c = cands[job.name][k]
        s = sol[built.start[job.name]]
        e = s + clock.duration(c.wall_clock_days)
        late = 0.0
        if job.deadline_day is not None:
            late = clock.days(max(0, e - clock.down(job.deadline_day)))
        jobs.append(ScheduledJob(job.name, c, clock.days(s), clock.days(e), late))
    rented = []
    for pool in spec.pools:
        for p, var in enumerate(built.rent[pool.accelerator]):
            n = sol[var]
            if n:
                a = p * built.period
                rented.append(Rental(pool.accelerator, clock.days(a),
                                     clock.days(a + built.period), n,
                                     n * period_cost_usd(pool, spec, clock)))
    return FleetPlan(status, order, values, bounds, tuple(jobs), tuple(rented),
                     notes=tuple(notes), candidates=count,
                     solve_time_s=time.perf_counter() - started)


def explain(spec: FleetSpec, cands: Mapping[str, Sequence[Candidate]], clock: Clock,
            time_limit_s: float) -> list[str]:
    """The limits that cannot all hold, found as assumptions of the relaxed model."""
    built = build(spec, cands, clock, relaxed=True)
    built.model.add_assumptions(list(built.assumptions.values()))
    s = _solver(max(1.0, time_limit_s), 1, spec.options.seed)
    code = cpsat_run.solve(s, built.model)
    if code != cp_model.INFEASIBLE:
        return ["no schedule meets every limit; no smaller conflict was found in the time "
                "left"]
    core = set(s.sufficient_assumptions_for_infeasibility())
    named = [text for text, lit in built.assumptions.items() if lit.index in core]
    if not named:
        return ["no schedule meets every limit, whatever the release days, deadlines, horizon "
                "and rentals"]
    jobs = [j.name for j in spec.jobs if j.name in {built.owners.get(n) for n in named}]
    head = (f"no schedule meets every limit: jobs {', '.join(jobs)} cannot all run within "
            "these limits together:" if jobs else
            "no schedule meets every limit; these limits conflict:")
    return [head, *(f"  {n}" for n in named)]


__all__ = ["Clock", "build", "explain", "schedule"]
