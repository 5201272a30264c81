"""``solver.fleet``: several training jobs on a mixed fleet over time, scheduled by CP-SAT.

Steps: each job's options on each accelerator type it may use (``candidates.py``: the Pareto
set of accelerator count and wall-clock days from the step model), then the schedule
(``model.py``: optional intervals, cumulative capacity, rentals, lexicographic objectives),
then the judge (``check.py``: capacity at every event day, the step model again). The file
format is ``spec.py``'s, the output ``render.py``'s; ``docs/fleet.md`` explains them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from solver.errors import SpecError
from solver.fleet.candidates import Candidate, candidates
from solver.fleet.result import FleetPlan, Rental, ScheduledJob
from solver.fleet.spec import FleetJob, FleetSpec, Options, Pool, load


def job_candidates(spec: FleetSpec, progress: Callable[[str], None] | None = None
                   ) -> dict[str, list[Candidate]]:
    """Every job's options over the fleet's types; identical jobs are evaluated once."""
    say = progress or (lambda message: None)
    cache: dict[tuple[object, ...], list[Candidate]] = {}
    out: dict[str, list[Candidate]] = {}
    for job in spec.jobs:
        found: list[Candidate] = []
        for name in spec.allowed(job):
            pool = spec.pool(name)
            key = (repr(job.job), repr(job.limits), name, pool.most, spec.options.candidates)
            if key not in cache:
                cache[key] = candidates(job.job, job.limits, name, pool.most,
                                        spec.options.candidates)
            found += cache[key]
        say(f"{job.name}: {len(found)} options")
        out[job.name] = found
    return out


def fleet(spec: FleetSpec | str | Path, *, time_limit_s: float | None = None,
          workers: int | None = None,
          progress: Callable[[str], None] | None = None) -> FleetPlan:
    """Schedule a fleet (a ``FleetSpec`` or a fleet file's path): which job runs where, when,
    laid out how, and what to rent. ``time_limit_s`` and ``workers`` override the file's
    options; the time limit is the schedule's (the candidates' evaluation comes first)."""
    from solver.fleet import check, model

    if isinstance(spec, (str, Path)):
        spec = load(spec)
    if not isinstance(spec, FleetSpec):
        raise SpecError(f"spec: expected a FleetSpec or a fleet file, got {type(spec).__name__}")
    opts = spec.options
    if time_limit_s is not None:
        opts = dataclasses.replace(opts, time_limit_s=time_limit_s)
    if workers is not None:
        opts = dataclasses.replace(opts, workers=workers)
    if opts is not spec.options:
        spec = dataclasses.replace(spec, options=opts)
    started = time.perf_counter()
    cands = job_candidates(spec, progress)
    took = time.perf_counter() - started
    plan = model.schedule(spec, cands)
    if plan.jobs:
        plan = check.step_model(spec, plan)
    return dataclasses.replace(plan, candidates_s=took)


__all__ = ["Candidate", "FleetJob", "FleetPlan", "FleetSpec", "Options", "Pool", "Rental",
           "ScheduledJob", "fleet", "job_candidates", "load"]
