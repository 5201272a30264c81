"""Exact bounds that keep rows which cannot matter from ever being built.

Per shape, one evaluation at its largest dp with one micro-batch gives two lower bounds that
hold for every row of the shape, because of how the step model depends on dp and on the
micro-batch count m (``docs/solver.md``):
- memory never grows with dp (ZeRO shards) and never shrinks with m, so this memory is the
  shape's smallest: above capacity, no row of the shape fits;
- the matmul and memory-bound time of one micro-batch, ``t``, does not depend on dp or m, and a
  step takes at least m of them, so training takes at least ``tokens * t / (seq * mb * dp)``.
With a feasible incumbent (the K-th best of a few rows per shape), the time bound gives each
shape a smallest useful dp (objective time, and any deadline), the incumbent's GPU count a
largest one (objective gpus), and GPU-hours times the shape's cost (or energy) per GPU-hour a
floor on cost (or energy) that drops whole shapes. A row is only dropped when its bound is
strictly worse than the incumbent, so the optimum and its ties survive.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

import numpy as np

from solver.search.space import Shapes
from solver.stepmodel.evaluate import evaluate_arrays

if TYPE_CHECKING:
    from solver.search.rows import Question

SLACK = 1e-9  # relative: float noise must never turn a tie into a cut
#: Shapes sampled (those with the best bounds) to find the incumbent.
INCUMBENT_SHAPES = 2_000


def smallest_dp(seconds_at_dp1: np.ndarray, bubble_floor: np.ndarray, limit_s: float,
                dp_max: np.ndarray) -> np.ndarray:
    """Smallest dp whose training-time floor ``a/dp + b`` is within ``limit_s``
    (``dp_max + 1`` when none is)."""
    room = limit_s - bubble_floor
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.ceil(seconds_at_dp1 / room * (1 - SLACK))
    need = np.where(room > 0, need, np.inf)
    return np.minimum(need, dp_max + 1).astype(np.int64)


def _take(shapes: Shapes, keep: np.ndarray) -> Shapes:
    return Shapes(*(getattr(shapes, f.name)[keep] for f in fields(shapes)))


def tighten(q: Question, shapes: Shapes, dp_min: np.ndarray, dp_max: np.ndarray,
            objective: str | None, top: int) -> tuple[Shapes, np.ndarray, np.ndarray]:
    from solver.search.rows import _layouts, candidates, rows_for

    job, limits = q.job, q.limits
    alive = np.flatnonzero(dp_max >= 1)
    shapes, dp_min, dp_max = _take(shapes, alive), dp_min[alive], dp_max[alive]
    if len(shapes) == 0:
        return shapes, dp_min, dp_max
    everyone = np.arange(len(shapes))
    probe = evaluate_arrays(job, _layouts(shapes, everyone, dp_max, np.ones_like(dp_max)),
                            q.hw, q.calibration, q.js)
    fits = probe.memory.total <= probe.capacity_bytes
    per_mb = probe.time.compute + probe.time.memory_bound
    # tokens * t / (seq * mb): training seconds at dp = 1 (divide by dp for any other dp)
    seconds_at_dp1 = job.tokens * per_mb / (job.seq_len * shapes.mb) * (1 - SLACK)
    # The pipeline bubble adds (p-1)/v micro-batch times per step; a step holds at most
    # ``sequences_per_step / mb`` micro-batches over all dp, so whatever dp is, the bubble
    # adds at least seconds_at_dp1 * (p-1)/v * mb / sequences_per_step to training.
    sequences = job.global_batch or limits.tokens_per_step[1] / job.seq_len
    bubble_floor = seconds_at_dp1 * (shapes.pp - 1) / shapes.vp * shapes.mb / sequences
    replica = shapes.tp * shapes.pp * shapes.cp
    with np.errstate(invalid="ignore", divide="ignore"):
        cost_rate = probe.cost_usd / probe.gpu_hours
        energy_rate = probe.energy_mwh / probe.gpu_hours
    keep = fits.copy()
    if limits.deadline_days is not None:
        dp_min = np.maximum(dp_min, smallest_dp(seconds_at_dp1, bubble_floor,
                                                limits.deadline_days * 86_400.0, dp_max))
    # GPU-hours = replica * dp * time >= replica * (a + b * dp) / 3600 >= at the smallest dp.
    gpu_hours_floor = replica * (seconds_at_dp1 + bubble_floor * dp_min) / 3600.0
    if limits.budget_usd is not None:
        keep &= ~(cost_rate * gpu_hours_floor > limits.budget_usd)
    keep &= dp_min <= dp_max
    shapes, dp_min, dp_max = _take(shapes, keep), dp_min[keep], dp_max[keep]
    seconds_at_dp1, replica, bubble_floor = seconds_at_dp1[keep], replica[keep], \
        bubble_floor[keep]
    gpu_hours_floor = gpu_hours_floor[keep]
    cost_rate, energy_rate = cost_rate[keep], energy_rate[keep]
    if objective is None or len(shapes) == 0:
        return shapes, dp_min, dp_max

    # Incumbent: the largest and the smallest dp of the shapes whose bound is most promising.
    promise = {"time": seconds_at_dp1 / np.maximum(dp_max, 1),
               "gpus": (replica * dp_min).astype(float),
               "cost": cost_rate * gpu_hours_floor,
               "energy": energy_rate * gpu_hours_floor}[objective]
    promise = np.where(np.isfinite(promise), promise, np.inf)
    best = np.sort(np.argsort(promise, kind="stable")[:INCUMBENT_SHAPES])
    idx, dp = candidates(q, _take(shapes, best), dp_min[best], dp_max[best])
    idx = best[idx]
    if idx.size == 0:
        return shapes, dp_min, dp_max
    boundary = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]] | np.r_[idx[1:] != idx[:-1],
                                                                         True])
    sample = rows_for(q, shapes, idx[boundary], dp[boundary])
    ok = np.ones(len(sample), bool)
    for bad in sample.violates.values():
        ok &= ~bad
    r = sample.result
    values = {"time": r.training_s, "cost": r.cost_usd, "gpus": r.gpus.astype(float),
              "energy": r.energy_mwh}[objective][ok]
    values = np.sort(values[np.isfinite(values)])
    if values.size < top:
        return shapes, dp_min, dp_max
    incumbent = float(values[top - 1]) * (1 + SLACK)

    keep = np.ones(len(shapes), bool)
    if objective == "time":
        dp_min = np.maximum(dp_min, smallest_dp(seconds_at_dp1, bubble_floor, incumbent,
                                                dp_max))
    elif objective == "gpus":
        dp_max = np.minimum(dp_max, np.floor(incumbent / replica).astype(np.int64))
    elif objective == "cost":
        keep &= ~(cost_rate * gpu_hours_floor > incumbent)
    elif objective == "energy":
        keep &= ~(energy_rate * gpu_hours_floor > incumbent)
    keep &= dp_min <= dp_max
    return _take(shapes, keep), dp_min[keep], dp_max[keep]
