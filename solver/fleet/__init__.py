"""``solver.fleet``: several training jobs on a mixed fleet over time, scheduled by CP-SAT.

Steps: each job's options on each accelerator type it may use (``candidates.py``: the Pareto
set of accelerator count and wall-clock days from the step model), then the schedule
(``model.py``: optional intervals, cumulative capacity, rentals, lexicographic objectives),
then the judge (``check.py``: capacity at every event day, the step model again). The file
format is ``spec.py``'s, the output ``render.py``'s; ``docs/fleet.md`` explains them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

from solver.errors import SpecError
from solver.fleet.candidates import Candidate, candidates
from solver.fleet.result import FleetPlan, Rental, ScheduledJob
from solver.fleet.spec import FleetJob, FleetSpec, Options, Pool, load
from solver.specs import Limits, TrainingJob

#: The tokens each job's options are evaluated at before scaling to its own (``job_candidates``).
REFERENCE_TOKENS = 1e12


def job_candidates(spec: FleetSpec, progress: Callable[[str], None] | None = None
                   ) -> dict[str, list[Candidate]]:
    """Every job's options over the fleet's types; jobs that differ only in their tokens are
    evaluated once: a layout's failure-free time is its step time x tokens / tokens per step,
    its wall-clock time that times a factor of the layout alone (Daly's, ``goodput``) and its
    energy proportional to it, so each option's days and energy scale with the tokens, and
    the fits, the Pareto order and the thinning do not change."""
    say = progress or (lambda message: None)
    tasks: dict[tuple[object, ...], tuple[TrainingJob, Limits, str, int, int]] = {}
    wanted: dict[str, list[tuple[tuple[object, ...], float]]] = {}
    for job in spec.jobs:
        reference = dataclasses.replace(job.job, tokens=REFERENCE_TOKENS)
        wanted[job.name] = []
        for name in spec.allowed(job):
            most = spec.pool(name).most
            key = (repr(reference), repr(job.limits), name, most, spec.options.candidates)
            tasks.setdefault(key, (reference, job.limits, name, most, spec.options.candidates))
            wanted[job.name].append((key, job.job.tokens / REFERENCE_TOKENS))
    say(f"evaluating {len(tasks)} job and accelerator pairs")
    found = dict(zip(tasks, _evaluate(list(tasks.values()), spec.options.workers),
                     strict=True))
    out: dict[str, list[Candidate]] = {}
    for job_name, keys in wanted.items():
        out[job_name] = [dataclasses.replace(c, wall_clock_days=c.wall_clock_days * scale,
                                             energy_mwh=c.energy_mwh * scale)
                         for key, scale in keys for c in found[key]]
        say(f"{job_name}: {len(out[job_name])} options")
    return out


def _evaluate(tasks: list[tuple[TrainingJob, Limits, str, int, int]], workers: int
              ) -> list[list[Candidate]]:
    """``candidates`` of each task, on up to ``workers`` processes (fresh interpreters:
    ``spawn``, so no thread of this one is forked)."""
    if workers <= 1 or len(tasks) <= 1:
        return [candidates(*t) for t in tasks]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(min(workers, len(tasks)),
                                                mp_context=context) as pool:
        return list(pool.map(_candidates_of, tasks))


def _candidates_of(task: tuple[TrainingJob, Limits, str, int, int]) -> list[Candidate]:
    return candidates(*task)


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
