"""Rows: shapes expanded over dp, evaluated by the step model, flagged and pruned.

Every row is one complete layout with its estimate. For each limit family a row either
satisfies it or not (``Rows.violates``); CP-SAT then picks one row under the families it is
asked to enforce. Pruning keeps, per accelerator and set of violated families, the rows on the
first K Pareto layers of (GPU count, training time): cost and energy are GPU count x time x a
per-accelerator rate, so every objective and every limit is monotone in those two, and a row
behind K others that are no worse on both can never be among the K best (exact dominance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.search.space import Shapes, dp_values, enumerate_shapes
from solver.specs import RECOMPUTE_MODES, Accelerator, Limits, TrainingJob
from solver.stepmodel.arrays import HardwareTable, LayoutArrays
from solver.stepmodel.calibration import DEFAULT_CALIBRATION, Calibration
from solver.stepmodel.evaluate import StepResult, evaluate_arrays
from solver.stepmodel.memory import max_microbatches_fitting
from solver.stepmodel.shape import JobShape, job_shape

#: GPU count searched when no limit gives one (and when explaining a GPU-count conflict).
DEFAULT_MAX_GPUS = 100_000

#: Limit families, in the order explanations list them.
FAMILIES = ("memory", "interconnect", "fixed", "gpus", "deadline", "budget")

FIELD_COLUMNS = {"tp": "tp", "pp": "pp", "dp": "dp", "cp": "cp", "ep": "ep", "vp": "vp",
                 "micro_batch": "mb", "zero_stage": "zero", "recompute": "recompute"}


@dataclass(frozen=True)
class Rows:
    """Evaluated layouts with one boolean column per violated limit family."""

    result: StepResult
    violates: dict[str, np.ndarray]

    @property
    def x(self) -> LayoutArrays:
        return self.result.x

    def __len__(self) -> int:
        return len(self.result.x)

    def take(self, index: np.ndarray) -> Rows:
        return Rows(_take_result(self.result, index),
                    {k: v[index] for k, v in self.violates.items()})


def _take_result(r: StepResult, index: np.ndarray) -> StepResult:
    from dataclasses import fields, replace

    from solver.stepmodel.memory import MemoryArrays
    from solver.stepmodel.timing import TimeArrays

    def sub(obj: Any) -> Any:
        return replace(obj, **{f.name: getattr(obj, f.name)[index] for f in fields(obj)})

    changes: dict[str, Any] = {}
    for f in fields(r):
        value = getattr(r, f.name)
        if isinstance(value, LayoutArrays):
            changes[f.name] = value.take(index)
        elif isinstance(value, (MemoryArrays, TimeArrays)):
            changes[f.name] = sub(value)
        elif isinstance(value, np.ndarray):
            changes[f.name] = value[index]
    return replace(r, **changes)


def _divisors(n: int) -> np.ndarray:
    small = np.arange(1, int(n**0.5) + 1)
    small = small[n % small == 0]
    return np.unique(np.concatenate([small, n // small]))


def _expand(shapes: Shapes, dp_lists: Mapping[int, np.ndarray], key: np.ndarray,
            dp_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shape index, dp) for every dp of the shape's list (``dp_lists[key]``) up to dp_max."""
    idx_parts, dp_parts = [], []
    for k, values in dp_lists.items():
        members = np.flatnonzero(key == k)
        if members.size == 0 or values.size == 0:
            continue
        counts = np.searchsorted(values, dp_max[members], side="right")
        idx = np.repeat(members, counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        offsets = np.arange(idx.size) - starts
        idx_parts.append(idx)
        dp_parts.append(values[offsets])
    if not idx_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(idx_parts), np.concatenate(dp_parts)


def build_rows(job: TrainingJob, accelerators: Sequence[Accelerator], limits: Limits,
               hw: HardwareTable, *, relaxed: bool = False,
               calibration: Calibration = DEFAULT_CALIBRATION) -> Rows:
    """Enumerate and evaluate every row; ``relaxed`` also keeps rows that break the fixed
    fields or the GPU-count limit (flagged), to explain an infeasible question."""
    js = job_shape(job)
    shapes = enumerate_shapes(job, accelerators, limits.fixed, honour_fixed=not relaxed)
    if len(shapes) == 0:
        return _empty_rows(job, hw, js, calibration)
    replica = shapes.tp * shapes.pp * shapes.cp
    seq = job.seq_len
    if limits.gpus is not None and not relaxed:
        cap = limits.gpus
    elif limits.max_gpus is not None and not relaxed:
        cap = limits.max_gpus
    else:
        cap = max(DEFAULT_MAX_GPUS, limits.gpus or 0, limits.max_gpus or 0)
    gb_fixed = job.global_batch
    low_tokens, high_tokens = limits.tokens_per_step
    batch_cap = (gb_fixed if gb_fixed else int(high_tokens // seq)) // shapes.mb
    dp_max = np.minimum(cap // replica, batch_cap)

    if "dp" in limits.fixed and not relaxed:
        fixed_dp = int(limits.fixed["dp"])
        idx = np.flatnonzero(fixed_dp <= dp_max)
        dp = np.full(idx.size, fixed_dp, np.int64)
        if limits.gpus is not None:
            pinned = replica[idx] * fixed_dp == limits.gpus
            idx, dp = idx[pinned], dp[pinned]
    elif limits.gpus is not None and not relaxed:
        ok = (limits.gpus % replica == 0) & (limits.gpus // replica <= batch_cap)
        idx = np.flatnonzero(ok)
        dp = limits.gpus // replica[idx]
    elif gb_fixed:
        lists = {int(b): _divisors(gb_fixed // int(b)) if gb_fixed % int(b) == 0
                 else np.zeros(0, np.int64) for b in np.unique(shapes.mb)}
        idx, dp = _expand(shapes, lists, shapes.mb, dp_max)
    else:
        grid = dp_values(int(dp_max.max(initial=0)))
        idx, dp = _expand(shapes, {0: grid}, np.zeros(len(shapes), np.int64), dp_max)

    keep = (dp * shapes.cp[idx]) % shapes.ep[idx] == 0
    if gb_fixed:
        keep &= gb_fixed % (dp * shapes.mb[idx]) == 0
    idx, dp = idx[keep], dp[keep]
    mb = shapes.mb[idx]
    if gb_fixed:
        nmb = gb_fixed // (dp * mb)
    else:
        per_micro = seq * dp * mb
        lo = np.maximum(1, -(-int(low_tokens) // per_micro))
        hi = int(high_tokens) // per_micro
        valid = hi >= lo
        idx, dp, mb, lo, hi = idx[valid], dp[valid], mb[valid], lo[valid], hi[valid]
        probe = _layouts(shapes, idx, dp, hi)
        capacity = hw.memory_bytes[probe.accel]
        best = max_microbatches_fitting(js, probe, capacity, lo, hi)
        nmb = np.where(best >= lo, best, lo)  # none fits: keep the smallest, flagged below
    x = _layouts(shapes, idx, dp, nmb)
    result = evaluate_arrays(job, x, hw, calibration, js)
    return Rows(result, _violations(result, limits, relaxed=relaxed))


def _layouts(shapes: Shapes, idx: np.ndarray, dp: np.ndarray, nmb: np.ndarray) -> LayoutArrays:
    return LayoutArrays(accel=shapes.accel[idx], tp=shapes.tp[idx], pp=shapes.pp[idx],
                        dp=np.asarray(dp, np.int64), cp=shapes.cp[idx], ep=shapes.ep[idx],
                        vp=shapes.vp[idx], mb=shapes.mb[idx], nmb=np.asarray(nmb, np.int64),
                        zero=shapes.zero[idx], recompute=shapes.recompute[idx])


def _empty_rows(job: TrainingJob, hw: HardwareTable, js: JobShape, cal: Calibration) -> Rows:
    empty = np.zeros(0, np.int64)
    x = LayoutArrays(*(empty for _ in range(11)))
    result = evaluate_arrays(job, x, hw, cal, js)
    return Rows(result, {f: np.zeros(0, bool) for f in FAMILIES})


def fixed_violation(x: LayoutArrays, fixed: Mapping[str, Any]) -> np.ndarray:
    bad = np.zeros(len(x), bool)
    for key, value in fixed.items():
        column = getattr(x, FIELD_COLUMNS[key])
        wanted = RECOMPUTE_MODES.index(value) if key == "recompute" else int(value)
        bad |= column != wanted
    return bad


def _violations(r: StepResult, limits: Limits, *, relaxed: bool) -> dict[str, np.ndarray]:
    n = len(r.x)
    gpus_bad = np.zeros(n, bool)
    if limits.gpus is not None:
        gpus_bad |= r.gpus != limits.gpus
    if limits.max_gpus is not None:
        gpus_bad |= r.gpus > limits.max_gpus
    with np.errstate(invalid="ignore"):
        deadline_bad = (r.training_days > limits.deadline_days if limits.deadline_days
                        is not None else np.zeros(n, bool))
        budget_bad = (~(r.cost_usd <= limits.budget_usd) if limits.budget_usd is not None
                      else np.zeros(n, bool))
    return {
        "memory": ~r.fits_memory,
        "interconnect": ~r.placeable,
        "fixed": fixed_violation(r.x, limits.fixed) if relaxed else np.zeros(n, bool),
        "gpus": gpus_bad,
        "deadline": np.asarray(deadline_bad & r.placeable),
        "budget": np.asarray(budget_bad & r.placeable),
    }


def signature(rows: Rows) -> np.ndarray:
    """Bit mask of the families a row violates (deadline and budget excluded: monotone)."""
    sig = np.zeros(len(rows), np.int64)
    for bit, family in enumerate(("memory", "interconnect", "fixed", "gpus")):
        sig |= rows.violates[family].astype(np.int64) << bit
    return sig


def pareto_keep(rows: Rows, layers: int) -> np.ndarray:
    """Indices of rows on the first ``layers`` Pareto layers of (gpus, time) per group."""
    n = len(rows)
    if n == 0:
        return np.zeros(0, np.int64)
    group = rows.x.accel * 16 + signature(rows)
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


def canonical_key(rows: Rows, index: np.ndarray) -> np.ndarray:
    """A deterministic order of layouts (for ties): lexicographic in the layout fields."""
    x = rows.x
    cols = [x.accel, rows.result.gpus, x.tp, x.pp, x.cp, x.ep, x.vp, x.mb, x.zero, x.recompute,
            x.dp, x.nmb]
    order = np.lexsort([c[index] for c in reversed(cols)])
    key = np.empty(index.size, np.int64)
    key[order] = np.arange(index.size)
    return key

