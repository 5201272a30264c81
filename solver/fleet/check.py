"""The judge of a fleet schedule, independent of the CP-SAT model that made it (as ``solve``'s
plan is re-checked by ``solver.evaluate``):

- capacity: at every day on which a job starts or ends, an owned pool begins or ends, or a
  rental period begins, each accelerator type's jobs use at most what is owned then plus what
  is rented then, and no rental exceeds its cap (usage and capacity only change on those days,
  so checking them checks every day);
- times: each job starts on or after its release day, ends within the horizon and, with a hard
  deadline, by it; the days late it reports are its end less its deadline;
- the step model: each job's layout is evaluated again (``solver.evaluate``): it fits, its
  wall-clock days are the candidate's, and they fit between its start and end.

A schedule that fails is a bug in gpuplan: ``RuntimeError``.
"""

from __future__ import annotations

import dataclasses

from solver import catalog, evaluation
from solver.fleet.result import FleetPlan, ScheduledJob
from solver.fleet.spec import FleetSpec

#: Slack for sums of floating-point days.
EPS = 1e-9


def _bug(message: str) -> RuntimeError:
    return RuntimeError(f"gpuplan bug: the fleet schedule fails its own check: {message}")


def owned_on(spec: FleetSpec, accelerator: str, day: float) -> int:
    pool = spec.pool(accelerator)
    until = float("inf") if pool.until_day is None else pool.until_day
    return pool.owned if pool.from_day - EPS <= day < until - EPS else 0


def rented_on(plan: FleetPlan, accelerator: str, day: float) -> int:
    return sum(r.gpus for r in plan.rented if r.accelerator == accelerator
               and r.from_day - EPS <= day < r.until_day - EPS)


def used_on(plan: FleetPlan, accelerator: str, day: float) -> int:
    return sum(j.candidate.gpus for j in plan.jobs if j.candidate.accelerator == accelerator
               and j.start_day - EPS <= day < j.end_day - EPS)


def event_days(spec: FleetSpec, plan: FleetPlan) -> list[float]:
    days = {0.0, spec.options.horizon_days}
    for j in plan.jobs:
        days |= {j.start_day, j.end_day}
    for p in spec.pools:
        days.add(p.from_day)
        if p.until_day is not None:
            days.add(p.until_day)
    for r in plan.rented:
        days |= {r.from_day, r.until_day}
    return sorted(days)


def capacity(spec: FleetSpec, plan: FleetPlan) -> None:
    """Capacity and times (see the module's docstring); raises ``RuntimeError``."""
    horizon = spec.options.horizon_days
    for r in plan.rented:
        if r.gpus > spec.pool(r.accelerator).rent_max:
            raise _bug(f"{r.gpus} {r.accelerator} rented, over rent_max")
    for day in event_days(spec, plan):
        for pool in spec.pools:
            name = pool.accelerator
            used, have = used_on(plan, name, day), (owned_on(spec, name, day)
                                                    + rented_on(plan, name, day))
            if used > have:
                raise _bug(f"day {day:g}: {used} {name} in use, {have} owned or rented")
    for j in plan.jobs:
        job = next(f for f in spec.jobs if f.name == j.name)
        if j.candidate.accelerator not in spec.allowed(job):
            raise _bug(f"{j.name} runs on {j.candidate.accelerator}, which it may not use")
        if j.start_day < job.release_day - EPS:
            raise _bug(f"{j.name} starts on day {j.start_day:g}, before its release")
        if j.end_day > horizon + EPS:
            raise _bug(f"{j.name} ends on day {j.end_day:g}, after the horizon")
        if j.end_day - j.start_day < j.candidate.wall_clock_days - EPS:
            raise _bug(f"{j.name} holds its accelerators for less than its wall-clock days")
        late = 0.0 if job.deadline_day is None else max(0.0, j.end_day - job.deadline_day)
        if late > j.days_late + EPS:
            raise _bug(f"{j.name} reports {j.days_late:g} days late, is {late:g}")
        if job.hard_deadline and late > EPS:
            raise _bug(f"{j.name} ends after its hard deadline")


def step_model(spec: FleetSpec, plan: FleetPlan) -> FleetPlan:
    """Each job's layout re-evaluated by the step model (the plan then carries the
    estimates); raises ``RuntimeError`` when one disagrees with its candidate."""
    judged: list[ScheduledJob] = []
    for j in plan.jobs:
        c = j.candidate
        job = next(f for f in spec.jobs if f.name == j.name)
        if c.layout is None:
            raise _bug(f"{j.name}: the candidate has no layout")
        est = evaluation.evaluate(dataclasses.replace(job.job, global_batch=c.global_batch),
                                  c.layout, accelerator=catalog.accelerator(c.accelerator))
        if est.violations:
            raise _bug(f"{j.name}: {'; '.join(est.violations)}")
        if est.layout.gpus != c.gpus or abs(est.wall_clock_days - c.wall_clock_days) > (
                1e-9 * max(1.0, c.wall_clock_days)):
            raise _bug(f"{j.name}: the step model gives {est.layout.gpus} accelerators for "
                       f"{est.wall_clock_days:g} days, the candidate {c.gpus} for "
                       f"{c.wall_clock_days:g}")
        if est.wall_clock_days > j.end_day - j.start_day + EPS:
            raise _bug(f"{j.name}: {est.wall_clock_days:g} wall-clock days do not fit "
                       f"between day {j.start_day:g} and day {j.end_day:g}")
        judged.append(dataclasses.replace(j, estimate=est))
    return dataclasses.replace(plan, jobs=tuple(judged))


__all__ = ["capacity", "event_days", "step_model"]
