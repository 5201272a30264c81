"""What each row takes that is derived, not searched: the micro-batches per step (the largest
that fits when the solver chooses the global batch) and the recomputation (the fastest mask
that fits). Both choices are exact: at a fixed layout, accelerator and GPU count, training
time, cost and energy all fall as the micro-batch count grows (memory only grows), and every
objective and limit is monotone in the training time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from solver.layout_options import STANDALONE_BITS
from solver.search.blocks import Memory, evaluate, memory_check
from solver.search.space import Shapes
from solver.search.table import Question, Rows, concat, layouts_of, violations
from solver.stepmodel.arrays import LayoutArrays
from solver.stepmodel.pipeline import microbatch_grain, saturation, schedule_rules


def rows_for(q: Question, shapes: Shapes, idx: np.ndarray, dp: np.ndarray) -> Rows:
    """Evaluate the rows (shape ``idx``, ``dp``) under each recomputation mask of the
    question and keep, per row, the fastest mask that fits (the least memory where none
    does). At a fixed layout, GPU count and accelerator every objective and every limit is
    monotone in the training time, so no other mask can make the row better.

    Memory comes first (a third of a full evaluation): only the (row, mask) pairs that fit,
    and for a row where none fits the one with the least memory, are evaluated in full."""
    idx, dp = _schedulable(q, shapes, idx, dp)
    n = idx.size
    nmb, mem = _microbatches_and_memory(q, shapes, idx, dp, q.masks[0])
    over = np.flatnonzero(~mem.fits)
    if len(q.masks) == 1 or over.size == 0:
        return _evaluated(q, shapes, idx, dp, nmb, q.masks[0], mem)
    # The first mask (none) repeats no work: where it fits it is the fastest. Only the rows it
    # leaves over memory try the others: first the masks that store least (full
    # recomputation, every module at once), and where even they do not fit, nothing else can.
    others = list(q.masks[1:])
    union = int(np.bitwise_or.reduce([m for m in q.masks if not m & STANDALONE_BITS]))
    lean = [m for m in others if m & STANDALONE_BITS or m == union]
    rest = [m for m in others if m not in lean]
    sub_idx, sub_dp = idx[over], dp[over]
    everywhere = np.arange(over.size)
    trials = [_Trial(q.masks[0], everywhere, nmb[over], mem.take(over))]
    # these rows do not fit without recomputation: most fit with none of the masks either
    trials += [_Trial(m, everywhere, *_microbatches_and_memory(q, shapes, sub_idx, sub_dp, m,
                                                               tight=True))
               for m in lean]
    if rest:
        fits_lean = np.zeros(over.size, bool)
        for trial in trials[1:]:
            fits_lean |= trial.mem.fits
        hope = np.flatnonzero(fits_lean)
        trials += [_Trial(m, hope, *_microbatches_and_memory(q, shapes, sub_idx[hope],
                                                             sub_dp[hope], m, tight=True))
                   for m in rest]
    fit = np.ones(n, bool)
    fit[over] = False
    first = _evaluated(q, shapes, idx[fit], dp[fit], nmb[fit], q.masks[0], mem.take(fit))
    parts, picked = _fastest_fitting(q, shapes, sub_idx, sub_dp, trials)
    order = np.empty(n, np.int64)
    order[fit] = np.arange(len(first))
    order[over] = len(first) + picked
    joined = concat([first, *parts]).take(order)
    return Rows(joined.result, joined.violates,
                evaluated=n + sum(t.at.size for t in trials[1:]))


@dataclass(frozen=True)
class _Trial:
    """One recomputation mask for the rows at positions ``at``: their micro-batches per step
    and memory."""

    mask: int
    at: np.ndarray
    nmb: np.ndarray
    mem: Memory


def _fastest_fitting(q: Question, shapes: Shapes, idx: np.ndarray, dp: np.ndarray,
                     trials: Sequence[_Trial]) -> tuple[list[Rows], np.ndarray]:
    """Per row (shape ``idx``, ``dp``), the fastest trial that fits and can be placed, else
    the one with the least memory (the first such trial on ties): the rows evaluated, and
    where each row's pick lies in them joined."""
    k = idx.size
    needed = np.full((len(trials), k), np.inf)
    fits = np.zeros((len(trials), k), bool)
    for t, trial in enumerate(trials):
        needed[t, trial.at] = trial.mem.total
        fits[t, trial.at] = trial.mem.fits
    seconds = np.full((len(trials), k), np.inf)
    where = np.full((len(trials), k), -1)
    parts: list[Rows] = []
    offset = 0

    def evaluate(t: int, sel: np.ndarray) -> None:  # trial t at its positions trial.at[sel]
        nonlocal offset
        if sel.size == 0:
            return
        trial = trials[t]
        at = trial.at[sel]
        part = _evaluated(q, shapes, idx[at], dp[at], trial.nmb[sel], trial.mask,
                          trial.mem.take(sel))
        r = part.result
        seconds[t, at] = np.where(r.fits_memory & r.placeable, r.training_s, np.inf)
        where[t, at] = offset + np.arange(at.size)
        offset += at.size
        parts.append(part)

    for t, trial in enumerate(trials):
        evaluate(t, np.flatnonzero(fits[t, trial.at]))
    choice = np.where(np.isfinite(seconds).any(axis=0), np.argmin(seconds, axis=0),
                      np.argmin(needed, axis=0))
    rows = np.arange(k)
    missing = where[choice, rows] < 0  # none fits: the least memory, not evaluated yet
    for t, trial in enumerate(trials):
        wanted = np.zeros(k, bool)
        wanted[rows[missing & (choice == t)]] = True
        evaluate(t, np.flatnonzero(wanted[trial.at]))
    return parts, where[choice, rows]


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


