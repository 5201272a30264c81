"""Each job's options on each accelerator type: the Pareto set of (accelerator count,
wall-clock days) over the layouts that fit, from the same enumeration and pruning as ``solve``
(``solver.search.rows``: ``build_rows`` evaluates every layout with the step model,
``pareto_keep`` keeps the first Pareto layer of (count, training time)).

Wall-clock days (failures counted, ``Estimate.wall_clock_days``) are what a schedule holds the
accelerators for, so the front is re-taken on them. When it has more than ``limit`` points,
``limit`` of them are kept, spread evenly in log(count), the fewest and the most always among
them: the schedule then chooses among a few dozen options per job, not every layout.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from solver import catalog, costs, launchers
from solver.estimate import estimate_at
from solver.search.rows import build_rows, pareto_keep
from solver.search.table import feasible
from solver.specs import Layout, Limits, TrainingJob
from solver.stepmodel.arrays import HardwareTable


@dataclass(frozen=True)
class Candidate:
    """One way to run a job: ``gpus`` accelerators of one type, laid out as ``layout``, for
    ``wall_clock_days`` (the step model's estimate, failures counted)."""

    accelerator: str
    gpus: int
    wall_clock_days: float
    energy_mwh: float = 0.0
    layout: Layout | None = None
    global_batch: int = 0


def front(points: list[Candidate], limit: int) -> list[Candidate]:
    """The Pareto set of (gpus, wall-clock days), fewest accelerators first, thinned to at
    most ``limit`` points evenly spread in log(gpus) (both ends kept)."""
    kept: list[Candidate] = []
    for c in sorted(points, key=lambda c: (c.gpus, c.wall_clock_days)):
        if not kept or c.wall_clock_days < kept[-1].wall_clock_days:
            if kept and kept[-1].gpus == c.gpus:
                continue
            kept.append(c)
    if len(kept) <= limit:
        return kept
    if limit == 1:
        return [kept[-1]]
    logs = np.log([c.gpus for c in kept])
    targets = np.linspace(logs[0], logs[-1], limit)
    chosen = sorted({int(np.argmin(np.abs(logs - t))) for t in targets})
    return [kept[i] for i in chosen]


def candidates(job: TrainingJob, limits: Limits, accelerator: str, max_gpus: int,
               limit: int) -> list[Candidate]:
    """``job``'s options on ``accelerator`` with at most ``max_gpus`` of them (and within the
    job's own ``limits``: its cap, fixed layout fields and launcher, as in ``solve``); empty
    when no layout fits."""
    acc = catalog.accelerator(accelerator)
    if limits.launcher is not None and not launchers.runnable_accelerators(
            limits.launcher, job, [acc])[0]:
        return []  # the job's launcher cannot run it on this type
    cap = min(max_gpus, limits.max_gpus) if limits.max_gpus is not None else max_gpus
    if cap < 1:
        return []
    bounded = dataclasses.replace(limits, accelerators=(acc.name,), max_gpus=cap,
                                  deadline_days=None, budget_usd=None)
    basis = costs.resolve()
    hw = HardwareTable.build([acc], job.precision, basis)
    rows = build_rows(job, [acc], bounded, hw, keep_layers=1)
    kept = rows.take(pareto_keep(rows, 1))
    ok = np.flatnonzero(feasible(kept) & np.isfinite(kept.result.wall_s))
    points = []
    for i in ok:
        est = estimate_at(kept.result, int(i), (acc.name,))
        wall = float(kept.result.wall_clock_days[i])
        energy = float(kept.result.energy_mwh[i])
        points.append(Candidate(accelerator=acc.name, gpus=int(kept.result.gpus[i]),
                                wall_clock_days=wall,
                                energy_mwh=energy if math.isfinite(energy) else 0.0,
                                layout=est.layout,
                                global_batch=int(kept.result.global_batch[i])))
    return front(points, limit)


__all__ = ["Candidate", "candidates", "front"]
