"""Rows: shapes expanded over dp, evaluated by the step model, flagged and pruned.

Every row is one complete layout with its estimate. For each limit family a row either
satisfies it or not (``Rows.violates``); CP-SAT then picks one row under the families it is
asked to enforce. Pruning keeps, per accelerator and set of violated families, the rows on the
first K Pareto layers of (GPU count, training time): cost and energy are GPU count x time x a
per-accelerator rate, so every objective and every limit is monotone in those two, and a row
behind K others that are no worse on both can never be among the K best (exact dominance).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import numpy as np

from solver.launchers import dp_limit
from solver.layout_options import DEFAULT_MAX_GPUS
from solver.search.bounds import SLACK, Floors, take_shapes, tighten
from solver.search.row_values import rows_for
from solver.search.space import Shapes, dp_values, on_accelerators, search_masks, shape_block
from solver.search.table import (
    FAMILIES,
    Question,
    Rows,
    concat,
    feasible,
    objective_values,
)
from solver.specs import Accelerator, Limits, TrainingJob
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.calibration import DEFAULT_CALIBRATION, Calibration
from solver.stepmodel.evaluate import evaluate_arrays
from solver.stepmodel.shape import JobShape, job_shape


def _divisors(n: int) -> np.ndarray:
    small = np.arange(1, int(n**0.5) + 1)
    small = small[n % small == 0]
    return np.unique(np.concatenate([small, n // small]))


def _expand(shapes: Shapes, dp_lists: Mapping[int, np.ndarray], key: np.ndarray,
            dp_min: np.ndarray, dp_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shape index, dp) for every dp of the shape's list (``dp_lists[key]``) in
    [dp_min, dp_max]."""
    idx_parts, dp_parts = [], []
    for k, values in dp_lists.items():
        members = np.flatnonzero(key == k)
        if members.size == 0 or values.size == 0:
            continue
        first = np.searchsorted(values, dp_min[members], side="left")
        counts = np.maximum(0, np.searchsorted(values, dp_max[members], side="right") - first)
        idx = np.repeat(members, counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        offsets = np.arange(idx.size) - starts + np.repeat(first, counts)
        idx_parts.append(idx)
        dp_parts.append(values[offsets])
    if not idx_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(idx_parts), np.concatenate(dp_parts)


#: Rows evaluated per vectorised call (bounds the memory of one call to a few hundred MB).
CHUNK_ROWS = 200_000


def build_rows(job: TrainingJob, accelerators: Sequence[Accelerator], limits: Limits,
               hw: HardwareTable, *, relaxed: bool = False, objective: str | None = None,
               keep_layers: int | None = None, stop_at: float | None = None,
               calibration: Calibration = DEFAULT_CALIBRATION, distinct: bool = False) -> Rows:
    """Enumerate and evaluate the rows of a question.

    ``relaxed`` also keeps rows that break the fixed fields or the GPU-count limit (flagged),
    to explain an infeasible question. Otherwise, with an ``objective``, rows that cannot beat
    a feasible incumbent are never built (``bounds.py``: exact lower bounds per shape).
    ``keep_layers`` prunes each evaluated chunk to its first Pareto layers (exact, see
    ``pareto_keep``; with ``distinct``, per shape too, and the best-first search stops when the
    ``keep_layers``-th best distinct shape is found, ``--top``) so that large questions never
    hold every row at once. Chunks go from the
    most promising shapes to the least; past ``stop_at`` (a ``time.perf_counter()`` value) no
    further chunk is started and the rows are marked incomplete (the best-first search, with
    an ``objective``, first evaluates ``CHUNK_ROWS`` rows or finds a feasible one).
    """
    fixed = {} if relaxed else limits.fixed
    masks = tuple(search_masks(job, fixed, launcher=limits.launcher))
    q = Question(job, job_shape(job), limits, hw, calibration, relaxed, masks)
    cap = None if relaxed else (limits.gpus or limits.max_gpus)
    exact = None if relaxed else limits.gpus
    # Shapes carry the fastest mask (none, or the fixed one): the floors' time bound.
    block = shape_block(job, accelerators, limits.fixed, honour_fixed=not relaxed,
                        max_replica=cap, replica_divides=exact, masks=(min(masks),),
                        launcher=limits.launcher)
    if len(block) * len(accelerators) == 0:
        return _empty_rows(job, hw, q.js, calibration)
    floors, probed = None, True
    if relaxed:
        shapes = on_accelerators(block, len(accelerators))
        dp_max = _dp_max(q, shapes)
        dp_min = np.ones(len(shapes), np.int64)
    else:
        # the bounds' probes get at most half the time left before ``stop_at``, rows the rest
        now = time.perf_counter()
        probe_stop = None if stop_at is None else now + max(0.0, stop_at - now) / 2
        shapes, dp_min, dp_max, floors, probed = tighten(q, block, len(accelerators),
                                                         _dp_max(q, block), objective,
                                                         probe_stop)
    if floors is None or objective is None:
        rows = _evaluate_all(q, shapes, dp_min, dp_max, keep_layers, stop_at, distinct)
    else:
        rows = _best_first(q, shapes, dp_min, dp_max, floors, keep_layers or 1, stop_at,
                           distinct)
    return rows if probed else dataclasses.replace(rows, complete=False)


def _evaluate_all(q: Question, shapes: Shapes, dp_min: np.ndarray, dp_max: np.ndarray,
                  keep_layers: int | None, stop_at: float | None,
                  distinct: bool = False) -> Rows:
    idx, dp = candidates(q, shapes, dp_min, dp_max)
    parts: list[Rows] = []
    done = 0
    for start in range(0, max(idx.size, 1), CHUNK_ROWS):
        if parts and stop_at is not None and time.perf_counter() > stop_at:
            break
        part = rows_for(q, shapes, idx[start:start + CHUNK_ROWS], dp[start:start + CHUNK_ROWS])
        done = min(idx.size, start + CHUNK_ROWS)
        if keep_layers is not None and idx.size > CHUNK_ROWS:
            part = part.take(np.union1d(pareto_keep(part, keep_layers, distinct=distinct),
                                        smallest_memory(part)))
        parts.append(part)
    return _joined(parts, complete=done == idx.size)


def smallest_memory(rows: Rows) -> np.ndarray:
    """Per accelerator and set of violated families, the row with the least memory (kept by
    chunked pruning so that explanations can quote the smallest footprint)."""
    if len(rows) == 0:
        return np.zeros(0, np.int64)
    group = rows.x.accel * 32 + signature(rows)
    order = np.lexsort((rows.result.memory.total, group))
    first = np.r_[True, group[order][1:] != group[order][:-1]]
    return np.sort(order[first])


def _joined(parts: list[Rows], *, complete: bool) -> Rows:
    joined = parts[0] if len(parts) == 1 else concat(parts)
    return Rows(joined.result, joined.violates, evaluated=sum(p.evaluated for p in parts),
                complete=complete)


def _best_first(q: Question, shapes: Shapes, dp_min: np.ndarray, dp_max: np.ndarray,
                floors: Floors, layers: int, stop_at: float | None,
                distinct: bool = False) -> Rows:
    """Evaluate rows in rounds of rising floor until the K-th best feasible row found is no
    worse than every floor left: then no unevaluated row can be among the K best. With
    ``distinct`` the K best are those of K distinct shapes (``shape_key``): the K-th best of
    the shapes' own bests must be no worse than every floor left.

    Past ``stop_at`` (a ``time.perf_counter()`` value) no further chunk is started once a
    feasible row is known or ``CHUNK_ROWS`` rows have been tried (the cheapest rows can all
    be infeasible: a search stopped by the clock alone could end with nothing)."""
    tried = 0

    def out_of_time() -> bool:
        return (stop_at is not None and time.perf_counter() > stop_at
                and (found.size > 0 or tried >= CHUNK_ROWS))

    best_floor = floors.best(dp_min, dp_max)
    finite = best_floor[np.isfinite(best_floor)]
    parts: list[Rows] = []
    if finite.size == 0:
        parts.append(rows_for(q, shapes, np.zeros(0, np.int64), np.zeros(0, np.int64)))
        return _joined(parts, complete=True)
    worst = floors.worst(dp_min, dp_max)
    start_floor = float(finite.min())
    last_floor = float(np.max(np.where(np.isfinite(worst), worst, best_floor)))
    low, gap = -np.inf, max(abs(start_floor) * 0.1, 1e-12)
    high = start_floor + gap
    found = np.zeros(0)  # the K best feasible objective values so far
    found_keys = np.zeros(0, np.int64)  # with ``distinct``: each shape's best so far
    while True:
        if out_of_time() and (parts or low > -np.inf):
            if not parts:
                parts.append(rows_for(q, shapes, np.zeros(0, np.int64), np.zeros(0, np.int64)))
            return _joined(parts, complete=False)
        # only shapes with a floor in (low, high] can have rows this round
        reach = np.flatnonzero((best_floor <= high * (1 + SLACK)) & (worst > low))
        lo, hi = floors.take(reach).window(low, high, dp_min[reach], dp_max[reach])
        open_ = lo <= hi
        live = reach[open_]
        idx, dp = candidates(q, take_shapes(shapes, live), lo[open_], hi[open_])
        idx = live[idx]
        floor = floors.at(idx, dp)
        inside = (floor > low) & (floor <= high * (1 + SLACK))
        idx, dp = idx[inside], dp[inside]
        for start in range(0, idx.size, CHUNK_ROWS):
            if parts and out_of_time():
                return _joined(parts, complete=False)
            part = rows_for(q, shapes, idx[start:start + CHUNK_ROWS],
                            dp[start:start + CHUNK_ROWS])
            tried += min(CHUNK_ROWS, idx.size - start)
            ok = feasible(part)
            values = objective_values(part, floors.objective)[ok]
            if distinct:
                keys = shape_key(part.x)[ok][np.isfinite(values)]
                found_keys, best = best_per_key(np.concatenate([found_keys, keys]),
                                                np.concatenate([found, values[np.isfinite(
                                                    values)]]))
                found = best
                parts.append(part.take(pareto_keep(part, 1, distinct=True)))
            else:
                found = np.sort(np.concatenate([found, values[np.isfinite(values)]]))[:layers]
                parts.append(part.take(pareto_keep(part, layers)))
        ranked = np.sort(found) if distinct else found
        incumbent = float(ranked[layers - 1]) if ranked.size >= layers else np.inf
        if incumbent <= high or high >= last_floor:
            if not parts:
                parts.append(rows_for(q, shapes, idx[:0], dp[:0]))
            return _joined(parts, complete=True)
        low, gap = high, gap * 3
        high = min(incumbent, high + gap) if np.isfinite(incumbent) else high + gap
        high = max(high, low)


def _dp_max(q: Question, shapes: Shapes) -> np.ndarray:
    limits = q.limits
    if limits.gpus is not None and not q.relaxed:
        cap = limits.gpus
    elif limits.max_gpus is not None and not q.relaxed:
        cap = limits.max_gpus
    else:
        cap = max(DEFAULT_MAX_GPUS, limits.gpus or 0, limits.max_gpus or 0)
    gb = q.job.global_batch
    batch_cap = (gb if gb else int(limits.tokens_per_step[1] // q.job.seq_len)) // shapes.mb
    replica = shapes.tp * shapes.pp * shapes.cp
    dp_max = np.minimum(cap // replica, batch_cap)
    if limits.launcher is not None:  # a launcher may run a shape at small dp only
        dp_max = np.minimum(dp_max, dp_limit(limits.launcher, q.job, tp=shapes.tp,
                                             pp=shapes.pp, cp=shapes.cp, ep=shapes.ep,
                                             zero=shapes.zero))
    return dp_max


def candidates(q: Question, shapes: Shapes, dp_min: np.ndarray, dp_max: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """(shape index, dp) of every row, dp in [dp_min, dp_max] of its shape."""
    limits, gb = q.limits, q.job.global_batch
    replica = shapes.tp * shapes.pp * shapes.cp
    if "dp" in limits.fixed and not q.relaxed:
        pinned = np.full(len(shapes), int(limits.fixed["dp"]), np.int64)
        if limits.gpus is not None:
            pinned = np.where(replica * pinned == limits.gpus, pinned, 0)
        idx = np.flatnonzero((pinned >= np.maximum(dp_min, 1)) & (pinned <= dp_max))
        dp = pinned[idx]
    elif limits.gpus is not None and not q.relaxed:
        pinned = np.where(limits.gpus % replica == 0, limits.gpus // replica, 0)
        idx = np.flatnonzero((pinned >= np.maximum(dp_min, 1)) & (pinned <= dp_max))
        dp = pinned[idx]
    elif gb:
        lists = {int(b): _divisors(gb // int(b)) if gb % int(b) == 0
                 else np.zeros(0, np.int64) for b in np.unique(shapes.mb)}
        idx, dp = _expand(shapes, lists, shapes.mb, dp_min, dp_max)
    else:
        grid = dp_values(int(dp_max.max(initial=0)))
        idx, dp = _expand(shapes, {0: grid}, np.zeros(len(shapes), np.int64), dp_min, dp_max)
    keep = (dp * shapes.cp[idx]) % shapes.ep[idx] == 0
    if gb:
        keep &= gb % (dp * shapes.mb[idx]) == 0
    idx, dp = idx[keep], dp[keep]
    order = np.argsort(idx, kind="stable")  # shapes come most promising first
    return idx[order], dp[order]


def _empty_rows(job: TrainingJob, hw: HardwareTable, js: JobShape, cal: Calibration) -> Rows:
    empty = np.zeros(0, np.int64)
    x = LayoutArrays(*(empty for _ in range(13)))
    result = evaluate_arrays(job, x, hw, cal, js)
    return Rows(result, {f: np.zeros(0, bool) for f in FAMILIES})


def signature(rows: Rows) -> np.ndarray:
    """Bit mask of the families a row violates. The budget is left out: it is monotone in
    (gpus, time) within an accelerator. The deadline is kept in: judged at the high end of
    the error band (``Limits.risk``) it is not monotone in them (the band's width varies with
    the GPU count), and rows that share their deadline verdict can be compared safely."""
    sig = np.zeros(len(rows), np.int64)
    for bit, family in enumerate(("memory", "interconnect", "fixed", "gpus", "deadline")):
        sig |= rows.violates[family].astype(np.int64) << bit
    return sig


def pareto_keep(rows: Rows, layers: int, *, distinct: bool = False) -> np.ndarray:
    """Indices of rows on the first ``layers`` Pareto layers of (gpus, time) per group: the
    accelerator and the set of violated families, and with ``distinct`` also the shape
    (``shape_key``), so that every shape keeps its own best rows (``--top``)."""
    n = len(rows)
    if n == 0:
        return np.zeros(0, np.int64)
    group = rows.x.accel * 32 + signature(rows)
    if distinct:
        group = np.unique(np.stack([group, shape_key(rows.x)]), axis=1,
                          return_inverse=True)[1].reshape(-1)
    time = np.where(np.isfinite(rows.result.training_s), rows.result.training_s, np.inf)
    _, time_rank = np.unique(time, return_inverse=True)
    remaining = np.arange(n)
    kept: list[np.ndarray] = []
    for _ in range(layers):
        if remaining.size == 0:
            break
        g, gp, tr = group[remaining], rows.result.gpus[remaining], time_rank[remaining]
        order = np.lexsort((canonical_key(rows, remaining), tr, gp, g))
        g_s, t_s = g[order], tr[order].astype(np.float64)
        _, group_rank = np.unique(g_s, return_inverse=True)
        big = float(time_rank.max() + 2)
        shifted = t_s - group_rank * big
        prefix = np.minimum.accumulate(shifted)
        before = np.concatenate([[np.inf], prefix[:-1]])
        new_group = np.concatenate([[True], g_s[1:] != g_s[:-1]])
        front = new_group | (shifted < before)
        chosen = remaining[order[front]]
        kept.append(chosen)
        remaining = np.setdiff1d(remaining, chosen, assume_unique=True)
    return np.sort(np.concatenate(kept))


#: Bits of each field in ``shape_key`` (accelerator index, tp, pp, cp, ep: 58 bits in all).
SHAPE_KEY_BITS = (("accel", 8), ("tp", 12), ("pp", 12), ("cp", 12), ("ep", 14))


def shape_key(x: LayoutArrays) -> np.ndarray:
    """One integer per layout for what ``--top`` calls a different layout: another
    accelerator, or another tp, pp, cp or ep (not only another dp, micro-batch, ZeRO stage or
    recomputation)."""
    key = np.zeros(len(x), np.int64)
    for name, bits in SHAPE_KEY_BITS:
        column = getattr(x, name)
        if column.size and int(column.max()) >= 1 << bits:
            raise ValueError(f"shape_key: {name} {int(column.max())} needs more than {bits} bits")
        key = (key << bits) | column
    return key


def best_per_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest value of each distinct key: (keys, values), sorted by key."""
    order = np.lexsort((values, keys))
    first = np.r_[True, keys[order][1:] != keys[order][:-1]] if keys.size else order[:0] > 0
    return keys[order][first], values[order][first]


def canonical_key(rows: Rows, index: np.ndarray) -> np.ndarray:
    """A deterministic order of layouts (for ties): lexicographic in the layout fields."""
    x = rows.x
    cols = [x.accel, rows.result.gpus, x.tp, x.pp, x.cp, x.ep, x.vp, x.mb, x.zero, x.recompute,
            x.schedule, x.split, x.dp, x.nmb]
    order = np.lexsort([c[index] for c in reversed(cols)])
    key = np.empty(index.size, np.int64)
    key[order] = np.arange(index.size)
    return key