def _microbatches_and_memory(q: Question, shapes: Shapes, idx: np.ndarray, dp: np.ndarray,
                             mask: int, *, tight: bool = False) -> tuple[np.ndarray, Memory]:
    """The micro-batches per step of the rows (shape ``idx``, ``dp``; schedulable,
    ``_schedulable``) with recomputation ``mask``, and their memory (``tight``: see
    ``largest_fitting_m``)."""
    job = q.job
    if job.global_batch:
        nmb = job.global_batch // (dp * shapes.mb[idx])
        return nmb, memory_check(q, layouts_of(shapes, idx, dp, nmb, mask))
    lo, hi, step = _microbatch_range(q, shapes, idx, dp)
    probe = layouts_of(shapes, idx, dp, hi, mask)
    best, mem = largest_fitting_m(q, probe, lo, hi, step, tight=tight)
    return np.where(best >= lo, best, lo), mem  # none fits: the smallest, flagged


def _evaluated(q: Question, shapes: Shapes, idx: np.ndarray, dp: np.ndarray, nmb: np.ndarray,
               mask: int, mem: Memory) -> Rows:
    """The rows (shape ``idx``, ``dp``, ``nmb``) with recomputation ``mask`` and memory
    ``mem``, evaluated."""
    result = evaluate(q, layouts_of(shapes, idx, dp, nmb, mask), mem)
    return Rows(result, violations(result, q.limits, relaxed=q.relaxed, job=q.job,
                                   families=q.hw.families), evaluated=idx.size)


def largest_fitting_m(q: Question, x: LayoutArrays, low: np.ndarray, high: np.ndarray,
                      step: np.ndarray | None = None, *, tight: bool = False
                      ) -> tuple[np.ndarray, Memory]:
    """Largest ``m`` in ``[low, high]`` (multiples of ``step``, as ``low`` and ``high`` are)
    whose memory fits the capacity of each layout's accelerator (``low - 1`` if none), and
    the memory at that ``m`` (at ``low`` if none fits).

    Memory never decreases with ``m`` and stops growing once the pipeline's warm-up depth is
    in flight, so a vectorised bisection over at most that depth finds it; each round
    evaluates only the rows still undecided. ``high`` is tried first, or with ``tight`` (rows
    that seldom fit) ``low``: the answer is the same, only the evaluations differ.
    """
    step = np.ones_like(low) if step is None else step
    n = low.size
    capacity = q.hw.memory_bytes[x.accel]

    def at(m: np.ndarray, rows: np.ndarray) -> Memory:
        return memory_check(q, x if rows.size == n else x.take(rows), m[rows])

    if tight:
        mem = at(low, np.arange(n))
        rest = np.flatnonzero(mem.total <= capacity)
        answer = low - 1
        high_mem = at(high, rest)
        top = high_mem.total <= capacity[rest]
        answer[rest[top]] = high[rest[top]]
        mem.put(rest[top], high_mem, top)
        between = rest[~top]
    else:
        mem = at(high, np.arange(n))
        answer = np.where(mem.total <= capacity, high, low - 1)
        rest = np.flatnonzero(answer < low)
        mem.put(rest, at(low, rest))
        between = rest[mem.total[rest] <= capacity[rest]]
    # ``mem`` holds the memory at ``low`` where the bisection starts
    answer[between] = _bisect(q, x.take(between), capacity[between], low[between],
                              high[between], step[between], mem, between)
    return answer, mem


def _bisect(q: Question, sub: LayoutArrays, cap: np.ndarray, lo: np.ndarray, high: np.ndarray,
            grain: np.ndarray, mem: Memory, rows: np.ndarray) -> np.ndarray:
    """``largest_fitting_m`` where ``lo`` fits and ``high`` does not; ``mem`` holds at
    ``rows`` the memory at ``lo`` on entry and at the answer on return."""
    depth = -(-saturation(sub) // grain) * grain
    # invariant: a fits, b does not (b holds as much in flight as ``high``)
    a, b = lo.copy(), np.minimum(high, np.maximum(depth, lo))
    while True:
        open_ = np.flatnonzero(b - a > grain)
        if open_.size == 0:
            return a
        g = grain[open_]
        mid = (a[open_] // g + b[open_] // g) // 2 * g
        at_mid = memory_check(q, sub.take(open_), mid)
        ok = at_mid.total <= cap[open_]
        a[open_] = np.where(ok, mid, a[open_])
        b[open_] = np.where(ok, b[open_], mid)
        mem.put(rows[open_[ok]], at_mid, ok)
