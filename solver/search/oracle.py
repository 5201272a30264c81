"""Brute force over the same space, for tests and benchmarks: the optimiser's referee.

Unlike the solver it keeps the dominated ZeRO-0 shapes, every tp dividing the model's widths
and every cp dividing the sequence, every recomputation mask as a layout of its own (the
solver chooses among them per row), every integer dp (no grid) and every micro-batch count in
the token range (not only the largest that fits), evaluates them all with the step model and
takes the best feasible one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from solver.search.rows import DEFAULT_MAX_GPUS, best_per_key, shape_key
from solver.search.space import Shapes, enumerate_shapes, search_masks
from solver.search.table import deadline_days, fixed_violation
from solver.specs import Accelerator, Limits, TrainingJob
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.evaluate import StepResult, evaluate_arrays
from solver.stepmodel.pipeline import schedule_rules


@dataclass(frozen=True)
class OracleAnswer:
    feasible: bool
    value: float  # the objective's value of the best layout (inf when infeasible)
    layouts: int  # how many were evaluated
    #: the ``top`` best values of distinct shapes (``rows.shape_key``: accelerator, tp, pp,
    #: cp, ep), in order: what ``--top`` must list
    top_values: tuple[float, ...] = ()


def objective_value(r: StepResult, objective: str) -> np.ndarray:
    """The objective of each layout: time is wall-clock time (failures counted), as in the
    search (``table.objective_values``), computed independently of it here."""
    values = {"time": r.wall_s, "cost": r.cost_usd, "gpus": r.gpus.astype(float),
              "energy": r.energy_mwh}[objective]
    return np.where(np.isfinite(values), values, np.inf)


def _items(shapes: Shapes, job: TrainingJob, limits: Limits, cap: int
           ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(shape, dp, nmb) of every layout, in blocks of shapes: every dp up to the GPU cap,
    and every micro-batch count (the global batch's, or each one in the token range)."""
    low, high = limits.tokens_per_step
    block = 2_000
    for start in range(0, len(shapes), block):
        s = np.arange(start, min(len(shapes), start + block))
        replica = shapes.tp[s] * shapes.pp[s] * shapes.cp[s]
        counts = np.maximum(0, cap // replica)
        idx = np.repeat(s, counts)
        dp = np.arange(idx.size) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        keep = (dp * shapes.cp[idx]) % shapes.ep[idx] == 0
        if limits.gpus is not None:
            keep &= shapes.tp[idx] * shapes.pp[idx] * shapes.cp[idx] * dp == limits.gpus
        mb = shapes.mb[idx]
        if job.global_batch:
            keep &= job.global_batch % (dp * mb) == 0
            idx, dp, mb = idx[keep], dp[keep], mb[keep]
            yield idx, dp, job.global_batch // (dp * mb)
            continue
        idx, dp, mb = idx[keep], dp[keep], mb[keep]
        per = job.seq_len * dp * mb
        first = np.maximum(1, -(-int(low) // per))
        many = np.maximum(0, int(high) // per + 1 - first)
        rows = np.repeat(np.arange(idx.size), many)
        nmb = np.arange(rows.size) - np.repeat(np.cumsum(many) - many, many) + first[rows]
        yield idx[rows], dp[rows], nmb


def brute_force(job: TrainingJob, accelerators: Sequence[Accelerator], limits: Limits,
                objective: str, *, chunk: int = 500_000, every_mask: bool = False,
                top: int = 1) -> OracleAnswer:
    """The best objective value over every layout (``docs/solver.md``, "The oracle").

    Recomputation ranges over the masks the search keeps (``space.recompute_masks``; the
    claim that the others are dominated is tested on its own), or with ``every_mask`` over
    every mask (one of each set with identical effects)."""
    hw = HardwareTable.build(accelerators, job.precision)
    cap = limits.gpus or limits.max_gpus or DEFAULT_MAX_GPUS
    shapes = enumerate_shapes(job, accelerators, limits.fixed, complete=True,
                              masks=search_masks(job, limits.fixed, complete=every_mask),
                              max_replica=cap)
    best, layouts = np.inf, 0
    keys, bests = np.zeros(0, np.int64), np.zeros(0)
    for idx_all, dp_all, nmb_all in _items(shapes, job, limits, cap):
        for start in range(0, idx_all.size, chunk):
            idx = idx_all[start:start + chunk]
            x = LayoutArrays(accel=shapes.accel[idx], tp=shapes.tp[idx], pp=shapes.pp[idx],
                             dp=dp_all[start:start + chunk], cp=shapes.cp[idx],
                             ep=shapes.ep[idx], vp=shapes.vp[idx], mb=shapes.mb[idx],
                             nmb=nmb_all[start:start + chunk], zero=shapes.zero[idx],
                             recompute=shapes.recompute[idx], schedule=shapes.schedule[idx],
                             split=shapes.split[idx])
            layouts += len(x)
            r = evaluate_arrays(job, x, hw)
            ok = (r.fits_memory & r.placeable & ~fixed_violation(x, limits.fixed)
                  & schedule_rules(x, x.nmb))
            if limits.max_gpus is not None:
                ok &= r.gpus <= limits.max_gpus
            with np.errstate(invalid="ignore"):
                if limits.deadline_days is not None:
                    ok &= deadline_days(r, job, limits, hw.families) <= limits.deadline_days
                if limits.budget_usd is not None:
                    ok &= r.cost_usd <= limits.budget_usd
            values = objective_value(r, objective)
            if np.any(ok):
                best = min(best, float(values[ok].min()))
                keys, bests = best_per_key(np.concatenate([keys, shape_key(x)[ok]]),
                                           np.concatenate([bests, values[ok]]))
    return OracleAnswer(bool(np.isfinite(best)), best, layouts,
                        tuple(float(v) for v in np.sort(bests)[:top]))
