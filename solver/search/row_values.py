"""What each row takes that is derived, not searched: the micro-batches per step (the largest
that fits when the solver chooses the global batch) and the recomputation (the fastest mask
that fits). Both choices are exact: at a fixed layout, accelerator and GPU count, training
time, cost and energy all fall as the micro-batch count grows (memory only grows), and every
objective and limit is monotone in the training time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from solver.layout_options import FULL_BIT
from solver.search.space import Shapes
from solver.search.table import Question, Rows, concat, layouts_of, violations
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.evaluate import evaluate_arrays
from solver.stepmodel.memory import memory
from solver.stepmodel.pipeline import microbatch_grain, saturation, schedule_rules
from solver.stepmodel.shape import JobShape


def rows_for(q: Question, shapes: Shapes, idx: np.ndarray, dp: np.ndarray) -> Rows:
    """Evaluate the rows (shape ``idx``, ``dp``) under each recomputation mask of the
    question and keep, per row, the fastest mask that fits (the least memory where none
    does). At a fixed layout, GPU count and accelerator every objective and every limit is
    monotone in the training time, so no other mask can make the row better."""
    idx, dp = _schedulable(q, shapes, idx, dp)
    first = _rows_with_mask(q, shapes, idx, dp, q.masks[0])
    n = len(first)
    if len(q.masks) == 1 or n == 0:
        return first
    # The first mask (none) repeats no work: where it fits it is the fastest. Only the rows it
    # leaves over memory try the others: first the masks that store least (full
    # recomputation, every module at once), and where even they do not fit, nothing else can.
    over = np.flatnonzero(~first.result.fits_memory)
    if over.size == 0:
        return first
    others = list(q.masks[1:])
    union = int(np.bitwise_or.reduce([m for m in q.masks if not m & FULL_BIT]))
    lean = [m for m in others if m & FULL_BIT or m == union]
    rest = [m for m in others if m not in lean]
    everywhere = np.arange(over.size)
    trials = [(first.take(over), everywhere)] + [
        (_rows_with_mask(q, shapes, idx[over], dp[over], m), everywhere) for m in lean]
    if rest:
        fits_lean = np.zeros(over.size, bool)
        for part, _ in trials[1:]:
            fits_lean |= part.result.fits_memory
        hope = np.flatnonzero(fits_lean)
        trials += [(_rows_with_mask(q, shapes, idx[over[hope]], dp[over[hope]], m), hope)
                   for m in rest]
    picked_over = _fastest_fitting(trials, over.size)
    order = np.arange(n)
    order[over] = n + np.arange(over.size)
    picked = concat([first, picked_over]).take(order)
    return Rows(picked.result, picked.violates,
                evaluated=n + sum(len(part) for part, _ in trials[1:]))


def _fastest_fitting(trials: Sequence[tuple[Rows, np.ndarray]], k: int) -> Rows:
    """Per row (of ``k``), the fastest trial that fits and can be placed, else the one with
    the least memory; a trial ``(rows, at)`` holds rows for the positions ``at`` only."""
    seconds = np.full((len(trials), k), np.inf)
    needed = np.full((len(trials), k), np.inf)
    where = np.full((len(trials), k), -1)
    offset = 0
    for t, (part, at) in enumerate(trials):
        r = part.result
        usable = r.fits_memory & r.placeable
        seconds[t, at] = np.where(usable, r.training_s, np.inf)
        needed[t, at] = r.memory.total
        where[t, at] = offset + np.arange(at.size)
        offset += at.size
    choice = np.where(np.isfinite(seconds).any(axis=0), np.argmin(seconds, axis=0),
                      np.argmin(needed, axis=0))
    joined = concat([part for part, _ in trials])
    return joined.take(where[choice, np.arange(k)])


def _microbatch_range(q: Question, shapes: Shapes, idx: np.ndarray, dp: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, step) of the micro-batch counts a row may take when the solver chooses the
    global batch: within the token range, on the schedule's grain (``microbatch_grain``)."""
    low_tokens, high_tokens = q.limits.tokens_per_step
    per_micro = q.job.seq_len * dp * shapes.mb[idx]
    lo = np.maximum(1, -(-int(low_tokens) // per_micro))
    hi = int(high_tokens) // per_micro
    step, least = microbatch_grain(layouts_of(shapes, idx, dp, hi))
    lo = -(-np.maximum(lo, least) // step) * step
    return lo, hi // step * step, step


def _schedulable(q: Question, shapes: Shapes, idx: np.ndarray, dp: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The rows whose schedule can run: a fixed global batch's micro-batch count meets the
    schedule's rule, or the token range holds a count on the schedule's grain."""
    if q.job.global_batch:
        nmb = q.job.global_batch // (dp * shapes.mb[idx])
        ok = schedule_rules(layouts_of(shapes, idx, dp, nmb), nmb)
    else:
        lo, hi, _ = _microbatch_range(q, shapes, idx, dp)
        ok = hi >= lo
    return idx[ok], dp[ok]


def _rows_with_mask(q: Question, shapes: Shapes, idx: np.ndarray, dp: np.ndarray, mask: int
                    ) -> Rows:
    """The rows (shape ``idx``, ``dp``; schedulable, ``_schedulable``) with recomputation
    ``mask``, deriving the micro-batches per step."""
    job, js, hw = q.job, q.js, q.hw
    if job.global_batch:
        nmb = job.global_batch // (dp * shapes.mb[idx])
    else:
        lo, hi, step = _microbatch_range(q, shapes, idx, dp)
        probe = layouts_of(shapes, idx, dp, hi, mask)
        best = largest_fitting_m(js, probe, hw, lo, hi, step)
        nmb = np.where(best >= lo, best, lo)  # none fits: keep the smallest, flagged below
    x = layouts_of(shapes, idx, dp, nmb, mask)
    result = evaluate_arrays(job, x, hw, q.calibration, js)
    return Rows(result, violations(result, q.limits, relaxed=q.relaxed), evaluated=len(x))


def largest_fitting_m(js: JobShape, x: LayoutArrays, hw: HardwareTable, low: np.ndarray,
                      high: np.ndarray, step: np.ndarray | None = None) -> np.ndarray:
    """Largest ``m`` in ``[low, high]`` (multiples of ``step``, as ``low`` and ``high`` are)
    whose memory fits the capacity of each layout's accelerator in ``hw`` (``low - 1`` if
    none).

    Memory never decreases with ``m`` and stops growing once the pipeline's warm-up depth is
    in flight, so a vectorised bisection over at most that depth finds it; each round
    evaluates only the rows still undecided.
    """
    step = np.ones_like(low) if step is None else step
    capacity = hw.memory_bytes[x.accel]
    answer = np.where(memory(js, x, high, hw).total <= capacity, high, low - 1)
    todo = np.flatnonzero(answer < low)
    if todo.size == 0:
        return answer
    sub = x.take(todo)
    lo, cap, grain = low[todo], capacity[todo], step[todo]
    depth = -(-saturation(sub) // grain) * grain
    hi = np.minimum(high[todo], np.maximum(depth, lo))  # constant memory from here on
    fits_lo = memory(js, sub, lo, hw).total <= cap
    keep = np.flatnonzero(fits_lo)
    todo, sub, a, b, cap = todo[keep], sub.take(keep), lo[keep], hi[keep], cap[keep]
    grain = grain[keep]
    # invariant: a fits, b does not (b holds as much in flight as ``high``)
    while True:
        open_ = np.flatnonzero(b - a > grain)
        if open_.size == 0:
            break
        g = grain[open_]
        mid = (a[open_] // g + b[open_] // g) // 2 * g
        ok = memory(js, sub.take(open_), mid, hw).total <= cap[open_]
        a[open_] = np.where(ok, mid, a[open_])
        b[open_] = np.where(ok, b[open_], mid)
    answer[todo] = a
    return answer
